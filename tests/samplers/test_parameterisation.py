"""Parameterisation conversions are exact (float64) for every schedule; the probability-flow field
from any parameterisation is the conditional velocity; guidance commutes with conversion; the
Denoiser's errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.samplers._parameterisation import (
    PARAMETERISATIONS,
    Denoiser,
    classifier_free_guidance,
    convert,
    probability_flow,
    sde_drift,
)
from jaxpde.samplers._paths import LinearPath, StochasticInterpolant
from jaxpde.samplers._schedules import EDM, VE, SubVP, VPCosine, VPLinear

SCHEDULES = {"VPLinear": (VPLinear(), 0.37), "SubVP": (SubVP(), 0.6), "VPCosine": (VPCosine(), 0.8), "VE": (VE(), 0.5),
             "EDM": (EDM(), 3.0), "LinearPath": (LinearPath(), 0.3), "Interpolant": (StochasticInterpolant(noise=0.5), 0.7)}


def _all_conversions(schedule, t, x0, eps):
    """From each definition, every conversion; returns the table of (from, to) errors."""
    alpha, sigma = schedule.alpha(t), schedule.sigma(t)
    x_t = alpha * x0 + sigma * eps
    exact = {"eps": eps, "x0": x0, "v": alpha * eps - sigma * x0, "score": -eps / sigma,
             "flow": schedule.alpha_dot(t) * x0 + schedule.sigma_dot(t) * eps}
    errors = {}
    for a in PARAMETERISATIONS:
        for b in PARAMETERISATIONS:
            got = convert(exact[a], from_=a, to=b, x_t=x_t, t=t, schedule=schedule)
            errors[a, b] = jnp.max(jnp.abs(got - exact[b])) / jnp.max(jnp.abs(exact[b]))
    # the probability-flow ODE field f x − ½ g² s (from the score) is the conditional velocity
    errors["pf", "flow"] = jnp.max(jnp.abs(probability_flow(exact["v"], "v", x_t, t, schedule) - exact["flow"])) / jnp.max(jnp.abs(exact["flow"]))
    # η = 0 is the ODE; the default η = g gives f x − g² s
    f, g2 = schedule.drift(t), schedule.diffusion_squared(t)
    errors["sde0", "flow"] = jnp.max(jnp.abs(sde_drift(exact["eps"], "eps", x_t, t, schedule, 0.0) - exact["flow"])) / jnp.max(jnp.abs(exact["flow"]))
    song = f * x_t - g2 * exact["score"]
    errors["sde", "song"] = jnp.max(jnp.abs(sde_drift(exact["x0"], "x0", x_t, t, schedule) - song)) / jnp.max(jnp.abs(song))
    # guidance then conversion = conversion then guidance (all parameterisations are affine in ε̂)
    eps_c, eps_u = eps, 0.3 * eps + 0.1
    for b in ("x0", "v", "flow"):
        lhs = convert(classifier_free_guidance(eps_c, eps_u, 2.5), from_="eps", to=b, x_t=x_t, t=t, schedule=schedule)
        rhs = classifier_free_guidance(*(convert(e, from_="eps", to=b, x_t=x_t, t=t, schedule=schedule) for e in (eps_c, eps_u)), 2.5)
        errors["cfg", b] = jnp.max(jnp.abs(lhs - rhs)) / jnp.max(jnp.abs(rhs))
    return errors


# VP, VE and the flow path by default; the other schedules (same code paths) in the slow suite.
_FAST = ("VPLinear", "VE", "LinearPath")


@pytest.mark.parametrize("name", [n if n in _FAST else pytest.param(n, marks=pytest.mark.slow) for n in SCHEDULES])
def test_conversions_are_exact(name, x64):
    schedule, t = SCHEDULES[name]
    k1, k2 = jax.random.split(jax.random.key(0))
    x0, eps = jax.random.normal(k1, (16,)), jax.random.normal(k2, (16,))
    errors = _all_conversions(schedule, t, x0, eps)
    worst = {k: float(v) for k, v in errors.items() if not float(v) < 1e-12}
    assert not worst, worst


def test_guidance_endpoints():
    c, u = jnp.array([1.0, 2.0]), jnp.array([0.5, -1.0])
    np.testing.assert_allclose(classifier_free_guidance(c, u, 1.0), c)
    np.testing.assert_allclose(classifier_free_guidance(c, u, 0.0), u)
    np.testing.assert_allclose(classifier_free_guidance(c, u, 3.0), u + 3 * (c - u))


class _Linear(eqx.Module):
    scale: jax.Array

    def __call__(self, x, t, cond=None):
        return self.scale * x * t + (0.0 if cond is None else cond)


def test_denoiser_serves_every_parameterisation_and_guidance(x64):
    schedule = VPLinear()
    den = Denoiser(_Linear(jnp.array(2.0)), schedule, "x0")
    x, t = jnp.array([0.3, -1.2, 0.7]), 0.4
    raw = den(x, t)
    np.testing.assert_allclose(raw, 2 * x * t)
    for to in PARAMETERISATIONS:
        np.testing.assert_allclose(den(x, t, to=to), convert(raw, from_="x0", to=to, x_t=x, t=t, schedule=schedule), rtol=1e-14)
    np.testing.assert_allclose(den.probability_flow(x, t), convert(raw, from_="x0", to="flow", x_t=x, t=t, schedule=schedule), rtol=1e-12)
    # guidance with a conditional offset: x̂₀ = 2xt + w·cond with a zero null condition
    np.testing.assert_allclose(den.guided(x, t, 1.0, 0.0, 3.0), 2 * x * t + 3.0, rtol=1e-14)
    # batches through vmap
    xs = jnp.stack([x, 2 * x])
    np.testing.assert_allclose(jax.vmap(den, in_axes=(0, None))(xs, t), 2 * xs * t)


def test_bad_input_errors():
    schedule = VPLinear()
    with pytest.raises(ValueError, match=r"Denoiser: `parameterisation` must be one of \('eps', 'x0', 'v', 'score', 'flow'\), got 'noise'"):
        Denoiser(_Linear(jnp.array(1.0)), schedule, "noise")
    with pytest.raises(ValueError, match=r"convert: `to` must be one of .* got 'velocity'"):
        convert(jnp.ones(2), from_="eps", to="velocity", x_t=jnp.ones(2), t=0.5, schedule=schedule)
    wrong = Denoiser(lambda x, t: jnp.concatenate([x, x]), schedule, "eps")
    with pytest.raises(ValueError, match=r"must have the shape of x_t \(3,\).*got \(6,\)"):
        wrong(jnp.ones(3), 0.5)
    with pytest.raises(Exception, match=r"must lie in \[t_min, t_max\]"):
        Denoiser(_Linear(jnp.array(1.0)), schedule, "eps")(jnp.ones(3), 2.0)


def test_dps_score_tends_to_the_exact_posterior_score(x64):
    # Gaussian prior N(m, S) in 3-D, y = A x₀ + n with A the first two coordinates, σ_y = 0.3:
    # the posterior is N(μ_p, P), P = (S⁻¹ + AᵀA/σ_y²)⁻¹, μ_p = P (S⁻¹ m + Aᵀ y/σ_y²), whose noised
    # score is exact. DPS's x̂₀ → x as t → 0, so its error vanishes with t (like σ²).
    from jaxpde.samplers._guidance import DPS
    from jaxpde.samplers._mixture import GaussianMixture

    rng = np.random.default_rng(0)
    m, b = rng.normal(size=3), rng.normal(size=(3, 3))
    s = b @ b.T + np.eye(3)
    a, noise, y = np.eye(3)[:2], 0.3, np.array([0.5, -1.0])
    p = np.linalg.inv(np.linalg.inv(s) + a.T @ a / noise**2)
    mu_p = p @ (np.linalg.solve(s, m) + a.T @ y / noise**2)
    schedule = VPLinear(t_min=1e-4)
    prior = GaussianMixture(np.ones(1), m[None], s[None]).denoiser(schedule, "x0")
    dps = DPS(prior, lambda x0: jnp.asarray(a) @ x0, jnp.asarray(y), noise)
    posterior = GaussianMixture(np.ones(1), mu_p[None], p[None])
    x = jnp.asarray(mu_p + 0.1 * rng.normal(size=3))
    errors = []
    for t in (1e-2, 1e-3):
        exact = posterior.score(x, t, schedule)
        errors.append(float(jnp.linalg.norm(dps.denoiser()(x, t) - exact) / jnp.linalg.norm(exact)))
    assert errors[1] < 0.05 and errors[1] < 0.2 * errors[0], errors
    # Chung et al.'s normalised step is the gradient of −ζ'‖y − A x̂₀‖
    norm = DPS(prior, dps.forward, dps.observations, noise, scale=0.7, normalised=True)
    residual = lambda z: jnp.linalg.norm(jnp.asarray(y) - jnp.asarray(a) @ prior(z, 1e-2, to="x0"))
    np.testing.assert_allclose(norm.guidance(x, 1e-2), -0.7 * jax.grad(residual)(x), rtol=1e-10)
    with pytest.raises(ValueError, match="forward model's output must have the shape of `observations` \\(2,\\)"):
        DPS(prior, lambda x0: x0, jnp.asarray(y), noise)(x, 0.5)
