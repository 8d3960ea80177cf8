"""Conditions: term names, residual formulas against direct computations, and refusals naming the side."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.pinns._conditions import Dirichlet, Initial, Neumann, Periodic, Robin
from jaxpde.pinns._domains import Disk, Interval, Rectangle, SpaceTime
from jaxpde.pinns._problem import Problem


def zero(u, x, t, params):
    return jnp.zeros(())


def test_term_names_one_per_side():
    assert Dirichlet(0.0).terms() == {"boundary": "boundary"}
    assert Neumann(0.0, on=("left", "top")).terms() == {"boundary/left": "left", "boundary/top": "top"}
    assert Periodic(("bottom", "top")).terms() == {"periodic/bottom-top": "bottom"}
    assert Initial(0.0).terms() == {"initial": "initial"}
    assert Robin(1.0, 1.0, name="wall", on="left").terms() == {"wall": "left"}


@pytest.mark.slow  # ~1.5 s of CPU; the catalogue test checks Periodic on Burgers
def test_periodic_residual_vanishes_exactly_for_periodic_functions():
    domain = SpaceTime(Rectangle((0.0, 0.0), (2.0, 1.0)))
    problem = Problem(zero, domain, (Periodic(("left", "right"), n=6),), num_points=2)
    points = problem.sample(jax.random.key(0))
    residuals = eqx.filter_jit(problem.residuals)

    class U(eqx.Module):
        period: jax.Array  # an array, so both calls share one compiled program

        def __call__(self, x, t):
            return jnp.sin(2 * jnp.pi * x[0] / self.period + t) * (1 + x[1] ** 2)

    r = residuals(U(jnp.asarray(2.0)), points)["periodic/left-right"]
    assert r.shape == (6, 3)  # u and both components of ∇u
    assert float(jnp.abs(r).max()) < 1e-5
    assert float(jnp.abs(residuals(U(jnp.asarray(3.0)), points)["periodic/left-right"]).max()) > 0.1


@pytest.mark.slow  # ~5 s of CPU
def test_robin_and_initial_against_direct_formulas():
    u = lambda x: jnp.cos(x[0]) + x[0] ** 3  # noqa: E731
    problem = Problem(zero, Interval(0.0, 1.0), (Robin(2.0, lambda x: 1 + x[0], 0.5, on=("left", "right"), n=1),), num_points=1)
    r = eqx.filter_jit(problem.residuals)(u, problem.sample(jax.random.key(0)))
    du = jax.grad(u)
    for side, x, normal in (("left", 0.0, -1.0), ("right", 1.0, 1.0)):
        point = jnp.array([x])
        expected = 2 * u(point) + (1 + x) * normal * du(point)[0] - 0.5
        np.testing.assert_allclose(r[f"boundary/{side}"], [expected], rtol=1e-5)
    timed = Problem(zero, SpaceTime(Interval(0.0, 1.0), (1.0, 2.0)), (Initial(lambda x: x[0] ** 2, n=4),), num_points=1)
    points = timed.sample(jax.random.key(1))
    r = timed.residuals(lambda x, t: x[0] ** 2 + (t - 1.0), points)["initial"]
    np.testing.assert_allclose(r, 0, atol=1e-7)


@pytest.mark.parametrize(
    "domain, condition, match",
    [
        (Rectangle(), Periodic(("left", "top")), "the \\(lower, upper\\) sides of one axis"),
        (Disk(), Periodic(("left", "right")), "Periodic applies to side 'left'"),
        (SpaceTime(Interval(0.0, 1.0)), Dirichlet(0.0, on="initial"), "use Initial"),
        (Rectangle(), Neumann(0.0, on="front"), "Neumann applies to side 'front'"),
    ],
)
def test_conditions_that_cannot_apply_are_refused(domain, condition, match):
    with pytest.raises(ValueError, match=match):
        Problem(zero, domain, (condition,))
