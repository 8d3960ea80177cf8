"""PDE-Refiner: noise levels σ_k = σ_min^{k/K} placed on the samplers' schedule (VP: α² + σ² = 1;
EDM: the same signal-to-noise ratios), a perfect denoiser refines to the target exactly and
scores zero loss, rollouts keep shapes under jit and vmap."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.samplers import EDM, VPLinear
from jaxpde.neural_operators._emulator import Emulator
from jaxpde.neural_operators._refiner import PDERefiner

S = 16


def test_noise_levels_follow_the_paper_on_the_schedule():
    refiner = PDERefiner(num_refinement_steps=4, min_noise_std=2e-7)
    expected = [2e-7 ** (k / 4) for k in range(1, 5)]
    np.testing.assert_allclose(refiner.sigmas, expected, rtol=2e-3)
    np.testing.assert_allclose(np.square(refiner.alphas) + np.square(refiner.sigmas), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(refiner.schedule.sigma(jnp.asarray(refiner.times))), refiner.sigmas, rtol=1e-5)
    assert list(refiner.times) == sorted(refiner.times, reverse=True)  # noise decreases with k: t decreases
    # A VE-type schedule (α = 1, σ = t) gives the same signal-to-noise ratio at each step.
    edm = PDERefiner(num_refinement_steps=3, min_noise_std=1e-2, schedule=EDM(sigma_min=1e-3))
    vp = PDERefiner(num_refinement_steps=3, min_noise_std=1e-2)
    np.testing.assert_allclose(edm.alphas, 1.0)
    np.testing.assert_allclose(np.divide(edm.sigmas, edm.alphas), np.divide(vp.sigmas, vp.alphas), rtol=1e-4)
    with pytest.raises(ValueError, match="t_min"):
        PDERefiner(min_noise_std=1e-6, schedule=VPLinear())


def _oracle(refiner, target, h=1, c=1):
    """The perfect model: the target at k = 0, the exact noise ε = (ỹ − α_k y)/σ_k at k ≥ 1."""
    alphas = jnp.asarray((1.0, *refiner.alphas))
    sigmas = jnp.asarray((1.0, *refiner.sigmas))

    def model(x):
        noisy = x[h * c : h * c + c]
        k = jnp.round(x[-1, 0] * refiner.num_refinement_steps).astype(jnp.int32)
        return jnp.where(k == 0, target, (noisy - alphas[k] * target) / sigmas[k])

    return model


def test_a_perfect_denoiser_refines_to_the_target():
    refiner = PDERefiner(Emulator("increment", increment_scale=0.5), num_refinement_steps=3, min_noise_std=1e-3)
    assert refiner.input_channels(1) == 3
    rng = np.random.default_rng(0)
    window = jnp.asarray(rng.normal(size=(1, 1, S)), jnp.float32)
    nxt = jnp.asarray(rng.normal(size=(1, S)), jnp.float32)
    target = refiner.emulator.target(nxt, window[-1])
    model = _oracle(refiner, target)
    y, step = jax.jit(lambda w, k: (refiner.refine(model, w, k)[0], refiner.step(model, w, k)))(window, jax.random.key(1))
    np.testing.assert_allclose(y, target, atol=1e-4)
    np.testing.assert_allclose(step, nxt, atol=1e-4)
    # The noised input is α_k y + σ_k ε exactly.
    noise = jnp.asarray(rng.normal(size=(1, S)), jnp.float32)
    np.testing.assert_allclose(refiner.noised(target, noise, 2), refiner.alphas[1] * target + refiner.sigmas[1] * noise,
                               rtol=1e-6)
    # Its training loss vanishes (any k, any noise); a zero model's does not.
    windows = jnp.concatenate([window, nxt[None]], axis=0)[None]
    loss = jax.jit(lambda w, k: (refiner.loss()(model, w, k), refiner.loss()(lambda x: jnp.zeros_like(x[:1]), w, k)))
    perfect, zero = loss(windows, jax.random.key(3))
    assert float(perfect) < 1e-6 and float(zero) > 0.1


def test_rollout_keeps_shapes_under_jit_and_vmap():
    refiner = PDERefiner(Emulator("increment", history=2), num_refinement_steps=2, min_noise_std=1e-2)
    model = eqx.nn.Conv1d(refiner.input_channels(1), 1, 3, padding=1, padding_mode="CIRCULAR", key=jax.random.key(0))
    windows = jnp.asarray(np.random.default_rng(0).normal(size=(3, 2, 1, S)), jnp.float32)
    keys = jax.random.split(jax.random.key(0), 3)
    frames = jax.jit(jax.vmap(lambda w, k: refiner.rollout(model, w, 5, k)))(windows, keys)
    assert frames.shape == (3, 5, 1, S) and bool(jnp.all(jnp.isfinite(frames)))
    with pytest.raises(ValueError, match="history"):
        refiner.rollout(model, windows[0, :1], 5, keys[0])
    with pytest.raises(ValueError, match="num_refinement_steps"):
        PDERefiner(num_refinement_steps=0)
    with pytest.raises(ValueError, match="min_noise_std"):
        PDERefiner(min_noise_std=1.5)
