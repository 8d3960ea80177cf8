"""GaussianMixture against scipy's densities, autodiff of its log-density, the single-Gaussian
posterior mean, and Monte-Carlo moments of its samples."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxpde.samplers._mixture import GaussianMixture, eight_gaussians
from jaxpde.samplers._schedules import VE, VPLinear


def _random_mixture(rng, k=3, d=3):
    a = rng.normal(size=(k, d, d))
    covariances = a @ np.transpose(a, (0, 2, 1)) + 0.5 * np.eye(d)
    return rng.uniform(0.5, 2.0, size=k), rng.normal(size=(k, d)) * 2, covariances


def test_log_prob_and_noised_score_against_scipy_and_autodiff(x64):
    rng = np.random.default_rng(0)
    w, mu, cov = _random_mixture(rng)
    mixture = GaussianMixture(w, mu, cov)
    x = rng.normal(size=(5, 3)) * 2
    expected = np.log(sum(w[k] / w.sum() * scipy.stats.multivariate_normal(mu[k], cov[k]).pdf(x) for k in range(3)))
    np.testing.assert_allclose(mixture.log_prob(x), expected, rtol=1e-12)
    # noised: means α μ, covariances α² Σ + σ² I (scipy again), and the score is ∇ log p_t
    schedule, t = VPLinear(), 0.4
    a, s = float(schedule.alpha(t)), float(schedule.sigma(t))
    expected_t = np.log(sum(w[k] / w.sum() * scipy.stats.multivariate_normal(a * mu[k], a**2 * cov[k] + s**2 * np.eye(3)).pdf(x) for k in range(3)))
    np.testing.assert_allclose(mixture.noised(schedule, t).log_prob(x), expected_t, rtol=1e-12)
    autodiff = jax.vmap(jax.grad(mixture.noised(schedule, t).log_prob))(jnp.asarray(x))
    np.testing.assert_allclose(mixture.score(x, t, schedule), autodiff, rtol=1e-10, atol=1e-12)


def test_predictions_are_the_gaussian_posterior_mean(x64):
    # One component N(μ, Σ): E[x₀ | x_t] = μ + α Σ (α² Σ + σ² I)⁻¹ (x_t − α μ).
    rng = np.random.default_rng(1)
    _, mu, cov = _random_mixture(rng, k=1)
    mixture = GaussianMixture(np.ones(1), mu, cov[:1])
    schedule, t = VE(), 0.3
    a, s = float(schedule.alpha(t)), float(schedule.sigma(t))
    x = rng.normal(size=(4, 3))
    gain = a * cov[0] @ np.linalg.inv(a**2 * cov[0] + s**2 * np.eye(3))
    x0 = mu[0] + (x - a * mu[0]) @ gain.T
    np.testing.assert_allclose(mixture.x0_prediction(x, t, schedule), x0, rtol=1e-11)
    np.testing.assert_allclose(mixture.eps_prediction(x, t, schedule), (x - a * x0) / s, rtol=1e-10)
    np.testing.assert_allclose(mixture.v_prediction(x, t, schedule), a * (x - a * x0) / s - s * x0, rtol=1e-10)
    # the exact denoiser is a drop-in model
    den = mixture.denoiser(schedule, "x0")
    np.testing.assert_allclose(jax.vmap(den, in_axes=(0, None))(jnp.asarray(x), t), x0, rtol=1e-11)


@pytest.mark.slow  # 40000 samples
def test_samples_have_the_mixture_moments(x64):
    rng = np.random.default_rng(2)
    w, mu, cov = _random_mixture(rng, k=2, d=2)
    mixture = GaussianMixture(w, mu, cov)
    n = 40_000
    x = np.asarray(mixture.sample(jax.random.key(0), n))
    # 5 standard errors of the mean; the covariance to a few percent
    se = np.sqrt(np.diag(np.asarray(mixture.covariance())) / n)
    assert np.all(np.abs(x.mean(0) - np.asarray(mixture.mean())) < 5 * se)
    np.testing.assert_allclose(np.cov(x.T), mixture.covariance(), rtol=0.05, atol=0.05)


def test_eight_gaussians_and_isotropic_forms():
    m = eight_gaussians()
    assert m.means.shape == (8, 2)
    np.testing.assert_allclose(m.means[1], 4 * np.array([np.cos(np.pi / 4), np.sin(np.pi / 4)]), rtol=1e-6)
    np.testing.assert_allclose(m.covariances, np.broadcast_to(0.09 * np.eye(2), (8, 2, 2)), rtol=1e-6)
    np.testing.assert_allclose(m.weights, 1 / 8)
    same = GaussianMixture(np.ones(8), m.means, 0.09)
    np.testing.assert_allclose(same.log_prob(np.array([[4.0, 0.0], [0.0, 0.0]])), m.log_prob(np.array([[4.0, 0.0], [0.0, 0.0]])), rtol=1e-6)


def test_bad_input_errors():
    with pytest.raises(ValueError, match=r"GaussianMixture: `covariances` must have shape \(K, d, d\) = \(2, 2, 2\)"):
        GaussianMixture(np.ones(2), np.zeros((2, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="`weights` must be positive"):
        GaussianMixture(np.array([1.0, -1.0]), np.zeros((2, 2)), 1.0)
    with pytest.raises(ValueError, match=r"`x` must have shape \(\.\.\., d\) with d = 2, got \(3,\)"):
        eight_gaussians().log_prob(np.zeros(3))
