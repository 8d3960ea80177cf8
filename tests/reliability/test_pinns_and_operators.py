"""Fault suite of the PINN and neural-operator families: a NaN in what they are given.

A constant that is not finite (a boundary value, an observation) is refused where it is given;
a NaN that reaches training (a collocation point, one sample of an operator dataset, a Darcy
prediction under the physics-informed loss) stops `fit` at the step that meets it, naming the
loss term, with the checkpoint before it intact; a NaN Darcy coefficient is refused by name.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpde import autodiff as ad
from jaxpde import Grid
from jaxpde.neural_operators import FNO, operator_loss, stationary_physics_loss, stationary_residual
from jaxpde.pdes import Darcy
from jaxpde.pinns import MLP, Dirichlet, GaussNewton, Initial, Interval, Neumann, Points, Problem, Robin, pinn_loss, pinn_residual_vector
from jaxpde.training import ArrayLoader, NonFiniteError, fit


def _poisson(observations=None):
    residual = lambda u_fn, x, t, params: -ad.laplacian(u_fn)(x) - 1.0  # noqa: E731
    return Problem(residual, Interval(0.0, 1.0), (Dirichlet(0.0, n=2),), observations, num_points=16)


@pytest.mark.parametrize("condition", [
    lambda: Dirichlet(float("nan")), lambda: Neumann(np.inf), lambda: Robin(1.0, np.nan), lambda: Initial(jnp.array([0.0, np.nan]))])
def test_a_non_finite_constant_condition_is_refused(condition):
    with pytest.raises(ValueError, match="must be finite"):
        condition()


@pytest.mark.parametrize("field", ["x", "values"])
def test_non_finite_observations_are_refused(field):
    points = {"x": jnp.array([[0.25], [0.5]]), "values": jnp.array([0.1, 0.2])}
    points[field] = points[field].at[1].set(jnp.nan)
    with pytest.raises(ValueError, match=rf"`observations.{field}` must be finite, got 1 NaN/Inf"):
        _poisson(Points(points["x"], None, points["values"]))


# Gauss-Newton takes the same engine path as Adam (its own compile is the cost): -m slow.
@pytest.mark.parametrize("method", ["adam", pytest.param("gauss_newton", marks=pytest.mark.slow)])
def test_a_nan_collocation_point_stops_training_and_names_the_residual(tmp_path, method):
    problem = _poisson()
    points = dict(problem.sample(jax.random.key(1)))
    poisoned = dict(points, residual=Points(points["residual"].x.at[3, 0].set(jnp.nan), None))
    loss_fn, extra = pinn_loss(problem)
    step = optax.adam(1e-3) if method == "adam" else GaussNewton(pinn_residual_vector(problem), max_cg_steps=5)
    net = MLP(1, "scalar", 8, 1, key=jax.random.key(0))
    # Clean for 4 steps (a checkpoint at 4), then the poisoned points: stopped at step 5.
    feed = lambda key: points  # noqa: E731
    first = fit(net, step, loss_fn, feed, steps=4, key=jax.random.key(0), extra=extra, out_dir=tmp_path,
                checkpoint_every=4, progress=False)
    with pytest.raises(NonFiniteError, match=r"loss term 'residual' at step 5 .*the last good checkpoint \(step 4\) is kept"):
        fit(net, step, loss_fn, lambda key: poisoned, steps=8, key=jax.random.key(0), extra=extra, out_dir=tmp_path,
            checkpoint_every=4, progress=False)
    resumed = fit(net, step, loss_fn, feed, steps=4, key=jax.random.key(0), extra=extra, out_dir=tmp_path, progress=False)
    assert resumed.resumed_from == 4
    for a, b in zip(jax.tree.leaves(eqx.filter(first.model, eqx.is_inexact_array)),
                    jax.tree.leaves(eqx.filter(resumed.model, eqx.is_inexact_array))):
        np.testing.assert_array_equal(a, b)


def test_a_nan_sample_in_an_operator_dataset_stops_training_at_its_batch():
    n, s = 8, 16
    inputs = jax.random.normal(jax.random.key(0), (n, 1, s))
    targets = jnp.roll(inputs, 1, axis=-1)
    inputs = inputs.at[5, 0, 3].set(jnp.nan)
    model = FNO(1, 1, modes=(4,), width=8, depth=1, key=jax.random.key(1))
    # In order, batches of 2: sample 5 is in the third batch.
    loader = ArrayLoader((inputs, targets), 2, shuffle=False)
    with pytest.raises(NonFiniteError, match=r"at step 3 "):
        fit(model, optax.adam(1e-3), operator_loss(), loader, steps=4, key=jax.random.key(2), progress=False)


class _Scale(eqx.Module):
    """û = w · a: the smallest trainable model of one Darcy sample."""

    w: jax.Array

    def __call__(self, a):
        return self.w * a


def test_physics_informed_operator_training_with_a_nan_coefficient_or_prediction_stops_clearly():
    grid = Grid((8, 8), boundary="dirichlet")
    inputs = jnp.ones((4, 1, 8, 8)).at[2, 0, 4, 4].set(jnp.nan)  # sample 2: the second batch of 2
    loader = ArrayLoader((inputs, jnp.zeros_like(inputs)), 2, shuffle=False)
    model = _Scale(jnp.asarray(0.1))
    # A NaN coefficient: Darcy's operator refuses it by name (checked under jit).
    with pytest.raises(jax.errors.JaxRuntimeError, match="`coefficient` must be positive and finite"):
        fit(model, optax.adam(1e-3), stationary_physics_loss(Darcy(), grid, data_weight=0.0), loader, steps=3,
            key=jax.random.key(0), progress=False)
    # A NaN prediction with a good coefficient: fit stops at that batch, naming the residual.
    ones = stationary_physics_loss(Darcy(), grid, coefficient=lambda x: jnp.ones_like(x[:, 0]), data_weight=0.0)
    with pytest.raises(NonFiniteError, match=r"'residual' at step 2 "):
        fit(model, optax.adam(1e-3), ones, loader, steps=3, key=jax.random.key(0), progress=False)
