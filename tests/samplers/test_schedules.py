"""Noise schedules against their closed forms: α, σ, λ and the inverse round-trip in float64; f and
g² against finite differences of the marginal variance; the SDE's marginals; range errors."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.samplers._paths import LinearPath, StochasticInterpolant
from jaxpde.samplers._schedules import EDM, VE, SubVP, VPCosine, VPLinear

SCHEDULES = [VPLinear(), SubVP(), VPCosine(), VE(), EDM(), LinearPath(t_min=1e-4, t_max=1 - 1e-4),
             StochasticInterpolant(noise=0.5, t_min=1e-4, t_max=1 - 1e-4)]
IDS = [type(s).__name__ for s in SCHEDULES]


N = 32  # one array shape throughout: eager ops compile once per shape


def _times(schedule):
    # Geometric near t_min as well (where λ is large and cancellation would show).
    lin = np.linspace(schedule.t_min, schedule.t_max, N // 2)
    low = max(schedule.t_min, 1e-6)
    geo = low * (schedule.t_max / low) ** np.linspace(0, 1, N // 2)
    return jnp.asarray(np.clip(np.concatenate([lin, geo]), schedule.t_min, schedule.t_max))


@pytest.mark.parametrize("schedule", SCHEDULES, ids=IDS)
def test_log_snr_inverse_and_sde_coefficients(schedule, x64):
    t = _times(schedule)
    alpha, sigma, lam = (np.asarray(f(t)) for f in (schedule.alpha, schedule.sigma, schedule.log_snr))
    np.testing.assert_allclose(lam, np.log(alpha**2 / sigma**2), rtol=1e-12, atol=1e-12)
    assert np.all(np.diff(lam[: N // 2]) < 0), "λ must decrease"
    # the inverse, both ways
    np.testing.assert_allclose(schedule.t_of_log_snr(lam), t, rtol=1e-12, atol=1e-15)
    grid = jnp.linspace(lam.min(), lam.max(), N + 2)[1:-1]
    np.testing.assert_allclose(schedule.log_snr(schedule.t_of_log_snr(grid)), grid, rtol=1e-10, atol=1e-10)
    # The linear SDE dx = f x dt + g dW has mean α x₀ and variance σ² iff α' = f α and
    # (σ²)' = 2 f σ² + g²: check both against central finite differences.
    span = schedule.t_max - schedule.t_min
    inner = jnp.linspace(schedule.t_min + 0.01 * span, schedule.t_max - 0.01 * span, N)
    h = 1e-6 * jnp.maximum(inner, 1e-3)
    alpha_fd = (schedule.alpha(inner + h) - schedule.alpha(inner - h)) / (2 * h)
    var_fd = (schedule.sigma(inner + h) ** 2 - schedule.sigma(inner - h) ** 2) / (2 * h)
    f, g2 = schedule.drift(inner), schedule.diffusion_squared(inner)
    np.testing.assert_allclose(alpha_fd, f * schedule.alpha(inner), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(var_fd, 2 * f * schedule.sigma(inner) ** 2 + g2, rtol=1e-6)
    np.testing.assert_allclose(schedule.alpha_dot(inner), alpha_fd, rtol=1e-6, atol=1e-9)


def test_closed_forms(x64):
    t = jnp.linspace(1e-3, 0.99, N)
    log_alpha = -0.25 * t**2 * 19.9 - 0.5 * t * 0.1
    np.testing.assert_allclose(VPLinear().alpha(t), np.exp(log_alpha), rtol=1e-14)
    np.testing.assert_allclose(VPLinear().sigma(t), np.sqrt(1 - np.exp(2 * log_alpha)), rtol=1e-12)
    np.testing.assert_allclose(VPLinear().drift(t), -0.5 * (0.1 + 19.9 * t), rtol=1e-13)
    np.testing.assert_allclose(VPLinear().diffusion_squared(t), 0.1 + 19.9 * t, rtol=1e-12)
    np.testing.assert_allclose(SubVP().sigma(t), 1 - np.exp(2 * log_alpha), rtol=1e-12)
    np.testing.assert_allclose(SubVP().diffusion_squared(t), (0.1 + 19.9 * t) * (1 - np.exp(4 * log_alpha)), rtol=1e-12)
    c = 0.008
    np.testing.assert_allclose(VPCosine().alpha(t), np.cos((t + c) / (1 + c) * np.pi / 2) / np.cos(c / (1 + c) * np.pi / 2), rtol=1e-13)
    ve = VE(0.01, 50.0)
    np.testing.assert_allclose(ve.sigma(t), 0.01 * 5000.0**t, rtol=1e-13)
    np.testing.assert_allclose(ve.diffusion_squared(t), 2 * (0.01 * 5000.0**t) ** 2 * math.log(5000), rtol=1e-12)
    sig = 80 * t
    np.testing.assert_allclose(EDM().sigma(sig), sig)
    np.testing.assert_allclose(EDM().diffusion_squared(sig), 2 * sig)
    np.testing.assert_allclose(EDM().drift(sig), 0.0)
    tt = t - 1e-3  # from t = 0, where σ = 0
    np.testing.assert_allclose(LinearPath().diffusion_squared(tt), 2 * tt / (1 - tt), rtol=1e-13)
    np.testing.assert_allclose(LinearPath().drift(tt), -1 / (1 - tt), rtol=1e-13)


def test_jit_vmap_grad_and_float32():
    schedule = VPLinear()
    f = jax.jit(jax.vmap(jax.grad(lambda t: schedule.log_snr(t))))
    t = jnp.linspace(0.01, 0.99, N, dtype=jnp.float32)
    got = f(t)
    assert got.dtype == jnp.float32
    # VP: λ = log(α²/(1 − α²)) so dλ/dt = 2f/σ² = −β(t)/σ²
    np.testing.assert_allclose(got, -(0.1 + 19.9 * t) / schedule.sigma(t) ** 2, rtol=2e-5)
    # t_max itself in float32 is accepted (a grid's endpoint)
    assert np.isfinite(float(schedule.sigma(jnp.float32(1.0))))


@pytest.mark.parametrize("schedule", [VPLinear(), EDM(), LinearPath(t_min=0.01, t_max=0.99)], ids=["VPLinear", "EDM", "LinearPath"])
def test_time_outside_the_schedule_errors(schedule):
    bad = schedule.t_max * 1.01 + 0.01
    with pytest.raises(Exception, match=r"must lie in \[t_min, t_max\]"):
        schedule.sigma(bad)
    with pytest.raises(Exception, match=r"must lie in \[t_min, t_max\]"):
        jax.jit(schedule.alpha)(jnp.array([schedule.t_min, bad]))
    with pytest.raises(Exception, match=r"t_of_log_snr"):
        schedule.t_of_log_snr(schedule.log_snr(schedule.t_min) + 1.0)  # a λ above the range: t < t_min


def test_bad_construction_errors():
    with pytest.raises(ValueError, match="VPLinear: `beta_min`"):
        VPLinear(beta_min=-1.0)
    with pytest.raises(ValueError, match="VE: `sigma_max` must be > `sigma_min`"):
        VE(sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match="VPCosine: `t_max` must be < 1"):
        VPCosine(t_max=1.0)
    with pytest.raises(ValueError, match="t_min"):
        VPLinear(t_min=0.5, t_max=0.1)


def test_range_slack_is_relative_to_each_end():
    # EDM's range is [0.002, 80]: 1% below t_min is refused (an absolute slack scaled by t_max
    # would let it through in float32), t_min·(1 − 4ε) is accepted.
    edm = EDM()
    with pytest.raises(Exception, match=r"must lie in \[t_min, t_max\]"):
        edm.sigma(jnp.float32(0.00198))
    assert float(edm.sigma(jnp.float32(0.002) * (1 - 4 * np.finfo(np.float32).eps))) > 0
