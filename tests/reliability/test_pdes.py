"""Bad inputs to the PDE catalogue fail at once, with a message naming the argument (issue 13)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde import Grid
from jaxpde.pdes import Burgers, Darcy, DirichletHeat, GrayScott, Heat, Helmholtz, NavierStokes2D, Poisson

GRID = Grid((6, 6), boundary="dirichlet")


@pytest.mark.parametrize(
    "call, message",
    [
        # Regression (item 7): float16 reported "CG broke down ... not positive definite".
        (lambda: Darcy().solve(GRID, jnp.ones(GRID.shape, jnp.float16)), "Darcy.solve: `coefficient` must be float32 or float64"),
        (lambda: Darcy().solve(GRID, jnp.ones(GRID.shape), jnp.ones(GRID.shape, jnp.float16)), "Darcy.solve: `source` must be float32 or float64"),
        (lambda: Darcy(coefficient=jnp.ones(GRID.shape, jnp.bfloat16)).solve(GRID), "`coefficient` must be float32 or float64 (the supported dtypes), got bfloat16"),
        (lambda: Poisson().solve(GRID, jnp.ones(GRID.shape, jnp.float16)), "Poisson.solve: `source` must be float32 or float64"),
        (lambda: Poisson(source=jnp.ones(GRID.shape, jnp.float16)).solve(GRID), "Poisson.solve: `source` must be float32 or float64"),
        (lambda: Helmholtz(2.0).solve(GRID, jnp.ones(GRID.shape, jnp.float16)), "Helmholtz.solve: `source` must be float32 or float64"),
        # Under jit the dtype is static: the same message at trace time.
        (lambda: jax.jit(lambda a: Darcy().solve(GRID, a))(jnp.ones(GRID.shape, jnp.float16)), "`coefficient` must be float32 or float64"),
    ],
)
def test_unsupported_dtypes_are_refused_up_front(call, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        call()


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: Darcy().solve(GRID, np.ones((5, 6), np.float32)), ValueError, "`coefficient` has shape (5, 6)"),
        (lambda: Darcy().solve(GRID, np.ones(GRID.shape, np.float32), np.ones((6, 5), np.float32)), ValueError, "`source` has shape (6, 5)"),
        (lambda: Poisson().solve(GRID, np.ones(7, np.float32)), ValueError, "`source` has shape (7,)"),
        (lambda: Darcy().solve(GRID), ValueError, "Darcy.operator: no coefficient `a`"),
        (lambda: Darcy().solve(GRID, -np.ones(GRID.shape, np.float32)), ValueError, "`coefficient` must be positive and finite"),
        (lambda: Poisson().residual(lambda x: x[0], jnp.ones((4, 2))), ValueError, "Poisson.residual: `x` must be one point of shape (ndim,)"),
        (lambda: Darcy().residual(lambda x: x[0], jnp.ones(2), args=jnp.ones(GRID.shape)), ValueError, "`coefficient` is a grid field of shape (6, 6)"),
        (lambda: Helmholtz(jnp.ones(GRID.shape)).residual(lambda x: x[0], jnp.ones(2)), ValueError, "`wavenumber` is a grid field"),
        (lambda: Burgers(Grid(8)).residual(lambda x, t: x[0], jnp.ones(2), 0.0), ValueError, "Burgers.residual: `x` must be one point of shape (1,)"),
        (lambda: Burgers(Grid(8)).residual(lambda x, t: x[0], jnp.ones(1), jnp.ones(3)), ValueError, "Burgers.residual: `t` must be a scalar time, got shape (3,)"),
        (lambda: GrayScott(Grid(8)).residual(lambda x, t: x, jnp.ones(1)), ValueError, "GrayScott.residual: `t` is required"),
        (lambda: Burgers(64), TypeError, "Burgers: `grid` must be a jaxpde.Grid, got int"),
        (lambda: Heat(Grid(8), diffusivity=float("nan")), ValueError, "Heat: `diffusivity` must be positive, got nan"),
        (lambda: Heat(GRID), ValueError, "Heat: needs a periodic grid, got boundary='dirichlet'; for u = 0 on the boundary use DirichletHeat"),
        (lambda: DirichletHeat(Grid(8), 1.0), ValueError, "DirichletHeat: needs a Dirichlet grid"),
        (lambda: NavierStokes2D(Grid((8, 8)), viscosity=jnp.inf), ValueError, "NavierStokes2D: `viscosity` must be positive, got inf"),
        (lambda: Heat(Grid(8)).evolve_exact(jnp.ones(9), 1.0), ValueError, "Heat: `u0` must have shape (8,), got (9,)"),
    ],
)
def test_bad_inputs_name_the_argument(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_a_non_finite_source_is_named_in_the_solve_error():
    """A NaN in the source reaches CG as a non-finite right-hand side; the error says so (it said
    "the linear solve failed")."""
    source = jnp.ones(GRID.shape).at[2, 2].set(jnp.nan)
    with pytest.raises(Exception, match=re.escape("the right-hand side (source) or initial guess holds NaN or Inf")):
        Darcy(source=source).solve(GRID, jnp.ones(GRID.shape))
