"""Losses: denoising score matching with the exact mixture prediction sits at its analytic minimum
(a Gaussian's posterior variance), below perturbed predictions, in every parameterisation; the
U-shaped time law against its CDF; flow matching's target; bad input."""

import math
from typing import Any

import equinox as eqx

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxpde.samplers._losses import DenoisingScoreMatching, FlowMatching, UniformTime, UShapedTime
from jaxpde.samplers._mixture import GaussianMixture
from jaxpde.samplers._paths import LinearPath
from jaxpde.samplers._schedules import VPLinear


class _Perturbed(eqx.Module):
    model: Any
    scale: jax.Array
    shift: jax.Array

    def __call__(self, x, t):
        return self.scale * self.model(x, t) + self.shift


def test_dsm_with_the_exact_prediction_is_at_its_analytic_minimum(x64):
    # Data N(0, s² I): E[ε | x_t] = σ x_t/(α² s² + σ²) and the minimum ε-MSE per coordinate is
    # the posterior variance α² s²/(α² s² + σ²), averaged over t ~ U[t_min, t_max].
    s, schedule = 0.7, VPLinear()
    data = GaussianMixture(np.ones(1), np.zeros((1, 2)), s**2)
    x0 = data.sample(jax.random.key(0), 8000)
    key = jax.random.key(1)
    ts = np.linspace(schedule.t_min, schedule.t_max, 4001)
    a2, sig2 = np.asarray(schedule.alpha(ts)) ** 2, np.asarray(schedule.sigma(ts)) ** 2
    minimum = np.trapezoid(a2 * s**2 / (a2 * s**2 + sig2), ts) / (schedule.t_max - schedule.t_min)
    loss = eqx.filter_jit(DenoisingScoreMatching(schedule, "eps"))  # one compilation for the three models
    exact = data.denoiser(schedule, "eps").model
    value = float(loss(_Perturbed(exact, jnp.array(1.0), jnp.array(0.0)), x0, key)[0])
    # per-sample losses have a standard deviation below 1: standard error ~0.01
    assert value == pytest.approx(minimum, abs=0.04)
    assert float(loss(_Perturbed(exact, jnp.array(1.1), jnp.array(0.0)), x0, key)[0]) > value
    assert float(loss(_Perturbed(exact, jnp.array(1.0), jnp.array(0.05)), x0, key)[0]) > value


@pytest.mark.slow  # four more compiled losses
@pytest.mark.parametrize("kind", ["x0", "v", "score", "flow"])
def test_dsm_is_the_same_objective_in_every_parameterisation(kind, x64):
    # The exact prediction of each kind, with the eps weighting, gives the ε loss (same key:
    # the same x_t and ε), so the error scale c(t) of each parameterisation is right.
    schedule = VPLinear()
    data = GaussianMixture(np.ones(1), np.zeros((1, 2)), 0.49)
    x0 = data.sample(jax.random.key(0), 512)
    key = jax.random.key(1)
    value = DenoisingScoreMatching(schedule, "eps")(data.denoiser(schedule, "eps").model, x0, key)[0]
    other = DenoisingScoreMatching(schedule, kind)(data.denoiser(schedule, kind).model, x0, key)[0]
    np.testing.assert_allclose(other, value, rtol=1e-9)


def test_u_shaped_time_matches_its_cdf():
    a, schedule = 4.0, LinearPath()
    t = np.asarray(UShapedTime(a).sample(jax.random.key(0), (4000,), schedule))
    cdf = lambda u: (np.sinh(a * (u - 0.5)) + math.sinh(a / 2)) / (2 * math.sinh(a / 2))
    assert scipy.stats.kstest(t, cdf).pvalue > 1e-3
    # and it is U-shaped: the outer fifths hold more than the middle fifth, ~ cosh(±1.6)/cosh(0)
    outer, middle = np.mean(t < 0.2), np.mean((t > 0.4) & (t < 0.6))
    assert outer > 2 * middle
    assert scipy.stats.kstest(np.asarray(UniformTime().sample(jax.random.key(1), (4000,), schedule)), "uniform").pvalue > 1e-3


@pytest.mark.slow  # two more compiled losses
def test_flow_matching_target_is_noise_minus_data():
    # With the pair given (reflow), x_t = (1 − t) x₀ + t x₁ and the target x₁ − x₀ equals
    # (x_t − x₀)/t: a model knowing x₀ (a constant batch) has zero loss, and the paired x₁ is used.
    x1 = jax.random.normal(jax.random.key(1), (64, 3))
    x0 = jnp.broadcast_to(jnp.array([1.0, -2.0, 0.5]), (64, 3))
    value, _ = FlowMatching()(lambda x, t: (x - x0[0]) / t, (x0, x1), jax.random.key(2))
    assert float(value) < 1e-10
    # the zero model's loss is then E‖x₁ − x₀‖²/d, for this very x₁
    value0, _ = FlowMatching()(lambda x, t: jnp.zeros_like(x), (x0, x1), jax.random.key(2))
    np.testing.assert_allclose(value0, jnp.mean((x1 - x0) ** 2), rtol=1e-5)


def test_bad_input_errors():
    with pytest.raises(ValueError, match=r"DenoisingScoreMatching: `weighting` must be one of"):
        DenoisingScoreMatching(VPLinear(), weighting="snr+1")
    with pytest.raises(ValueError, match=r"`parameterisation` must be one of"):
        DenoisingScoreMatching(VPLinear(), parameterisation="velocity")
    with pytest.raises(ValueError, match=r"must have the shape of x_t \(2,\)"):  # at trace time
        eqx.filter_eval_shape(DenoisingScoreMatching(VPLinear()), lambda x, t: jnp.zeros(3), jnp.zeros((4, 2)), jax.random.key(0))
    with pytest.raises(ValueError, match="FlowMatching: a paired batch"):
        FlowMatching()(lambda x, t: x, (jnp.zeros((4, 2)), jnp.zeros((3, 2))), jax.random.key(0))
