"""SpectralConv against a dense reference: the convolution operator written out entry by entry in
numpy from its definition (a sum over the retained wavenumbers of R(k) e^{2πik·(x−x')/s}), in 1-D,
2-D and 3-D, dense and factorised; factorised weights against their own explicit reconstruction;
bad channel counts and too many modes refused by name."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.neural_operators import _spectral_conv
from jaxpde.neural_operators._spectral_conv import (
    SpectralConv,
    by_matrices,
    from_retained_spectrum,
    retained_shape,
    retained_spectrum,
    truncate,
    untruncate,
)


def _wavenumbers(modes):
    """The retained wavenumbers of every axis, in the order of the weight's block."""
    axes = [list(range(m)) + list(range(-(m - 1), 0)) for m in modes[:-1]]
    return axes + [list(range(modes[-1]))]


def dense_operator(weight: np.ndarray, modes, shape) -> np.ndarray:
    """The real matrix of v ↦ Re[(1/|s|) Σ_{k∈M} w(k) R(k) Σ_x' v(x') e^{2πik·(x−x')/s}] with
    w = 1 on the k_d = 0 plane and 2 elsewhere (the conjugate mirror image the real FFT implies)."""
    c_out, c_in = weight.shape[:2]
    points = np.array(list(itertools.product(*(range(s) for s in shape))))  # (S, d)
    size = len(points)
    kernel = np.zeros((c_out, c_in, size, size), np.complex128)
    difference = points[:, None, :] - points[None, :, :]  # x − x'
    for index in itertools.product(*(range(n) for n in retained_shape(modes))):
        k = np.array([axis[i] for axis, i in zip(_wavenumbers(modes), index)])
        w = 1.0 if k[-1] == 0 else 2.0
        phase = np.exp(2j * np.pi * np.sum(difference * k / np.array(shape), axis=-1))
        kernel += w * weight[(slice(None), slice(None), *index)][:, :, None, None] * phase
    kernel = np.real(kernel) / size
    return kernel.transpose(0, 2, 1, 3).reshape(c_out * size, c_in * size)


@pytest.fixture(params=["matrices", "fft"])
def transform(request, monkeypatch):
    """Run a test through either way of computing the retained spectrum."""
    by_matrices = request.param == "matrices"
    monkeypatch.setattr(_spectral_conv, "by_matrices", lambda shape, modes: by_matrices)
    return request.param


@pytest.mark.parametrize(
    "modes, shape, factorization",
    [(4, (7,), None), ((3, 2), (6, 4), "cp"), ((2, 2, 2), (4, 3, 4), None)],
)
def test_equals_the_dense_reference_convolution(x64, transform, modes, shape, factorization):
    c_in, c_out = 2, 3
    conv = SpectralConv(c_in, c_out, modes, factorization=factorization, rank=3, key=jax.random.key(0))
    conv = jax.tree.map(lambda w: w.astype(jnp.float64), conv)
    v = jax.random.normal(jax.random.key(1), (c_in, *shape), jnp.float64)
    reference = dense_operator(np.asarray(conv.dense_weight()), conv.modes, shape) @ np.asarray(v).ravel()
    np.testing.assert_allclose(np.asarray(eqx.filter_jit(conv)(v)).ravel(), reference, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "shape, modes",
    [((16,), (5,)), ((8,), (5,)), ((9, 8), (5, 5)), ((9, 9), (5, 5)), ((7, 10), (4, 6)), ((8, 9, 10), (3, 4, 6))],
)
def test_dft_matrices_equal_the_fft_on_the_retained_block(x64, shape, modes):
    """Both ways, forward and inverse, agree to rounding — grids whose last axis keeps its
    Nyquist frequency (8 and 10 points, 5 and 6 modes) and a block with imaginary parts on the
    k = 0 and Nyquist planes (which the inverse real FFT drops) included."""
    v = jax.random.normal(jax.random.key(0), (3, *shape), jnp.float64)
    axes = tuple(range(1, v.ndim))
    by_fft = truncate(jnp.fft.rfftn(v, axes=axes), modes)
    np.testing.assert_allclose(retained_spectrum(v, modes), by_fft, atol=1e-12)
    block = by_fft + 0.3j * jax.random.normal(jax.random.key(1), by_fft.shape, jnp.float64)
    inverse = jnp.fft.irfftn(untruncate(block, modes, shape), s=shape, axes=axes)
    np.testing.assert_allclose(from_retained_spectrum(block, modes, shape), inverse, atol=1e-13)


def test_the_cheaper_transform_is_chosen_by_modes_against_grid():
    assert by_matrices((64, 64), (12, 12)) and by_matrices((64, 64), (16, 16)) and by_matrices((1024,), (16,))
    assert not by_matrices((64, 64), (20, 20)) and not by_matrices((256,), (129,))


def test_factorised_weights_rebuild_as_their_formulas():
    cp = SpectralConv(2, 3, (2, 3), factorization="cp", rank=4, key=jax.random.key(0))
    factors = [np.asarray(f[..., 0] + 1j * f[..., 1]) for f in cp.weight]
    expected = np.zeros((3, 2, 3, 3), complex)
    for r in range(4):
        expected += np.einsum("o,i,a,b->oiab", *(f[:, r] for f in factors))
    np.testing.assert_allclose(np.asarray(cp.dense_weight()), expected, rtol=1e-5, atol=1e-6)
    tucker = SpectralConv(2, 3, 4, factorization="tucker", rank=2, key=jax.random.key(1))
    core, *factors = (np.asarray(f[..., 0] + 1j * f[..., 1]) for f in tucker.weight)
    assert core.shape == (2, 2, 2)  # ranks capped by the axis sizes (c_in = 2)
    expected = np.einsum("ABC,oA,iB,aC->oia", core, *factors)
    np.testing.assert_allclose(np.asarray(tucker.dense_weight()), expected, rtol=1e-5, atol=1e-6)
    sizes = [sum(w.size for w in jax.tree.leaves(eqx.filter_eval_shape(
        lambda f=f: SpectralConv(8, 8, (6, 6), factorization=f, rank=4, key=jax.random.key(0)))))
             for f in (None, "cp", "tucker")]
    assert sizes[1] < sizes[2] < sizes[0] / 10  # the point of factorising


def test_bad_inputs_are_refused_by_name():
    conv = eqx.filter_eval_shape(lambda: SpectralConv(2, 3, (4, 3), key=jax.random.key(0)))  # abstract weights
    with pytest.raises(ValueError, match=r"`v` must be one sample of shape \(in_channels=2"):
        conv(jnp.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match=r"`modes`=\(4, 3\) is more than the grid \(6, 8\).*axis 0 needs 2\*4 - 1 <= s"):
        conv(jnp.zeros((2, 6, 8)))
    with pytest.raises(ValueError, match=r"axis 1 needs s//2 \+ 1 >= 3, got s = 3"):
        conv(jnp.zeros((2, 8, 3)))
    with pytest.raises(ValueError, match="`modes` must be a positive int"):
        SpectralConv(2, 3, (1, 2, 3, 4), key=jax.random.key(0))
    with pytest.raises(ValueError, match="`factorization` must be None, 'cp' or 'tucker'"):
        SpectralConv(2, 3, 4, factorization="tt", key=jax.random.key(0))
    with pytest.raises(ValueError, match="`in_channels` must be a positive integer"):
        SpectralConv(0, 3, 4, key=jax.random.key(0))
