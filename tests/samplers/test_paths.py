"""Flow paths: the interpolant's velocity is its time derivative and its marginal variance is the
schedule's σ²; Euler on an exact field; straightness of straight and of curved flows in closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.samplers._paths import LinearPath, StochasticInterpolant, conditional_velocity, integrate_flow, straightness, transport_cost


def test_interpolant_velocity_and_marginal(x64):
    si = StochasticInterpolant(noise=0.8)
    k = jax.random.split(jax.random.key(0), 3)
    x0, x1, z = (jax.random.normal(kk, (8,)) for kk in k)
    t = 0.3
    d_dt = jax.jvp(lambda s: si.interpolate(x0, x1, z, s), (t,), (1.0,))[1]
    np.testing.assert_allclose(si.velocity_target(x0, x1, z, t), d_dt, rtol=1e-12)
    # x0 = 0, x1, z independent standard normals: Var I(t) = t² + γ(t)² = σ(t)² of the schedule
    np.testing.assert_allclose(si.sigma(t) ** 2, t**2 + si.gamma(t) ** 2, rtol=1e-14)
    # a = 0 is the linear path, whose conditional velocity is ε − x₀
    np.testing.assert_allclose(StochasticInterpolant(noise=0.0).velocity_target(x0, x1, z, t), x1 - x0)
    np.testing.assert_allclose(conditional_velocity(LinearPath(), x0, x1, t), x1 - x0, rtol=1e-14)


def test_straight_paths_have_zero_straightness():
    x1 = jax.random.normal(jax.random.key(1), (16, 2))
    mu = jnp.array([1.0, -2.0])
    # A point mass at μ: u = (x − μ)/t, paths x_t = (1 − t) μ + t x₁ are straight, and Euler is exact.
    point = lambda x, t: (x - mu) / t
    end = integrate_flow(point, x1, steps=3)
    np.testing.assert_allclose(end, jnp.broadcast_to(mu, end.shape), atol=1e-5)
    np.testing.assert_allclose(transport_cost(end, x1), jnp.mean(jnp.sum((x1 - mu) ** 2, axis=1)), rtol=1e-5)
    assert float(straightness(point, x1, steps=4)) < 1e-9


@pytest.mark.slow  # a 64-step float64 solve with 256 paths
def test_straightness_of_a_curved_flow(x64):
    x1 = jax.random.normal(jax.random.key(1), (256, 2))
    # Data N(0, s²I): x_t = c(t) x₁ with c = √((1 − t)² s² + t²), curved unless s = 0;
    # S = E‖x₁‖² ∫₀¹ (c'(t) − (1 − s))² dt, against the Euler-discretised estimate.
    s = 0.5
    c = lambda t: jnp.sqrt((1 - t) ** 2 * s**2 + t**2)
    c_dot = jax.vmap(jax.grad(c))
    gaussian = lambda x, t: jax.grad(c)(t) / c(t) * x
    grid = jnp.linspace(0, 1, 20001)
    exact = float(jnp.mean(jnp.sum(x1**2, axis=1)) * jnp.trapezoid((c_dot(grid) - (1 - s)) ** 2, grid))
    assert float(straightness(gaussian, x1, steps=64)) == pytest.approx(exact, rel=0.06)  # Euler's O(1/steps): 0.964 at 64
    assert exact > 0.1
