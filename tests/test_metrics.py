"""jaxpde.metrics against hand computations, Parseval, constructed rollouts and closed forms for Gaussians."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats

from jaxpde import metrics

# ----------------------------------------------------------------------------------------------
# Field errors
# ----------------------------------------------------------------------------------------------


def test_relative_l2_by_hand():
    # p − t = (3, −1): ‖p − t‖ = √10, ‖t‖ = 5.
    assert float(metrics.relative_l2(jnp.array([3.0, 4.0]), jnp.array([0.0, 5.0]))) == pytest.approx(math.sqrt(10) / 5)
    # A batch of two: errors (√10/5, 1/2) per sample, mean of the two.
    prediction = jnp.array([[3.0, 4.0], [1.0, 0.0]])
    target = jnp.array([[0.0, 5.0], [2.0, 0.0]])
    np.testing.assert_allclose(metrics.relative_l2(prediction, target, axes=-1), [math.sqrt(10) / 5, 0.5], rtol=1e-6)
    assert float(metrics.mean_relative_l2(prediction, target)) == pytest.approx((math.sqrt(10) / 5 + 0.5) / 2, rel=1e-6)
    # Over all axes at once: ‖(3, −1, −1, 0)‖ / ‖(0, 5, 2, 0)‖.
    assert float(metrics.relative_l2(prediction, target)) == pytest.approx(math.sqrt(11 / 29), rel=1e-6)


def test_relative_l2_keeps_the_axes_not_reduced():
    rng = np.random.default_rng(0)
    p, t = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(2, 3, 4, 5))
    got = metrics.relative_l2(jnp.asarray(p, jnp.float32), jnp.asarray(t, jnp.float32), axes=(1, 3))
    expected = np.array([[np.linalg.norm(p[b, :, j] - t[b, :, j]) / np.linalg.norm(t[b, :, j]) for j in range(4)] for b in range(2)])
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # jit (axes static) and vmap (one sample in, a scalar out) agree with the axes form.
    fn = jax.jit(metrics.relative_l2, static_argnames="axes")
    np.testing.assert_allclose(fn(p.astype(np.float32), t.astype(np.float32), axes=(1, 3)), expected, rtol=1e-5)
    per_sample = jax.vmap(metrics.relative_l2)(jnp.asarray(p, jnp.float32), jnp.asarray(t, jnp.float32))
    np.testing.assert_allclose(per_sample, [np.linalg.norm(p[b] - t[b]) / np.linalg.norm(t[b]) for b in range(2)], rtol=1e-5)


def test_rmse_and_pdebench_nrmse():
    assert float(metrics.rmse(jnp.array([1.0, 2.0, 3.0, 4.0]), jnp.array([1.0, 0.0, 3.0, 0.0]))) == pytest.approx(math.sqrt(5))
    # PDEBench layout (batch, x, y, time, channel): one ratio per (sample, time, channel), then the mean.
    rng = np.random.default_rng(1)
    p, t = rng.normal(size=(3, 4, 5, 2, 2)), rng.normal(size=(3, 4, 5, 2, 2)) + 0.5
    ratios = [np.sqrt(np.mean((p[b, :, :, s, c] - t[b, :, :, s, c]) ** 2)) / np.sqrt(np.mean(t[b, :, :, s, c] ** 2))
              for b in range(3) for s in range(2) for c in range(2)]
    got = metrics.nrmse(jnp.asarray(p, jnp.float32), jnp.asarray(t, jnp.float32), axes=(1, 2))
    assert float(got) == pytest.approx(np.mean(ratios), rel=1e-5)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: metrics.relative_l2(jnp.ones(3), jnp.ones(4)), r"relative_l2: `prediction` and `target` must have the same shape, got \(3,\) and \(4,\)"),
        (lambda: metrics.nrmse(jnp.ones(3), jnp.ones(3, dtype=jnp.int32)), r"nrmse: `target` must be a real floating-point array, got dtype int32"),
        (lambda: metrics.rmse(jnp.ones((2, 3)), jnp.ones((2, 3)), axes=2), r"rmse: `axes` must be integers in \[-2, 2\)"),
        (lambda: metrics.relative_l2(jnp.ones((2, 3)), jnp.ones((2, 3)), axes=(1, -1)), r"`axes` must not repeat"),
        (lambda: metrics.correlation_time(jnp.ones(5), jnp.ones(5)), r"correlation_time: `prediction` must be \(time, \*field\)"),
        (lambda: metrics.energy_spectrum(jnp.ones((2, 2, 2, 2))), r"energy_spectrum: `u` must be a 1, 2 or 3-d field"),
        (lambda: metrics.energy_spectrum(jnp.ones((4, 4)), lengths=(1.0,)), r"energy_spectrum: `lengths` must be positive, one per axis"),
        (lambda: metrics.error_spectrum(jnp.ones(4), jnp.ones(5)), r"error_spectrum: `prediction` and `target`"),
        (lambda: metrics.mmd2(jnp.ones((4, 2)), jnp.ones((4, 3)), 1.0), r"mmd2: samples of `x` and `y` must have the same shape, got \(2,\) and \(3,\)"),
        (lambda: metrics.mmd2(jnp.ones((4, 2)), jnp.ones((4, 2)), 0.0), r"mmd2: `bandwidth` must be finite and positive"),
        (lambda: metrics.mmd2(jnp.ones((1, 2)), jnp.ones((4, 2)), 1.0), r"mmd2: the unbiased estimator needs at least 2 samples"),
        (lambda: metrics.sliced_wasserstein(jnp.ones((4, 2)), jnp.ones((5, 2)), jax.random.key(0)),
         r"sliced_wasserstein: `y` must have as many samples as `x` \(4\), got 5"),
        (lambda: metrics.wasserstein_1d(jnp.ones(4), jnp.ones(4), p=0.5), r"wasserstein_1d: `p` must be >= 1"),
        (lambda: metrics.median_bandwidth(jnp.arange(4)), r"median_bandwidth: `x` must be a real floating-point array"),
    ],
)
def test_input_checks_name_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ----------------------------------------------------------------------------------------------
# Spectra
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, lengths", [((64,), 2 * math.pi), ((33,), 1.0), ((16, 12), (1.0, 3.0)), ((8, 9, 10), 2 * math.pi)])
def test_spectrum_satisfies_parseval(x64, shape, lengths):
    u = jnp.asarray(np.random.default_rng(0).normal(size=shape))
    k, spectrum = jax.jit(metrics.energy_spectrum, static_argnums=1)(u, lengths)
    assert k.shape == spectrum.shape and bool(jnp.all(spectrum >= 0))
    assert float(jnp.sum(spectrum)) == pytest.approx(float(jnp.mean(u**2)), rel=1e-12)


@pytest.mark.parametrize(
    "shape, mode, shell",
    [((64,), (5,), 5), ((64,), (32,), 32), ((33,), (16,), 16), ((32, 32), (3, 4), 5), ((32, 32), (-4, 3), 5), ((12, 16, 16), (1, 2, 2), 3)],
)
def test_one_fourier_mode_lands_in_its_shell(x64, shape, mode, shell):
    # u = A cos(2π m·x/L + φ) on the box of side L = 1: mean square A²/2 (A² at Nyquist, where only cos survives).
    amplitude, phase = 1.7, 0.3
    grids = np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij")
    u = amplitude * np.cos(2 * np.pi * sum(m * x for m, x in zip(mode, grids)) + phase)
    k, spectrum = jax.jit(metrics.energy_spectrum, static_argnums=1)(jnp.asarray(u), 1.0)
    expected = np.zeros(spectrum.shape)
    expected[shell] = np.mean(u**2)
    np.testing.assert_allclose(spectrum, expected, atol=1e-12)
    assert float(k[shell]) == pytest.approx(2 * np.pi * shell)
    nyquist = any(2 * abs(m) == n for m, n in zip(mode, shape))
    assert float(spectrum[shell]) == pytest.approx(amplitude**2 * (np.cos(phase) ** 2 if nyquist else 0.5))


def test_error_spectrum_sees_only_the_wrong_mode(x64):
    x = np.arange(128) * 2 * np.pi / 128
    target = jnp.asarray(np.sin(3 * x) + 0.2 * np.cos(7 * x))
    prediction = target + 0.01 * jnp.sin(20 * x)
    k, error = metrics.error_spectrum(prediction, target)
    expected = np.zeros(error.shape)
    expected[20] = 0.01**2 / 2
    np.testing.assert_allclose(error, expected, atol=1e-15)
    # And jit and vmap over a batch.
    batched = jax.jit(jax.vmap(metrics.error_spectrum))(jnp.stack([prediction, target]), jnp.stack([target, target]))
    np.testing.assert_allclose(batched[1][0], expected, atol=1e-15)
    np.testing.assert_allclose(batched[1][1], 0, atol=1e-30)


# ----------------------------------------------------------------------------------------------
# Rollouts
# ----------------------------------------------------------------------------------------------


def _rollout_with_correlations(rhos, seed, shape=(32, 16)):
    """Frames ``cos θ_n · t_n + sin θ_n · e_n`` with centred orthonormal ``t_n ⊥ e_n``: correlation exactly ``cos θ_n``."""
    noise = np.random.default_rng(seed).normal(size=(len(rhos), math.prod(shape), 2))
    q, _ = np.linalg.qr(noise - noise.mean(axis=1, keepdims=True))  # orthonormal columns, still centred
    rhos = np.asarray(rhos)[:, None]
    prediction = rhos * q[..., 0] + np.sqrt(1 - rhos**2) * q[..., 1]
    return jnp.asarray(prediction.reshape(len(rhos), *shape)), jnp.asarray(3.0 * q[..., 0].reshape(len(rhos), *shape) + 1.0)


def test_pearson_correlation_of_constructed_frames(x64):
    rhos = [1.0, 0.6, -0.3, 0.0]
    prediction, target = _rollout_with_correlations(rhos, 1)
    np.testing.assert_allclose(metrics.pearson_correlation(prediction, target, axes=(1, 2)), rhos, atol=1e-12)
    # Invariant under positive affine maps of either argument, sign flip under negative ones.
    np.testing.assert_allclose(metrics.pearson_correlation(-2 * prediction + 5, target, axes=(1, 2)), -np.array(rhos), atol=1e-12)


def test_correlation_time_of_a_constructed_rollout(x64):
    # Above 0.8 for five frames, then below (a later recovery does not count).
    rhos = [1.0, 0.99, 0.95, 0.9, 0.81, 0.79, 0.5, 0.9, 0.95]
    prediction, target = _rollout_with_correlations(rhos, 2)
    assert int(metrics.correlation_time(prediction, target)) == 5
    assert float(metrics.correlation_time(prediction, target, dt=0.25)) == pytest.approx(1.25)
    assert int(metrics.correlation_time(prediction, target, threshold=0.93)) == 3
    assert int(metrics.correlation_time(prediction, target, threshold=0.3)) == len(rhos)  # never decorrelates
    # A constant frame (nan correlation) is decorrelated; vmap over a batch of rollouts; jit.
    flat = prediction.at[2].set(1.0)
    batch = jax.jit(jax.vmap(metrics.correlation_time))(jnp.stack([prediction, flat]), jnp.stack([target, target]))
    np.testing.assert_array_equal(batch, [5, 2])


# ----------------------------------------------------------------------------------------------
# Distances between distributions
# ----------------------------------------------------------------------------------------------


def _expected_kernel(mu_x, var_x, mu_y, var_y, h):
    """``E exp(−‖X − Y‖²/(2h²))`` for independent ``X ~ N(μx, σx² I)``, ``Y ~ N(μy, σy² I)`` in ``d`` dims."""
    d = len(mu_x)
    s = h**2 + var_x + var_y
    return (h**2 / s) ** (d / 2) * math.exp(-float(np.sum((np.asarray(mu_x) - np.asarray(mu_y)) ** 2)) / (2 * s))


def test_mmd2_matches_the_closed_form_between_gaussians(x64):
    mu_x, var_x, mu_y, var_y, h = (0.0, 0.0), 1.0, (1.0, 0.5), 0.5**2, 0.7
    exact = (_expected_kernel(mu_x, var_x, mu_x, var_x, h) + _expected_kernel(mu_y, var_y, mu_y, var_y, h)
             - 2 * _expected_kernel(mu_x, var_x, mu_y, var_y, h))
    # The unbiased estimator's mean over independent repetitions converges to MMD² ≈ 0.30:
    # 32 repetitions of n = m = 400 give a standard error of about 1.5% of it.
    reps, n = 32, 400
    z = np.random.default_rng(3).normal(size=(reps, 2, n, 2))
    x = np.asarray(mu_x) + math.sqrt(var_x) * z[:, 0]
    y = np.asarray(mu_y) + math.sqrt(var_y) * z[:, 1]
    estimates = jax.jit(jax.vmap(lambda a, b: metrics.mmd2(a, b, h)))(x, y)
    stderr = float(jnp.std(estimates)) / math.sqrt(reps)
    assert stderr < 0.03 * exact
    assert abs(float(jnp.mean(estimates)) - exact) < 4 * stderr
    # The test tells the bandwidth conventions apart: exp(−d²/h²) is exp(−d²/(2(h/√2)²)).
    other = (_expected_kernel(mu_x, var_x, mu_x, var_x, h / math.sqrt(2)) + _expected_kernel(mu_y, var_y, mu_y, var_y, h / math.sqrt(2))
             - 2 * _expected_kernel(mu_x, var_x, mu_y, var_y, h / math.sqrt(2)))
    assert abs(float(jnp.mean(estimates)) - other) > 8 * stderr  # 25% apart
    # The biased estimator differs from the unbiased one by exactly (1 − mean off-diagonal k)/n per sample set.
    x, y = jnp.asarray(x[0]), jnp.asarray(y[0])
    off = lambda s: 2 * np.sum(np.exp(-scipy.spatial.distance.pdist(s, "sqeuclidean") / (2 * h**2))) / (n * (n - 1))  # noqa: E731
    gap = (1 - off(x)) / n + (1 - off(y)) / n
    assert float(metrics.mmd2(x, y, h, unbiased=False) - metrics.mmd2(x, y, h)) == pytest.approx(gap, rel=1e-8)
    # A sum of kernels is the sum of the discrepancies.
    several = metrics.mmd2(x, y, jnp.array([0.5, 2.0]))
    assert float(several) == pytest.approx(float(metrics.mmd2(x, y, 0.5) + metrics.mmd2(x, y, 2.0)), rel=1e-10)


def test_mmd2_of_equal_laws_has_expectation_zero_unbiased(x64):
    # Many independent pairs of small samples from N(0, I_3): the unbiased mean is 0, the biased one
    # carries the bias 2(1 − E k(X, X'))/n; both checked to four standard errors.
    n, reps, h, d = 16, 2000, 1.0, 3
    samples = jnp.asarray(np.random.default_rng(4).normal(size=(reps, 2, n, d)))
    unbiased = jax.jit(jax.vmap(lambda s: metrics.mmd2(s[0], s[1], h)))(samples)
    biased = jax.jit(jax.vmap(lambda s: metrics.mmd2(s[0], s[1], h, unbiased=False)))(samples)
    stderr = lambda v: float(jnp.std(v)) / math.sqrt(reps)  # noqa: E731
    assert abs(float(jnp.mean(unbiased))) < 4 * stderr(unbiased)
    bias = 2 * (1 - _expected_kernel((0,) * d, 1.0, (0,) * d, 1.0, h)) / n
    assert abs(float(jnp.mean(biased)) - bias) < 4 * stderr(biased)
    # The same sample twice: the biased estimator is exactly zero.
    assert abs(float(metrics.mmd2(samples[0, 0], samples[0, 0], h, unbiased=False))) < 1e-14


def test_median_bandwidth_is_the_median_pairwise_distance(x64):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(30, 2, 2)), rng.normal(size=(21, 2, 2)) + 1.0
    pooled = np.concatenate([x, y]).reshape(51, -1)
    assert float(metrics.median_bandwidth(x, y)) == pytest.approx(np.median(scipy.spatial.distance.pdist(pooled)), rel=1e-12)
    assert float(metrics.median_bandwidth(x)) == pytest.approx(np.median(scipy.spatial.distance.pdist(x.reshape(30, -1))), rel=1e-12)


def test_wasserstein_1d_exact(x64):
    # Sorted (0, 1) against sorted (1, 3): distances 1 and 2.
    assert float(metrics.wasserstein_1d(jnp.array([1.0, 0.0]), jnp.array([3.0, 1.0]), p=1)) == pytest.approx(1.5)
    assert float(metrics.wasserstein_1d(jnp.array([1.0, 0.0]), jnp.array([3.0, 1.0]))) == pytest.approx(math.sqrt(2.5))
    x = jax.random.normal(jax.random.key(6), (500,), dtype=jnp.float64)
    for p in (1, 2, 3):  # a shift moves every atom by the same distance
        assert float(metrics.wasserstein_1d(x, x + 0.7, p=p)) == pytest.approx(0.7, rel=1e-12)
    y = 2 * jax.random.normal(jax.random.key(7), (500,), dtype=jnp.float64) + 1
    assert float(metrics.wasserstein_1d(x, y, p=1)) == pytest.approx(scipy.stats.wasserstein_distance(x, y), rel=1e-10)


def test_sliced_wasserstein_between_gaussians(x64):
    d = 3
    delta = jnp.array([2.0, -1.0, 1.0])  # SW2² = ‖Δμ‖²/d = 2
    kx, ky, kp = jax.random.split(jax.random.key(8), 3)
    # Shifted copy: each slice's W2² is exactly (θ·Δμ)², so only the directions are random
    # (their Monte Carlo standard error at 4096 projections is about 1.5%).
    x = jax.random.normal(kx, (50, d), dtype=jnp.float64)
    shifted = metrics.sliced_wasserstein(x, x + delta, kp, projections=4096)
    assert float(shifted) ** 2 == pytest.approx(2.0, rel=0.05)
    # Independent samples of N(0, I) and N(Δμ, I): the noise of the sample means and of 256
    # directions add about 7% (an unnormalised θ would give 6, SW instead of SW² 1.41).
    x = jax.random.normal(kx, (1000, d), dtype=jnp.float64)
    y = delta + jax.random.normal(ky, (1000, d), dtype=jnp.float64)
    jitted = jax.jit(lambda a, b, k: metrics.sliced_wasserstein(a, b, k, projections=256))
    assert float(jitted(x, y, kp)) ** 2 == pytest.approx(2.0, rel=0.2)
    # Same key, same directions; another key, others. In 1D the slice is the line itself.
    assert float(jitted(x, y, kp)) == float(jitted(x, y, kp)) != float(jitted(x, y, kx))
    exact = metrics.wasserstein_1d(x[:, 0], y[:, 0], p=1)
    assert float(metrics.sliced_wasserstein(x[:, :1], y[:, :1], kp, projections=8, p=1)) == pytest.approx(float(exact), rel=1e-12)
