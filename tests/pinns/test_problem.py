"""`Problem`: catalogue residuals vanish on exact solutions, a small Poisson PINN trains, bad input
is named."""


import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpde.grids import Grid
from jaxpde.pdes import AllenCahn, Burgers, DirichletHeat, Poisson
from jaxpde.pinns._conditions import Dirichlet, Initial, Neumann, Periodic, Robin
from jaxpde.pinns._domains import Disk, Interval, Points, Rectangle, SpaceTime
from jaxpde.pinns._problem import Problem


def jit_residuals(problem):
    return eqx.filter_jit(problem.residuals)


class Exact(eqx.Module):
    """A "network" that is the exact solution (one point in, like a PINN)."""

    fn: object

    def __call__(self, *args):
        return self.fn(*args)


def max_abs(residuals):
    # Callers pass `jit_residuals(problem)(model, points)`: compiled, not dispatched op by op.
    return {name: float(jnp.max(jnp.abs(r))) for name, r in residuals.items()}


def test_catalogue_residuals_vanish_on_exact_solutions(x64):
    key = jax.random.key(0)
    # Burgers' Cole–Hopf solution on its period [0, 2): periodic in u and u_x, initial value.
    burgers = Burgers(Grid(64, lengths=2.0), viscosity=0.1)

    class ColeHopf(eqx.Module):
        time_scale: jax.Array  # 1 is exact; an array, so the wrong solution reuses the compiled program

        def __call__(self, x, t):
            return burgers.exact_solution(x, self.time_scale * t)

    problem = Problem(
        burgers,
        SpaceTime(Interval(0.0, 2.0), (0.0, 1.0)),
        (Initial(lambda x: burgers.exact_solution(x, 0.0), n=8), Periodic(n=8)),
        num_points=16,
    )
    points, residuals = problem.sample(key), jit_residuals(problem)
    errors = max_abs(residuals(ColeHopf(jnp.asarray(1.0)), points))
    assert set(errors) == {"residual", "initial", "periodic/left-right"}
    assert max(errors.values()) < 1e-12, errors
    # ... and a wrong solution does not (the test can fail).
    assert max_abs(residuals(ColeHopf(jnp.asarray(1.1)), points))["residual"] > 1e-3

    # Heat with u = 0 on the sides of the unit square (DirichletHeat's lowest mode).
    heat = DirichletHeat(Grid((8, 8), boundary="dirichlet"), diffusivity=0.3)
    problem = Problem(heat, SpaceTime(Rectangle(), (0.0, 0.5)), (Dirichlet(0.0, n=8),), num_points=16)
    errors = max_abs(jit_residuals(problem)(Exact(heat.exact_solution), problem.sample(key)))
    assert max(errors.values()) < 1e-12, errors


@pytest.mark.slow  # ~5 s of CPU
def test_allen_cahn_uniform_solution_with_neumann_ends(x64):
    allen_cahn = AllenCahn(Grid(16, lengths=2.0, origin=-1.0))
    problem = Problem(allen_cahn, SpaceTime(Interval(-1.0, 1.0)), (Neumann(0.0, on=("left", "right"), n=4),), num_points=16)
    errors = max_abs(jit_residuals(problem)(Exact(allen_cahn.exact_solution), problem.sample(jax.random.key(0))))
    assert set(errors) == {"residual", "boundary/left", "boundary/right"} and max(errors.values()) < 1e-10, errors


@pytest.mark.slow  # ~5 s of CPU
def test_stationary_conditions_on_a_manufactured_solution(x64):
    # u = exp(x) sin(y) + x² on the unit square: -Δu = -2; Neumann and Robin data from the exact
    # normal derivative on each side, with the normals the problem supplies.
    u = lambda x: jnp.exp(x[0]) * jnp.sin(x[1]) + x[0] ** 2  # noqa: E731
    du = jax.grad(u)
    pde = Poisson.from_solution(u)
    conditions = (
        Dirichlet(u, on="left", n=5),
        Neumann(lambda x: du(x)[0], on="right", n=5),
        Neumann(lambda x: -du(x)[1], on="bottom", n=5),
        Robin(2.0, 3.0, lambda x: 2 * u(x) + 3 * du(x)[1], on="top", n=5),
    )
    problem = Problem(pde, Rectangle(), conditions, num_points=10)
    points = problem.sample(jax.random.key(1))
    assert np.allclose(points["boundary/right"].x[:, 0], 1) and np.allclose(points["boundary/bottom"].x[:, 1], 0)
    errors = max_abs(jit_residuals(problem)(Exact(u), points))
    assert max(errors.values()) < 1e-10, errors
    # A Neumann condition with the wrong sign of the normal would not vanish:
    wrong = Problem(pde, Rectangle(), (Neumann(lambda x: du(x)[1], on="bottom", n=5),), num_points=10)
    assert max_abs(jit_residuals(wrong)(Exact(u), wrong.sample(jax.random.key(1))))["boundary/bottom"] > 0.1
    # On a disk, the whole boundary with the radial normal: u = |x|² has ∂u/∂n = 2r.
    disk = Problem(Poisson(source=-4.0), Disk(radius=0.5), (Neumann(1.0, n=7),), num_points=8)
    errors = max_abs(jit_residuals(disk)(Exact(lambda x: x @ x), disk.sample(jax.random.key(2))))
    assert max(errors.values()) < 1e-12, errors


