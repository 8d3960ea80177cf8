"""Learned multigrid: the untrained cycle is GeometricMultigrid's, any network gives an SPD cycle
with constant-preserving interpolation, and training on the convergence loss lowers the
contraction on held-out high-contrast coefficients."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpde import Grid
from jaxpde.numerics.stencils import DiffusionOperator
from jaxpde.preconditioners._learned_multigrid import LearnedMultigrid, two_grid_loss
from jaxpde.numerics.multigrid import GeometricMultigrid
from jaxpde.random_fields import GaussianRandomField, LognormalField
from jaxpde.training import fit


def _randomised(model, key):
    """The same model with a random (non-zero) output layer."""
    last = model.network.layers[-1]
    weight = 0.3 * jax.random.normal(key, last.weight.shape, last.weight.dtype)
    return eqx.tree_at(lambda m: m.network.layers[-1].weight, model, weight)


@eqx.filter_jit
def _dense_cycle(preconditioner, operator):
    shape = operator.in_structure().shape
    eye = jnp.eye(int(np.prod(shape)), dtype=operator.dtype)
    return jax.vmap(lambda e: preconditioner(operator).mv(e.reshape(shape)).ravel())(eye).T


@pytest.mark.slow  # default-suite budget
def test_untrained_is_geometric_and_any_network_gives_an_spd_cycle(x64):
    grid = Grid((9, 9), boundary="dirichlet")
    operator = DiffusionOperator(grid, jnp.exp(2 * jax.random.normal(jax.random.key(0), grid.shape)))
    model = LearnedMultigrid(2, jax.random.key(1), width=8, depth=1, max_coarse=4)
    np.testing.assert_allclose(_dense_cycle(model, operator), _dense_cycle(GeometricMultigrid(max_coarse=4), operator), atol=1e-13)
    model = _randomised(model, jax.random.key(2))
    m = np.asarray(_dense_cycle(model, operator))
    np.testing.assert_allclose(m, m.T, atol=1e-13 * np.abs(m).max())
    assert np.linalg.eigvalsh(m).min() > 0
    hierarchy = eqx.filter_jit(model.hierarchy)(operator)
    transfer, weights = hierarchy.transfers[0], hierarchy.prolongations[0]
    linear = jnp.asarray(transfer.bilinear(np.float64))
    assert float(jnp.abs(weights - linear).max()) > 1e-3  # the network changed P ...
    ones = jnp.ones(transfer.coarse)
    np.testing.assert_allclose(transfer.prolong(weights, ones), transfer.prolong(linear, ones), rtol=1e-12)  # ... not its row sums


@pytest.mark.slow
def test_training_lowers_the_contraction_on_held_out_lognormal_coefficients(x64):
    # 15² high-contrast lognormal (log a spans ~9, a factor ~6000), two-grid cycles; 300 Adam steps
    # (measured: held-out log-contraction -2.26 -> -2.50, i.e. 0.104 -> 0.082 per cycle).
    grid = Grid((15, 15), boundary="dirichlet")
    gaussian = GaussianRandomField(grid, 1.0, 3.0, 2.0)
    field = LognormalField(gaussian, 2.5 / 0.0555)  # γ·std(g) = 2.5

    def loss_fn(model, batch, key):
        keys = jax.random.split(key, batch.shape[0])
        return jnp.mean(jax.vmap(lambda a, k: two_grid_loss(model, DiffusionOperator(grid, a), k))(batch, keys))

    held_out = jax.vmap(field.sample)(jax.random.split(jax.random.key(99), 8))
    evaluate = eqx.filter_jit(lambda model: loss_fn(model, held_out, jax.random.key(5)))
    model = LearnedMultigrid(2, jax.random.key(0), max_levels=2, max_coarse=1)
    baseline = float(evaluate(GeometricMultigrid(max_levels=2, max_coarse=1)))
    assert abs(float(evaluate(model)) - baseline) < 1e-12
    result = fit(model, optax.adam(3e-3), loss_fn, lambda key: jax.vmap(field.sample)(jax.random.split(key, 4)),
                 steps=300, key=jax.random.key(1), progress=False, log_every=100)
    trained = float(evaluate(result.model))
    assert trained < baseline - 0.1, (trained, baseline)
