"""Inverse problems: the unknowns of an `InverseModel` are what the equation sees (a catalogue PDE's
field, Darcy's coefficient network, a user residual's params), gradients reach them, and a joint
fit recovers an unknown coefficient from noisy data."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpde import autodiff as ad
from jaxpde.grids import Grid
from jaxpde.pdes import Burgers, Darcy
from jaxpde.pinns._conditions import Dirichlet
from jaxpde.pinns._domains import Interval, Points, Rectangle, SpaceTime
from jaxpde.pinns._problem import InverseModel, Positive, Problem


class Exact(eqx.Module):
    fn: object

    def __call__(self, *args):
        return self.fn(*args)


def test_the_catalogue_pde_sees_the_models_viscosity(x64):
    true = Burgers(Grid(32, lengths=2.0), viscosity=0.1)
    problem = Problem(Burgers(Grid(32, lengths=2.0), viscosity=0.5), SpaceTime(Interval(0.0, 2.0)), num_points=16)
    points = problem.sample(jax.random.key(0))
    loss = eqx.filter_jit(lambda model: problem.loss_terms(model, points)["residual"])
    exact = Exact(true.exact_solution)
    assert float(loss(exact)) > 1e-4  # the PDE's own ν = 0.5 is wrong for this solution
    assert float(loss(InverseModel(exact, {"viscosity": Positive(0.1)}))) < 1e-20
    grad = eqx.filter_grad(loss)(InverseModel(exact, {"viscosity": Positive(0.2)}))
    assert float(grad.parameters["viscosity"].log) > 0  # decreasing ν lowers the loss
    with pytest.raises(ValueError, match="'diffusivity' is not a field of Burgers"):
        loss(InverseModel(exact, {"diffusivity": 0.1}))


@pytest.mark.slow  # ~5 s of CPU (div_flux compiles slowly)
def test_darcy_coefficient_as_a_second_network(x64):
    u = Exact(lambda x: jnp.sin(jnp.pi * x[0]) * x[1] ** 2)
    a = Exact(lambda x: 1.0 + x[0] * x[1])
    problem = Problem(Darcy(source=0.0), Rectangle(), num_points=8)
    points = problem.sample(jax.random.key(1))
    r = eqx.filter_jit(problem.residuals)(InverseModel(u, {"coefficient": a}), points)["residual"]
    direct = jax.vmap(lambda x: -ad.div_flux(u, a)(x))(points["residual"].x)
    np.testing.assert_allclose(r, direct, rtol=1e-12)
    assert np.abs(direct).max() > 0.1


@pytest.mark.slow  # ~8 s of CPU
def test_a_joint_fit_recovers_a_coefficient_from_noisy_data():
    # -u'' = k u on [0, 1], u(0) = u(1) = 0, with u = sin(πx): k = π². 24 observations with 1 % noise and the residual
    # at 64 points; the network and log k (from k = 4) are trained together by Adam.
    def residual(u, x, t, params):
        return -ad.laplacian(u)(x) - params["k"] * u(x)

    xs = jnp.linspace(0.02, 0.98, 24)[:, None]
    values = jnp.sin(jnp.pi * xs[:, 0]) + 0.01 * jax.random.normal(jax.random.key(2), (24,))
    problem = Problem(residual, Interval(0.0, 1.0), (Dirichlet(0.0, on=("left", "right"), n=1),),
                      observations=Points(xs, None, values), num_points=64)
    points = problem.sample(jax.random.key(3))
    model = InverseModel(eqx.nn.MLP(1, "scalar", 16, 2, jnp.tanh, key=jax.random.key(4)), {"k": Positive(4.0)})
    params, static = eqx.partition(model, eqx.is_array)
    optimiser = optax.adam(optax.cosine_decay_schedule(2e-2, 1500, 0.05))

    def loss(p):
        return sum(problem.loss_terms(eqx.combine(p, static), points).values())

    @jax.jit
    def train(p):
        def step(carry, _):
            p, state = carry
            update, state = optimiser.update(jax.grad(loss)(p), state, p)
            return (optax.apply_updates(p, update), state), None

        return jax.lax.scan(step, (p, optimiser.init(p)), None, 1500)[0][0]

    k = float(eqx.combine(train(params), static).values()["k"])
    assert abs(k - np.pi**2) / np.pi**2 < 0.02, k