def test_user_residual_reads_as_the_maths():
    # The user's own PDE: u_t + u u_x - ν u_xx as written, parameters through `args`.
    from jaxpde import autodiff as ad

    def burgers(u, x, t, params):
        u_x = ad.gradient(u)(x, t)[0]
        return ad.time_derivative(u)(x, t) + u(x, t) * u_x - params["nu"] * ad.laplacian(u)(x, t)

    reference = Burgers(Grid(32, lengths=2.0), viscosity=0.2)
    problem = Problem(burgers, SpaceTime(Interval(0.0, 2.0)), num_points=12, args={"nu": 0.2})
    points = problem.sample(jax.random.key(3))
    assert points["residual"].x.shape == (12, 1) and points["residual"].t.shape == (12,)
    terms = eqx.filter_jit(problem.loss_terms)(Exact(reference.exact_solution), points)
    assert float(terms["residual"]) < 1e-10


def test_small_poisson_pinn_trains_to_one_percent():
    # -Δu = 2π² sin(πx) sin(πy) on the unit square, u = 0 on the boundary (exactly, through the
    # output transform), 256 fixed collocation points, 1000 Adam steps in one compiled scan.
    exact = lambda x: jnp.sin(jnp.pi * x[0]) * jnp.sin(jnp.pi * x[1])  # noqa: E731

    class Net(eqx.Module):
        mlp: eqx.nn.MLP

        def __call__(self, x):
            return x[0] * (1 - x[0]) * x[1] * (1 - x[1]) * self.mlp(x)

    problem = Problem(Poisson.from_solution(exact), Rectangle(), (Dirichlet(0.0, n=32),), num_points=256)
    points = problem.sample(jax.random.key(1))
    params, static = eqx.partition(Net(eqx.nn.MLP(2, "scalar", 16, 2, jnp.tanh, key=jax.random.key(0))), eqx.is_array)
    steps = 1000
    optimiser = optax.adam(optax.cosine_decay_schedule(1e-2, steps, 0.01))

    def loss(p):
        return sum(problem.loss_terms(eqx.combine(p, static), points).values())

    @jax.jit
    def train(p):
        def step(carry, _):
            p, state = carry
            value, grad = jax.value_and_grad(loss)(p)
            update, state = optimiser.update(grad, state, p)
            return (optax.apply_updates(p, update), state), value

        return jax.lax.scan(step, (p, optimiser.init(p)), None, steps)

    (params, _), losses = train(params)
    x = Rectangle().sample_interior(jax.random.key(9), 1000).x
    u = jax.vmap(eqx.combine(params, static))(x)
    error = jnp.linalg.norm(u - jax.vmap(exact)(x)) / jnp.linalg.norm(jax.vmap(exact)(x))
    assert losses[-1] < 1e-2 * losses[0] and error < 1e-2, (float(error), float(losses[-1]))


# ---- bad input names the argument --------------------------------------------------------------


def test_a_residual_of_the_wrong_shape_is_named():
    problem = Problem(lambda u, x, t, p: jnp.ones((2, 2)), Rectangle(), num_points=4)
    with pytest.raises(ValueError, match="residual must be a scalar or a vector"):
        jit_residuals(problem)(Exact(lambda x: x[0]), problem.sample(jax.random.key(0)))


def test_a_condition_on_a_missing_side_is_named():
    with pytest.raises(ValueError, match=r"`conditions\[1\]`.*'top'.*\('left', 'right', 'boundary'\)"):
        Problem(lambda u, x, t, p: 0.0, Interval(0.0, 1.0), (Dirichlet(0.0, on="left"), Dirichlet(0.0, on="top")))
    with pytest.raises(ValueError, match="Initial needs a time-dependent domain"):
        Problem(lambda u, x, t, p: 0.0, Interval(0.0, 1.0), (Initial(0.0),))


def test_zero_collocation_points_are_named():
    with pytest.raises(ValueError, match="`num_points` must be an integer >= 1"):
        Problem(lambda u, x, t, p: 0.0, Interval(0.0, 1.0), num_points=0)
    with pytest.raises(ValueError, match="Dirichlet: `n` must be an integer >= 1"):
        Dirichlet(0.0, n=0)


def test_neumann_on_a_periodic_side_is_named():
    with pytest.raises(ValueError, match=r"`conditions\[1\]`: a Neumann condition on side 'left', which a Periodic"):
        Problem(lambda u, x, t, p: 0.0, Rectangle(), (Periodic(("left", "right")), Neumann(0.0, on="left")))


def test_catalogue_pde_and_domain_must_agree():
    with pytest.raises(ValueError, match="Burgers is time-dependent, so `domain` must be a SpaceTime"):
        Problem(Burgers(Grid(8)), Interval(0.0, 1.0))
    with pytest.raises(ValueError, match="1-dimensional, but `domain` is 2-dimensional"):
        Problem(Burgers(Grid(8)), SpaceTime(Rectangle()))
    with pytest.raises(ValueError, match="term name 'boundary/left' is taken"):
        Problem(lambda u, x, t, p: 0.0, Interval(0.0, 1.0), (Dirichlet(0.0, on="left"), Neumann(0.0, on="left")))
    with pytest.raises(ValueError, match=r"`observations.x` must have shape \(n >= 1, 1\)"):
        Problem(lambda u, x, t, p: 0.0, Interval(0.0, 1.0), observations=Points(jnp.zeros((3, 2)), None, jnp.zeros(3)))
