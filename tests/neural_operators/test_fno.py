"""FNO: one sample in, one out, in 1/2/3-D (domain padding and factorised weights included);
resolution independence on band-limited inputs (exact for one layer, to the activation's
aliasing for three); a small FNO learns the heat semigroup u0 ↦ e^{tΔ}u0 (closed form in
Fourier space); a run with EMA interrupted and resumed equals the uninterrupted run bit for bit;
bad inputs refused by name."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpde.neural_operators import _fno
from jaxpde.neural_operators._fno import FNO, grid_coordinates
from jaxpde.training import ArrayLoader, fit


def band_limited(key, shape, top: int, channels: int = 1):
    """A random real field on a periodic grid of `shape` with modes |k_i| < top only (the same
    function at every resolution that holds them)."""
    axes = tuple(range(1, len(shape) + 1))
    coarse = (2 * top - 1,) * len(shape)
    z = jax.random.normal(key, (channels, *coarse))  # the field's values on the smallest grid holding it
    spectrum = jnp.fft.fftn(z, axes=axes) / np.prod(coarse)
    full = jnp.zeros((channels, *shape), spectrum.dtype)
    wavenumbers = np.arange(-(top - 1), top)
    index = np.ix_(range(channels), *([wavenumbers % s for s in shape]))
    full = full.at[index].set(spectrum[np.ix_(range(channels), *([wavenumbers % c for c in coarse]))])
    return jnp.real(jnp.fft.ifftn(full, axes=axes)) * np.prod(shape)


def test_shapes_in_one_two_three_dimensions_with_padding_and_factorised_weights():
    cases = [(dict(modes=4), (2, 16)), (dict(modes=(3, 4), padding=0.25, factorization="cp"), (2, 9, 12)),
             (dict(modes=(2, 2, 2), factorization="tucker", coordinates="periodic"), (2, 5, 4, 6))]
    for options, shape in cases:
        def apply(a, options=options):  # abstract: shapes without compiling anything
            return jax.vmap(FNO(2, 3, width=4, depth=2, key=jax.random.key(0), **options))(a)

        out = eqx.filter_eval_shape(apply, jax.ShapeDtypeStruct((5, *shape), jnp.float32))
        assert out.shape == (5, 3, *shape[1:]) and out.dtype == jnp.float32
    padded = eqx.filter_eval_shape(lambda: FNO(1, 1, (12, 12), 4, 1, padding=0.1, key=jax.random.key(0)))
    assert padded.padded_shape((85, 85)) == (94, 94) and padded.padded_shape((45, 45)) == (50, 50)
    np.testing.assert_allclose(np.asarray(grid_coordinates((3,), "nodes", jnp.float32))[0], [0, 0.5, 1])
    np.testing.assert_allclose(np.asarray(grid_coordinates((4,), "periodic", jnp.float32))[0], [0, 0.25, 0.5, 0.75])


def resolution_gap(depth: int) -> float:
    """‖FNO(fine)[::4] − FNO(coarse)‖/‖FNO(coarse)‖ for one band-limited field at 16² and 64²."""
    model = eqx.filter_jit(FNO(1, 2, modes=(5, 5), width=8, depth=depth, coordinates=None, key=jax.random.key(depth)))
    coarse, fine = (band_limited(jax.random.key(7), shape, top=4) for shape in ((16, 16), (64, 64)))
    np.testing.assert_allclose(np.asarray(fine[:, ::4, ::4]), np.asarray(coarse), atol=1e-5)  # the same field
    out_coarse, out_fine = model(coarse), model(fine)
    return float(jnp.linalg.norm(out_fine[:, ::4, ::4] - out_coarse) / jnp.linalg.norm(out_coarse))


def test_output_is_invariant_to_the_resolution_of_band_limited_inputs():
    # One layer: lifting and projection are pointwise, the Fourier layer maps the band-limited
    # field to a trigonometric polynomial: the fine output sampled at the coarse points is the
    # coarse output, to rounding (a resolution-dependent normalisation of the FFT would be off
    # by a factor 16).
    assert resolution_gap(1) < 2e-5


@pytest.mark.slow  # ~5 s
def test_deeper_fno_is_invariant_up_to_the_aliasing_of_its_activation():
    # Three layers: the GELU between layers makes products whose high modes alias differently
    # on the two grids: close, not equal.
    assert 1e-5 < resolution_gap(3) < 2e-2


def heat_data(key, n, s=64, t=0.01, top=9):
    """u0 band-limited on a periodic grid of [0, 1); u(t) = e^{tΔ}u0 exactly, mode by mode."""
    c = jax.random.normal(key, (n, 2, top)) / (1 + jnp.arange(top))
    spectrum = jnp.zeros((n, s // 2 + 1), jnp.complex64).at[:, :top].set(c[:, 0] + 1j * c[:, 1]) * s
    u0 = jnp.fft.irfft(spectrum, n=s)
    k = 2 * jnp.pi * jnp.arange(s // 2 + 1)
    u1 = jnp.fft.irfft(jnp.fft.rfft(u0) * jnp.exp(-(k**2) * t), n=s)
    return u0[:, None], u1[:, None]


def relative_l2_loss(model, batch, key):
    prediction = jax.vmap(model)(batch[0])
    error = jnp.linalg.norm((prediction - batch[1]).reshape(len(prediction), -1), axis=1)
    return jnp.mean(error / jnp.linalg.norm(batch[1].reshape(len(prediction), -1), axis=1))


def learn_heat(activation: str, steps: int):
    train, test = heat_data(jax.random.key(1), 64), heat_data(jax.random.key(2), 32)
    model = FNO(1, 1, modes=12, width=4, depth=1, projection_width=8, activation=activation, coordinates=None,
                key=jax.random.key(0))
    result = fit(model, optax.adam(optax.cosine_decay_schedule(1e-2, steps)), relative_l2_loss, lambda key: train,
                 steps=steps, key=jax.random.key(3), progress=False, log_every=steps)
    return float(relative_l2_loss(result.model, test, None))


def test_a_linear_fno_with_the_heat_symbol_is_the_heat_semigroup():
    # The cheap default check: with the identity activation, unit lifting and projection, no local
    # path, and the spectral weight set to the symbol e^{−(2πk)²t}, the FNO *is* e^{tΔ} on fields
    # band-limited to its modes. (Learning it: the slow tests below.)
    t, s, modes = 0.01, 64, 12
    model = FNO(1, 1, modes=modes, width=1, depth=1, projection_width=1, activation="identity", coordinates=None,
                key=jax.random.key(0))
    one, zero = jnp.ones((1, 1)), jnp.zeros(1)
    symbol = jnp.exp(-((2 * jnp.pi * jnp.arange(modes)) ** 2) * t)
    model = eqx.tree_at(
        lambda m: (m.lift.weight, m.lift.bias, m.local[0].weight, m.local[0].bias, m.project_hidden.weight,
                   m.project_hidden.bias, m.project_out.weight, m.project_out.bias, m.spectral[0].weight),
        model, (one, zero, 0 * one, zero, one, zero, one, zero, jnp.stack([symbol, 0 * symbol], -1)[:, None, None]))  # (k, o, i, re/im)
    u0, u1 = heat_data(jax.random.key(1), 4, s=s, t=t)
    np.testing.assert_allclose(np.asarray(eqx.filter_jit(jax.vmap(model))(u0)), np.asarray(u1), atol=1e-5 * float(jnp.max(jnp.abs(u1))))


def test_a_linear_fno_learns_the_heat_semigroup():  # ~5 s: in the default set (the acceptance test)
    # The target is linear, so the FNO with the identity activation can represent it exactly;
    # 150 Adam steps reach 2.5e-5 on held-out fields.
    assert learn_heat("identity", 150) <= 1e-4


@pytest.mark.slow  # ~20 s: the GELU projection has to learn to be linear
def test_a_gelu_fno_learns_the_heat_semigroup():
    assert learn_heat("gelu", 2000) <= 1e-3  # measured 4.8e-4


def test_exact_resume_of_an_fno_run_with_ema(tmp_path):  # ~10 s: three compiled runs and their checkpoints
    u0, u1 = heat_data(jax.random.key(1), 16, s=16, top=4)
    model = FNO(1, 1, modes=4, width=4, depth=2, key=jax.random.key(0))
    common = dict(steps=6, key=jax.random.key(5), ema_decay=0.9, progress=False, log_every=1, checkpoint_every=2,
                  asynchronous_checkpoints=False)
    loader = lambda: ArrayLoader((u0, u1), 4, seed=0)  # noqa: E731
    whole = fit(model, optax.adam(1e-2), relative_l2_loss, loader(), out_dir=tmp_path / "whole", **common)

    def interrupt(point):
        if point.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(model, optax.adam(1e-2), relative_l2_loss, loader(), out_dir=tmp_path / "cut", callbacks=[interrupt], **common)
    resumed = fit(model, optax.adam(1e-2), relative_l2_loss, loader(), out_dir=tmp_path / "cut", **common)
    assert resumed.resumed_from == 3
    for a, b in ((whole.model, resumed.model), (whole.ema_model, resumed.ema_model)):
        for x, y in zip(jax.tree.leaves(eqx.filter(a, eqx.is_array)), jax.tree.leaves(eqx.filter(b, eqx.is_array))):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not bool(eqx.tree_equal(whole.model, whole.ema_model))  # the EMA is a different state


def test_the_projection_in_chunks_equals_the_whole_projection(x64, monkeypatch):
    """30 points in chunks of 7 (the last padded): the same values and the same gradients, for
    the parameters and the input, under vmap, as the projection applied to the whole field."""
    model = jax.tree.map(lambda p: p.astype(jnp.float64), FNO(1, 2, modes=(2, 2), width=4, depth=1, key=jax.random.key(0)))
    v = jax.random.normal(jax.random.key(1), (3, 4, 6, 5), jnp.float64)

    def loss(model, v):
        return jnp.sum(jnp.sin(jax.vmap(model.project)(v)))

    whole = jax.value_and_grad(loss, argnums=(0, 1))(model, v)
    monkeypatch.setattr(_fno, "_PROJECTION_CHUNK", 7)
    chunked = jax.value_and_grad(loss, argnums=(0, 1))(model, v)
    direct = jax.vmap(lambda x: model.project_out(jax.nn.gelu(model.project_hidden(x))))(v)
    np.testing.assert_allclose(jax.vmap(model.project)(v), direct, rtol=1e-13)
    for a, b in zip(jax.tree.leaves(chunked), jax.tree.leaves(whole), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_bad_inputs_are_refused_by_name():
    # abstract weights (no compile): the checks come before any arithmetic
    model = eqx.filter_eval_shape(lambda: FNO(2, 1, modes=(4, 4), width=4, depth=1, key=jax.random.key(0)))
    with pytest.raises(ValueError, match=r"`a` must be one real sample of shape \(in_channels=2, 2 spatial axes\)"):
        model(jnp.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match=r"`a` must be one real sample"):
        model(jnp.zeros((2, 8)))
    with pytest.raises(ValueError, match=r"`modes`=\(4, 4\) is more than the grid \(6, 8\) of `a`"):
        model(jnp.zeros((2, 6, 8)))
    with pytest.raises(ValueError, match="`padding` must be a fraction"):
        FNO(1, 1, 4, 4, 1, padding=2.0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="`activation` must be one of"):
        FNO(1, 1, 4, 4, 1, activation="swish!", key=jax.random.key(0))
    with pytest.raises(ValueError, match="`depth` must be a positive integer"):
        FNO(1, 1, 4, 4, 0, key=jax.random.key(0))
