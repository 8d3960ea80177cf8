"""The probability-flow log-likelihood of the exact 8-Gaussian model against the exact noised
mixture log-density: to ODE tolerance with the exact trace, within Monte-Carlo error with
Hutchinson's estimator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.samplers._likelihood import log_likelihood
from jaxpde.samplers._mixture import eight_gaussians
from jaxpde.samplers._schedules import VPLinear


@pytest.fixture
def problem(x64):
    mixture, schedule = eight_gaussians(), VPLinear(t_min=1e-2)
    x = mixture.noised(schedule, schedule.t_min).sample(jax.random.key(0), 3)
    prior = mixture.noised(schedule, schedule.t_max).log_prob
    return mixture.denoiser(schedule, "eps"), x, prior, np.asarray(mixture.noised(schedule, schedule.t_min).log_prob(x))


def test_exact_trace_matches_the_mixture_density(problem):
    denoiser, x, prior, exact = problem
    fn = jax.jit(jax.vmap(lambda y: log_likelihood(denoiser, y, prior_log_prob=prior, trace="exact", rtol=1e-7, atol=1e-7)))
    np.testing.assert_allclose(fn(x), exact, atol=1e-4)


@pytest.mark.slow  # 24 adaptive solves
def test_hutchinson_estimate_is_within_its_monte_carlo_error(problem):
    denoiser, x, prior, exact = problem
    keys = jax.random.split(jax.random.key(1), 12)
    one = lambda y, k: log_likelihood(denoiser, y, key=k, prior_log_prob=prior, probes=2, rtol=1e-6, atol=1e-6)
    estimates = np.asarray(jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))(x[:2], keys))
    mean, se = estimates.mean(axis=1), estimates.std(axis=1, ddof=1) / np.sqrt(keys.shape[0])
    assert np.all(se > 0)  # the estimator is random ...
    assert np.all(np.abs(mean - exact[:2]) < 4 * se + 1e-4), (mean, exact, se)  # ... and unbiased


def test_bad_trace_errors(problem):
    denoiser, x, prior, _ = problem
    with pytest.raises(ValueError, match="`trace` must be 'exact' or 'hutchinson'"):
        log_likelihood(denoiser, x[0], trace="jacobian")
    with pytest.raises(ValueError, match="needs a `key`"):
        log_likelihood(denoiser, x[0])
