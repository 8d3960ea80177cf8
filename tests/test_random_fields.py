"""Gaussian random fields checked against their analytic covariance.

Statistical checks use fixed keys (so they are reproducible) and bounds of 5–6 standard errors
per mode, computed from the exact sampling distribution (a variance estimate from ``M`` samples
has relative standard error ``sqrt(2/M)`` for a real coefficient, ``sqrt(1/M)`` for a complex
one whose real and imaginary parts are independent with equal variance).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.fft
import scipy.stats

from jaxpde import Grid
from jaxpde.random_fields import GaussianRandomField, ThresholdedField, thresholded

NUM_SAMPLES = 3000

# Sampling compiles one XLA program per grid (threefry dominates, ~1 s of CPU each), so the tests
# share a few sample batches: same grid and parameters, same cached batch.
PERIODIC_1D = (Grid(64, lengths=3.0), 25.0, 5.0, 2.0)  # the FNO Burgers law N(0, 625(−Δ+25I)^−2)
PERIODIC_2D = (Grid((16, 12), lengths=(2.0, 1.5)), 1.0, 3.0, 2.0)  # the Darcy law N(0, (−Δ+9I)^−2)
PERIODIC_3D = (Grid((8, 6, 5), lengths=(1.0, 1.0, 2.0)), 7.0**1.5, 7.0, 2.5)  # the NS law; odd axis
DIRICHLET_1D = (Grid(40, lengths=2.0, boundary="dirichlet", origin=-1.0), 2.0, 0.0, 1.5)  # τ = 0 is fine
DIRICHLET_2D = (Grid((12, 10), lengths=(1.0, 2.0), boundary="dirichlet"), 1.0, 3.0, 2.0)
DIRICHLET_3D = (Grid((6, 5, 4), lengths=(1.0, 2.0, 1.0), boundary="dirichlet", origin=(0.5, -1.0, 0.0)), 1.0, 2.0, 2.0)


def _keys(count=NUM_SAMPLES):
    return jax.random.split(jax.random.PRNGKey(0), count)


@functools.lru_cache(maxsize=None)
def _samples(grid, sigma, tau, alpha):
    """NUM_SAMPLES samples (float64 numpy) of the field, one per key of `_keys()`."""
    grf = GaussianRandomField(grid, sigma, tau, alpha)
    samples = np.asarray(jax.vmap(grf.sample)(_keys()), dtype=np.float64)
    assert samples.shape == (NUM_SAMPLES, *grid.shape)
    return samples


def _fourier_eigenvalues(grid, sigma, tau, alpha):
    """σ²(|k|²+τ²)^−α in fftn layout, zero at k = 0, computed independently in numpy."""
    ks = np.meshgrid(*[2 * np.pi * np.fft.fftfreq(n, d=length / n) for n, length in zip(grid.shape, grid.lengths)], indexing="ij")
    k2 = sum(k**2 for k in ks)
    with np.errstate(divide="ignore"):
        lam = sigma**2 * (k2 + tau**2) ** (-alpha)
    lam[(0,) * grid.ndim] = 0.0
    return lam


def _sine_eigenvalues(grid, sigma, tau, alpha):
    """σ²(|k|²+τ²)^−α for k_i = π m_i / L_i, m_i = 1..N_i."""
    ks = np.meshgrid(*[np.pi * np.arange(1, n + 1) / length for n, length in zip(grid.shape, grid.lengths)], indexing="ij")
    return sigma**2 * (sum(k**2 for k in ks) + tau**2) ** (-alpha)


def _self_conjugate(grid):
    """Modes equal to their own negative on the grid (each index 0 or the Nyquist index)."""
    masks = np.meshgrid(*[(np.arange(n) == 0) | (2 * np.arange(n) == n) for n in grid.shape], indexing="ij")
    return np.logical_and.reduce(masks)


def _fourier_variance_deviation(samples, grid, eigenvalues):
    """Per mode: (empirical E|û_k|²·|D| / λ_k − 1) in units of its standard error."""
    volume = math.prod(grid.lengths)
    coefficients = np.fft.fftn(samples, axes=tuple(range(1, grid.ndim + 1))) / grid.size
    power = np.mean(np.abs(coefficients) ** 2, axis=0) * volume
    sampled = eigenvalues > 0
    standard_error = np.where(_self_conjugate(grid), math.sqrt(2 / len(samples)), math.sqrt(1 / len(samples)))
    deviation = np.where(sampled, (power / np.where(sampled, eigenvalues, 1) - 1) / standard_error, 0)
    return deviation, coefficients


@pytest.mark.parametrize("grid, sigma, tau, alpha", [PERIODIC_1D, PERIODIC_2D, PERIODIC_3D], ids=["1d", "2d", "3d"])
def test_periodic_fourier_spectrum_matches_covariance_eigenvalues(grid, sigma, tau, alpha):
    grf = GaussianRandomField(grid, sigma, tau, alpha)
    expected = _fourier_eigenvalues(grid, sigma, tau, alpha)
    np.testing.assert_allclose(grf.covariance_eigenvalues(), expected, rtol=2e-5)
    samples = _samples(grid, sigma, tau, alpha)
    deviation, coefficients = _fourier_variance_deviation(samples, grid, expected)
    assert np.abs(deviation).max() < 5.0
    # Mean mode dropped: every sample has spatial mean zero (to float32 round-off).
    assert np.abs(coefficients[(slice(None),) + (0,) * grid.ndim]).max() < 1e-6 * samples.std()
    # The statistic is sensitive: a slightly wrong exponent is rejected.
    wrong, _ = _fourier_variance_deviation(samples, grid, _fourier_eigenvalues(grid, sigma, tau, alpha + 0.1))
    assert np.abs(wrong).max() > 5.0


@pytest.mark.parametrize("grid, sigma, tau, alpha", [DIRICHLET_2D, DIRICHLET_3D], ids=["2d", "3d"])
def test_dirichlet_sine_coefficients_match_covariance_eigenvalues(grid, sigma, tau, alpha):
    grf = GaussianRandomField(grid, sigma, tau, alpha)
    expected = _sine_eigenvalues(grid, sigma, tau, alpha)
    np.testing.assert_allclose(grf.covariance_eigenvalues(), expected, rtol=2e-5)
    samples = _samples(grid, sigma, tau, alpha)
    # Coefficients a_m of u = Σ a_m Π sqrt(2/L_i) sin(π m_i (x_i - o_i)/L_i), by scipy's DST-I.
    axes = tuple(range(1, grid.ndim + 1))
    normalisation = math.prod((n + 1) * math.sqrt(2 / length) for n, length in zip(grid.shape, grid.lengths))
    coefficients = scipy.fft.dstn(samples, type=1, axes=axes) / normalisation
    deviation = (np.mean(coefficients**2, axis=0) / expected - 1) / math.sqrt(2 / NUM_SAMPLES)
    assert np.abs(deviation).max() < 5.0


def _dense_covariance(grid, grf_eigenvalues):
    """The exact covariance matrix of the grid values, built from the continuous eigenfunctions."""
    points = np.stack(np.meshgrid(*[np.asarray(a, dtype=np.float64) for a in grid.axes()], indexing="ij"))
    points = points.reshape(grid.ndim, -1).T
    if grid.boundary == "periodic":
        ks = np.meshgrid(*[2 * np.pi * np.fft.fftfreq(n, d=length / n) for n, length in zip(grid.shape, grid.lengths)], indexing="ij")
        ks = np.stack(ks).reshape(grid.ndim, -1).T
        basis = np.exp(1j * points @ ks.T) / math.sqrt(math.prod(grid.lengths))
        return np.real((basis * grf_eigenvalues.ravel()) @ basis.conj().T)
    basis = np.ones((len(points), 1))
    for axis, (n, length, x0) in enumerate(zip(grid.shape, grid.lengths, grid.origin)):
        m = np.arange(1, n + 1)
        per_axis = math.sqrt(2 / length) * np.sin(np.pi * np.outer(points[:, axis] - x0, m) / length)
        basis = np.einsum("pi,pj->pij", basis, per_axis).reshape(len(points), -1)
    return (basis * grf_eigenvalues.ravel()) @ basis.T


@pytest.mark.parametrize("grid, sigma, tau, alpha", [PERIODIC_2D, DIRICHLET_1D], ids=["periodic-2d", "dirichlet-1d"])
def test_full_covariance_and_pointwise_variance(grid, sigma, tau, alpha):
    grf = GaussianRandomField(grid, sigma, tau, alpha)
    eigenvalues = (_fourier_eigenvalues if grid.boundary == "periodic" else _sine_eigenvalues)(grid, sigma, tau, alpha)
    expected = _dense_covariance(grid, eigenvalues)
    np.testing.assert_allclose(grf.pointwise_variance().ravel(), np.diag(expected), rtol=1e-5)
    samples = _samples(grid, sigma, tau, alpha).reshape(NUM_SAMPLES, -1)
    empirical = samples.T @ samples / len(samples)  # the mean is known to be zero
    # Standard error of an empirical covariance entry: sqrt((C_ii C_jj + C_ij²) / M).
    variances = np.diag(expected)
    standard_error = np.sqrt((np.outer(variances, variances) + expected**2) / len(samples))
    assert np.abs((empirical - expected) / standard_error).max() < 6.0
    # Zero ensemble mean at every point.
    assert np.all(np.abs(samples.mean(axis=0)) < 5 * np.sqrt(variances / len(samples)))


def test_same_key_same_sample_and_vmap_consistency():
    grid, sigma, tau, alpha = DIRICHLET_2D
    grf = GaussianRandomField(grid, sigma, tau, alpha)
    keys = _keys()
    u = grf.sample(keys[0])
    assert u.shape == grid.shape and u.dtype == jnp.float32
    u = np.asarray(u)
    assert np.all(np.isfinite(u)) and np.abs(u).max() > 0
    np.testing.assert_array_equal(grf.sample(keys[0]), u)  # same key, same sample
    assert np.abs(np.asarray(grf.sample(keys[1])) - u).max() > 1e-3 * np.abs(u).max()
    batch = _samples(*DIRICHLET_2D)
    for i in (0, NUM_SAMPLES - 1):
        single = np.asarray(grf.sample(keys[i]))
        np.testing.assert_allclose(batch[i], single, rtol=0, atol=1e-6 * np.abs(single).max())
    # σ only scales the field (a new σ reuses the compiled sampler: it is a traced leaf).
    np.testing.assert_allclose(GaussianRandomField(grid, 4.0, tau, alpha).sample(keys[0]), 4 * u, rtol=1e-5, atol=1e-6)
    # Thresholding the same draw.
    sampler = ThresholdedField(grf)
    np.testing.assert_array_equal(sampler.sample(keys[0]), np.where(u >= 0, 12.0, 3.0))


def test_hyperparameters_can_be_traced_and_differentiated(x64):
    grid = Grid(16, lengths=2.0)
    key = jax.random.PRNGKey(5)

    def energy(tau):
        return jnp.sum(GaussianRandomField(grid, 1.5, tau, 2.0).sample(key) ** 2)

    tau, step = 2.0, 1e-5
    finite_difference = (energy(tau + step) - energy(tau - step)) / (2 * step)
    np.testing.assert_allclose(jax.grad(energy)(tau), finite_difference, rtol=1e-6)
    # A traced invalid value cannot be checked in Python; it fails at run time, naming `tau`.
    with pytest.raises(RuntimeError, match="`tau`"):
        jax.grad(energy)(-1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sigma=0.0, tau=1.0, alpha=2.0), "`sigma`"),
        (dict(sigma=-1.0, tau=1.0, alpha=2.0), "`sigma`"),
        (dict(sigma=1.0, tau=-1.0, alpha=2.0), "`tau`"),
        (dict(sigma=1.0, tau=float("nan"), alpha=2.0), "`tau`"),
        (dict(sigma=1.0, tau=1.0, alpha=0.0), "`alpha`"),
        (dict(sigma=1.0, tau=1.0, alpha=np.ones(2)), "`alpha`"),
    ],
)
def test_invalid_parameters_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianRandomField(Grid(8), **kwargs)


def test_invalid_grid_is_rejected():
    with pytest.raises(TypeError, match="`grid`"):
        GaussianRandomField((8, 8), 1.0, 1.0, 2.0)


# ---------------------------------------------------------------------------- thresholded fields


@pytest.mark.parametrize("case", [PERIODIC_2D, DIRICHLET_2D], ids=["periodic", "dirichlet"])
def test_thresholded_field_takes_two_values_in_equal_proportion(case):
    coefficients = np.asarray(thresholded(jnp.asarray(_samples(*case), dtype=jnp.float32)))
    assert set(np.unique(coefficients)) == {3.0, 12.0}
    # By the symmetry u ↦ −u the high phase covers half the domain on average; the standard error
    # is estimated from the per-sample fractions (points within a sample are correlated).
    fractions = (coefficients == 12.0).reshape(NUM_SAMPLES, -1).mean(axis=1)
    assert abs(fractions.mean() - 0.5) < 5 * fractions.std() / math.sqrt(len(fractions))


def test_threshold_above_zero_gives_gaussian_tail_fraction():
    grid, sigma, tau, alpha = PERIODIC_2D
    std = math.sqrt(float(GaussianRandomField(grid, sigma, tau, alpha).pointwise_variance()[0, 0]))
    samples = jnp.asarray(_samples(*PERIODIC_2D), dtype=jnp.float32)
    fractions = np.asarray(thresholded(samples, high=1.0, low=0.0, threshold=0.5 * std)).reshape(NUM_SAMPLES, -1).mean(axis=1)
    expected = scipy.stats.norm.sf(0.5)  # P(u >= 0.5 sd) for a stationary centred Gaussian
    assert abs(fractions.mean() - expected) < 5 * fractions.std() / math.sqrt(len(fractions))
    assert abs(fractions.mean() - 0.5) > 0.1  # and visibly not the symmetric proportion


def test_thresholded_validation():
    np.testing.assert_array_equal(thresholded(jnp.array([-1.0, 0.0, 2.0]), high=1.0, low=-1.0), [-1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="`high`"):
        thresholded(jnp.zeros(3), high=float("inf"))
    with pytest.raises(TypeError, match="`field`"):
        ThresholdedField(np.zeros(3))
    with pytest.raises(ValueError, match="`threshold`"):
        ThresholdedField(GaussianRandomField(Grid(8), 1.0, 1.0, 2.0), threshold=float("nan"))


# ---- the sampler base, the cosine (Neumann) field, lognormal coefficients --------------------

from jaxpde.random_fields import (  # noqa: E402
    AbstractGaussianField,
    AbstractRandomField,
    LognormalField,
    NeumannGaussianField,
)


def _cosine_basis(n, length=1.0):
    """φ_m(x_j) = c_m cos(π m x_j / L)/√L at x_j = jL/(n-1), written out independently."""
    x = np.linspace(0.0, length, n)
    return np.array([[(1.0 if m == 0 else np.sqrt(2.0)) * np.cos(np.pi * m * xj / length) / np.sqrt(length) for m in range(n)] for xj in x])


def test_every_sampler_is_a_random_field_and_the_base_is_enforced():
    grf = GaussianRandomField(Grid(8), 1.0, 1.0, 2.0)
    for field in (grf, NeumannGaussianField(5, 1.0, 1.0, 2.0), ThresholdedField(grf), LognormalField(grf, 0.5)):
        assert isinstance(field, AbstractRandomField)
        assert field.sample(jax.random.key(0)).shape == field.shape

    class NoShape(AbstractRandomField):
        def sample(self, key):
            return jnp.zeros(3)

    class NoSample(AbstractRandomField):
        shape: tuple = (3,)

    # `shape` is an eqx.AbstractVar: without `from __future__ import annotations` equinox sees it.
    with pytest.raises(TypeError, match="abstract"):
        NoShape()
    with pytest.raises(TypeError, match="abstract"):
        NoSample()
    with pytest.raises(TypeError, match="AbstractGaussianField"):
        LognormalField(ThresholdedField(grf), 1.0)


def test_neumann_field_covariance_is_the_karhunen_loeve_sum():
    """E z(x_i) z(x_j) = Σ_{m ≠ 0} λ_m φ_m(x_i) φ_m(x_j) (1D, L = 2), by Monte Carlo."""
    n, sigma, tau, alpha, length = 7, 1.5, 2.0, 1.5, 2.0
    field = NeumannGaussianField(n, sigma, tau, alpha, lengths=length)
    z = np.asarray(jax.vmap(field.sample)(_keys(20000)), dtype=np.float64)
    phi = _cosine_basis(n, length)
    lam = sigma**2 * ((np.pi * np.arange(n) / length) ** 2 + tau**2) ** (-alpha)
    lam[0] = 0.0
    covariance = (phi * lam) @ phi.T
    np.testing.assert_allclose(np.asarray(field.pointwise_variance()), np.diag(covariance), rtol=1e-5)
    empirical = z.T @ z / len(z)
    # Standard error of E[z_i z_j]: sqrt((C_ii C_jj + C_ij²)/M); allow 5 of them.
    bound = 5 * np.sqrt((np.outer(np.diag(covariance), np.diag(covariance)) + covariance**2) / len(z))
    assert np.all(np.abs(empirical - covariance) < bound)
    assert abs(z.mean()) < 5 * np.sqrt(covariance.sum() / n**2 / len(z))  # mean zero (constant mode dropped)


def test_neumann_field_2d_variance_matches_the_paper_generator_basis():
    """Var z(x_j) on the 6 × 6 node grid of [0, 1]²: λ_m = (π²|m|² + 9)^(−2), the FNO Darcy law."""
    n, sigma, tau, alpha = 6, 1.0, 3.0, 2.0
    field = NeumannGaussianField((n, n), sigma, tau, alpha)
    z = np.asarray(jax.vmap(field.sample)(_keys(20000)), dtype=np.float64)
    phi = _cosine_basis(n)
    m = np.arange(n)
    lam = sigma**2 * (np.pi**2 * (m[:, None] ** 2 + m[None, :] ** 2) + tau**2) ** (-alpha)
    lam[0, 0] = 0.0
    variance = np.einsum("im,jk,mk->ij", phi**2, phi**2, lam)
    np.testing.assert_allclose(np.asarray(field.pointwise_variance()), variance, rtol=1e-5)
    # A variance estimate from M samples has relative standard error sqrt(2/M) = 1%.
    np.testing.assert_allclose(z.var(axis=0), variance, rtol=0.05)
    # Random on the boundary, unlike the sine series.
    assert np.all(variance[0] > 0.1 * variance.max())


@pytest.mark.parametrize(
    "make",
    [
        lambda: GaussianRandomField(Grid(16, lengths=2.0), 1.0, 2.0, 2.0),
        lambda: GaussianRandomField(Grid((6, 5), boundary="dirichlet"), 1.0, 3.0, 2.0),
        lambda: NeumannGaussianField((5, 6), 1.0, 3.0, 2.0),
    ],
    ids=["periodic", "dirichlet", "neumann"],
)
def test_lognormal_moments_pointwise(make):
    """E a(x) = exp(γ² v(x)/2) and Var a(x) = (e^{γ² v} − 1) e^{γ² v}, v = Var g(x), by Monte Carlo."""
    gaussian = make()
    assert isinstance(gaussian, AbstractGaussianField)
    gamma = 2.0 / float(jnp.sqrt(jnp.max(gaussian.pointwise_variance())))  # γ² max v = 4: heavy tails
    field = LognormalField(gaussian, gamma)
    a = np.asarray(jax.vmap(field.sample)(_keys(20000)), dtype=np.float64)
    assert np.all(a > 0)
    v = np.asarray(gaussian.pointwise_variance(), np.float64)
    mean = np.exp(gamma**2 * v / 2)
    variance = np.expm1(gamma**2 * v) * np.exp(gamma**2 * v)
    np.testing.assert_allclose(np.asarray(field.mean()), mean, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(field.pointwise_variance()), variance, rtol=1e-4)
    # 5 standard errors of a sample mean; the sample log is Gaussian exactly.
    assert np.all(np.abs(a.mean(axis=0) - mean) < 5 * np.sqrt(variance / len(a)))
    np.testing.assert_allclose(np.log(a).var(axis=0), gamma**2 * v, rtol=0.06)


def test_lognormal_is_differentiable_in_gamma_and_rejects_bad_gamma():
    gaussian = GaussianRandomField(Grid(16), 1.0, 2.0, 2.0)
    key = jax.random.key(3)
    g = gaussian.sample(key)
    grad = jax.grad(lambda gamma: jnp.sum(LognormalField(gaussian, gamma).sample(key)))(0.5)
    np.testing.assert_allclose(grad, jnp.sum(g * jnp.exp(0.5 * g)), rtol=1e-5)
    with pytest.raises(ValueError, match="`gamma` must be finite"):
        LognormalField(gaussian, float("nan"))
    with pytest.raises(ValueError, match="`gamma` must be a scalar"):
        LognormalField(gaussian, jnp.ones(2))
    with pytest.raises(ValueError, match="`sigma` must be finite and positive"):
        NeumannGaussianField(8, 0.0, 1.0, 2.0)
    with pytest.raises(TypeError, match="`shape`"):
        NeumannGaussianField(8.0, 1.0, 1.0, 2.0)


def test_thresholded_neumann_field_is_two_phase_with_random_boundary():
    a = ThresholdedField(NeumannGaussianField((9, 9), 1.0, 3.0, 2.0)).sample(jax.random.key(1))
    assert a.shape == (9, 9) and set(np.unique(np.asarray(a))) <= {3.0, 12.0}
