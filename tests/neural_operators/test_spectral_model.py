"""Transform Once: the model equals its formula written out in numpy with explicit DFT sums (1-D,
one layer); on band-limited inputs a deep GELU model is exactly resolution invariant (no
physical-space activation to alias, unlike the FNO) and its output is band-limited to the
retained modes; bad inputs refused by name."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.neural_operators._spectral_model import TransformOnce


def test_equals_its_formula_with_explicit_dft_sums(x64):
    s, m = 10, 3
    model = TransformOnce(2, 1, m, width=3, depth=2, activation="tanh", key=jax.random.key(0))
    model = jax.tree.map(lambda w: w.astype(jnp.float64) if eqx.is_inexact_array(w) else w, model)
    a = np.asarray(jax.random.normal(jax.random.key(1), (2, s), jnp.float64))
    x, k = np.arange(s), np.arange(m)
    coefficients = a @ np.exp(-2j * np.pi * np.outer(x, k) / s) / s  # (2, m): the Fourier coefficients
    point = lambda layer, v: np.asarray(layer.weight) @ v + np.asarray(layer.bias)[:, None]  # noqa: E731
    z = point(model.lift, np.concatenate([coefficients.real, coefficients.imag]))
    for channels, modes in zip(model.channel_mix, model.mode_mix):
        z = z + np.tanh(point(channels, z) @ np.asarray(modes))
    out = point(model.project, z)
    weights = np.where(k == 0, 1.0, 2.0)  # the conjugate modes the real inverse FFT implies
    expected = np.real(np.exp(2j * np.pi * np.outer(x, k) / s) @ (weights * (out[0] + 1j * out[1])))
    np.testing.assert_allclose(np.asarray(eqx.filter_jit(model)(a))[0], expected, rtol=1e-9, atol=1e-11)


def test_exactly_resolution_invariant_and_band_limited():
    model = eqx.filter_jit(TransformOnce(1, 2, (4, 3), width=4, depth=3, key=jax.random.key(0)))
    # A field with modes |k1| < 3, |k2| < 3 on 12 x 12 and 36 x 36: the same function.
    k = np.arange(-2, 3)
    c = np.asarray(jax.random.normal(jax.random.key(1), (5, 5))) + 1j * np.asarray(jax.random.normal(jax.random.key(2), (5, 5)))

    def field(n):
        x = np.arange(n) / n
        e = np.exp(2j * np.pi * np.outer(x, k))
        return jnp.asarray(np.real(e @ c @ e.T)[None], jnp.float32)

    coarse, fine = model(field(12)), model(field(36))
    np.testing.assert_allclose(np.asarray(fine[:, ::3, ::3]), np.asarray(coarse), rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(coarse))))
    spectrum = np.abs(np.fft.rfft2(np.asarray(fine)))
    inside = spectrum[:, np.r_[0:4, 33:36], :3]
    assert spectrum.sum() - inside.sum() < 1e-5 * inside.sum()  # nothing outside |k1| < 4, k2 < 3


def test_bad_inputs_are_refused_by_name():
    model = eqx.filter_eval_shape(lambda: TransformOnce(1, 1, (4, 4), 2, 1, key=jax.random.key(0)))  # abstract weights
    with pytest.raises(ValueError, match=r"`a` must be one real sample of shape \(in_channels=1, 2 spatial axes\)"):
        model(jnp.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match=r"`modes`=\(4, 4\) is more than the grid \(8, 4\) of `a`"):
        model(jnp.zeros((1, 8, 4)))
    with pytest.raises(ValueError, match="`depth` must be a positive integer"):
        TransformOnce(1, 1, 4, 2, 0, key=jax.random.key(0))
