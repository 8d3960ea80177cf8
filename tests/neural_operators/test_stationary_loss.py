"""The stationary physics-informed loss: zero on the solver's solution, the operator's action on
an error, a gradient that trains a model from coefficients alone, and clear errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpde import Grid
from jaxpde.neural_operators import FNO, stationary_physics_loss, stationary_residual
from jaxpde.pdes import Burgers, Darcy, Poisson
from jaxpde.preconditioners import DarcySystems
from jaxpde.training import fit


STEPS = 40


def _darcy(n=15, seed=0):
    grid = Grid((n, n), boundary="dirichlet")
    a = DarcySystems(n).coefficient(jax.random.key(seed)).astype(jnp.float64)
    return grid, a, Darcy().solve(grid, a, rtol=1e-12)


def test_residual_vanishes_on_the_solution_and_is_the_operator_on_an_error(x64):
    grid, a, u = _darcy()
    f = Darcy().source_on_grid(grid, jnp.float64)
    assert jnp.linalg.norm(stationary_residual(Darcy(), grid, u, a)) < 1e-9 * jnp.linalg.norm(f)
    delta = jnp.sin(jnp.arange(u.size, dtype=jnp.float64)).reshape(u.shape)
    shifted = stationary_residual(Darcy(), grid, (u + delta)[None], a)  # one channel first
    assert shifted.shape == (1, *grid.shape)
    np.testing.assert_allclose(shifted[0], Darcy().operator(grid, a).mv(delta), rtol=1e-9, atol=1e-9)
    # Poisson's operator takes no coefficient: −Δ_h u − f for its own discrete solution is 0 too.
    poisson = Poisson()
    v = poisson.solve(grid, rtol=1e-12)
    assert jnp.linalg.norm(stationary_residual(poisson, grid, v)) < 1e-8 * jnp.linalg.norm(poisson.source_on_grid(grid))


def test_loss_is_zero_for_the_solver_solution(x64):
    grid, a, u = _darcy()
    inputs, targets = a[None, None], u[None, None]
    loss_fn = stationary_physics_loss(Darcy(), grid)
    loss, terms = loss_fn(lambda x: u[None], (inputs, targets), None)
    assert loss < 1e-8 and terms["residual"] < 1e-8 and terms["data"] < 1e-10


def test_the_residual_alone_trains_a_model_from_coefficients():
    """No solutions: a small FNO on 4 coefficients lowers the physics residual (float32)."""
    grid = Grid((15, 15), boundary="dirichlet")
    coefficients = jnp.stack([DarcySystems(15).coefficient(jax.random.key(k)) for k in range(4)])[:, None]
    physics_only = stationary_physics_loss(Darcy(), grid, data_weight=0.0)
    model = FNO(1, 1, modes=(4, 4), width=8, depth=2, key=jax.random.key(1))
    batch = (coefficients, jnp.zeros_like(coefficients))
    residual = eqx.filter_jit(lambda m: physics_only(m, batch, None)[1]["residual"])
    before = float(residual(model))
    result = fit(model, optax.adam(3e-3), physics_only, lambda key: batch, steps=STEPS, key=jax.random.key(2), progress=False)
    after = float(residual(result.model))  # measured: 726 -> 9.3 after 40 steps
    assert after < 0.1 * before


def test_bad_input_is_refused_by_name():
    grid = Grid((8, 8), boundary="dirichlet")
    with pytest.raises(TypeError, match="stationary jaxpde PDE"):
        stationary_physics_loss(Burgers(Grid(8)), grid)
    with pytest.raises(ValueError, match="`residual_weight`"):
        stationary_physics_loss(Darcy(), grid, residual_weight=-1.0)
    with pytest.raises(ValueError, match=r"grid's shape \(8, 8\)"):
        stationary_residual(Darcy(), grid, jnp.zeros((9, 9)), jnp.ones((8, 8)))
