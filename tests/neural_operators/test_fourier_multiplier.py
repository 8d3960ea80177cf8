"""FourierMultiplier: its forward pass against an independent NumPy evaluation, and the exact heat solution."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.neural_operators import FourierMultiplier


def _gelu(x):
    """The tanh approximation of GELU (jax.nn.gelu's default)."""
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def _numpy_forward(model: FourierMultiplier, u: np.ndarray) -> np.ndarray:
    """The documented maths, in float64 NumPy: v = P MLP(u, F⁻¹(c ⊙ û))."""
    m, s = model.modes, u.shape[0]
    c = np.asarray(model.multiplier, np.float64) @ np.array([1, 1j])
    filtered = np.fft.irfft(np.fft.rfft(u)[:m] * c, n=s)
    h = np.stack([u, filtered], axis=-1)
    for i, layer in enumerate(model.mix.layers):
        h = h @ np.asarray(layer.weight, np.float64).T + np.asarray(layer.bias, np.float64)
        if i < len(model.mix.layers) - 1:
            h = _gelu(h)
    return np.fft.irfft(np.fft.rfft(h[:, 0])[:m], n=s)


@pytest.mark.slow  # the default suite's budget: the exact heat multiplier below exercises the model
def test_initialisation_and_forward_pass():
    key = jax.random.key(0)
    model = FourierMultiplier(16, 32, key=key)
    # c_m = 1 at the start; the MLP is equinox's with this key (what the tour's recorded runs used).
    np.testing.assert_array_equal(model.multiplier, np.stack([np.ones(16), np.zeros(16)], axis=1))
    reference = eqx.nn.MLP(2, 1, 32, 2, activation=jax.nn.gelu, key=key)
    for ours, theirs in zip(jax.tree_util.tree_leaves(model.mix), jax.tree_util.tree_leaves(reference)):
        np.testing.assert_array_equal(ours, theirs)
    # A trained-looking multiplier: the forward pass is the documented formula.
    model = eqx.tree_at(lambda m: m.multiplier, model, jax.random.normal(jax.random.key(1), (16, 2)))
    u = np.random.default_rng(0).normal(size=128).astype(np.float32)
    np.testing.assert_allclose(model(u), _numpy_forward(model, u.astype(np.float64)), atol=1e-6)


def _identity_mix(model: FourierMultiplier) -> FourierMultiplier:
    """Weights making the MLP return its second input exactly: gelu(z) − gelu(−z) = z (Φ(z) + Φ(−z) = 1, tanh odd)."""
    width = model.mix.layers[0].weight.shape[0]
    w1 = jnp.zeros((width, 2)).at[0, 1].set(1.0).at[1, 1].set(-1.0)
    w2 = jnp.zeros((width, width)).at[0, 0].set(1.0).at[0, 1].set(-1.0).at[1, 0].set(-1.0).at[1, 1].set(1.0)
    w3 = jnp.zeros((1, width)).at[0, 0].set(1.0).at[0, 1].set(-1.0)
    weights = [w1, w2, w3]
    for i, w in enumerate(weights):
        model = eqx.tree_at(lambda m, i=i: (m.mix.layers[i].weight, m.mix.layers[i].bias), model, (w, jnp.zeros(w.shape[0])))
    return model


@pytest.mark.parametrize("s", [64, 256])
def test_exact_heat_multiplier_gives_the_exact_heat_solution(x64, s):
    # u_t = ν u_xx on [0, 1): each sin(2πm x + φ) decays by exp(−ν (2πm)² t). With c_m equal to
    # that symbol and the MLP passing the filtered field through, the model is the solution
    # operator on fields with modes below M, at every resolution.
    nu, t, modes = 0.05, 0.3, 12
    x = np.arange(s) / s
    waves = [(1, 1.0, 0.2), (4, -0.7, 1.1), (11, 0.3, 2.0)]
    u0 = sum(a * np.sin(2 * np.pi * m * x + p) for m, a, p in waves)
    exact = sum(a * np.exp(-nu * (2 * np.pi * m) ** 2 * t) * np.sin(2 * np.pi * m * x + p) for m, a, p in waves)
    symbol = np.exp(-nu * (2 * np.pi * np.arange(modes)) ** 2 * t)
    model = FourierMultiplier(modes, 8, key=jax.random.key(2))
    model = eqx.tree_at(lambda m: m.multiplier, _identity_mix(model), jnp.stack([symbol, np.zeros(modes)], axis=1))
    model = _float64(model)
    forward = eqx.filter_jit(lambda m, v: jax.vmap(m)(v))
    # The second field adds a mode at M, which the projection removes.
    out = forward(model, jnp.asarray(np.stack([u0, u0 + np.sin(2 * np.pi * modes * x)])))
    np.testing.assert_allclose(out, np.stack([exact, exact]), atol=1e-13)


def _float64(model):
    return jax.tree_util.tree_map(lambda leaf: leaf.astype(jnp.float64) if eqx.is_inexact_array(leaf) else leaf, model)


@pytest.mark.slow
def test_batches_jits_and_differentiates():
    model = FourierMultiplier(8, 16, key=jax.random.key(3))
    u = jax.random.normal(jax.random.key(4), (5, 64), dtype=jnp.float32)
    batched = eqx.filter_jit(lambda m, v: jax.vmap(m)(v))(model, u)
    assert batched.shape == (5, 64) and batched.dtype == jnp.float32
    np.testing.assert_allclose(batched[2], model(u[2]), atol=1e-6)
    # The gradient with respect to one multiplier entry matches a central difference (float64).
    with jax.enable_x64(True):
        model, u = _float64(model), u.astype(jnp.float64)
        loss = eqx.filter_jit(lambda m: jnp.sum(jax.vmap(m)(u) ** 2))
        grad = eqx.filter_jit(eqx.filter_grad(loss))(model).multiplier[3, 1]
        bump = lambda eps: eqx.tree_at(lambda m: m.multiplier, model, model.multiplier.at[3, 1].add(eps))  # noqa: E731
        difference = (loss(bump(1e-5)) - loss(bump(-1e-5))) / 2e-5
        assert abs(float(grad)) > 1e-4
        assert float(grad) == pytest.approx(float(difference), rel=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: FourierMultiplier(0, 8, key=jax.random.key(0)), r"FourierMultiplier: `modes` must be a positive integer, got 0"),
        (lambda: FourierMultiplier(4, 2.5, key=jax.random.key(0)), r"FourierMultiplier: `width` must be a positive integer, got 2.5"),
        (lambda: FourierMultiplier(16, 8, key=jax.random.key(0))(jnp.ones(16)), r"`u` must resolve the 16 modes, so s//2 \+ 1 >= 16; got s = 16"),
        (lambda: FourierMultiplier(4, 8, key=jax.random.key(0))(jnp.ones((2, 16))), r"`u` must be one real 1-d field"),
    ],
)
def test_input_checks(call, match):
    with pytest.raises(ValueError, match=match):
        call()
