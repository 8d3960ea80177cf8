"""Hard constraints hold exactly: the Dirichlet value on the boundary of a box and the initial
condition at t = 0, to float round-off, for random networks; the constrained network keeps the
network's signature and differentiates; bad arguments are refused by name."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde import autodiff as ad
from jaxpde.pinns._constraints import DirichletConstraint, InitialCondition, ball_distance, box_distance
from jaxpde.pinns._networks import MLP


def _g(x, *t):
    return jnp.sin(3 * x[0]) + x[1] ** 2  # a smooth extension of the boundary data


@eqx.filter_jit
def _dirichlet_on_faces(net, points):
    u = DirichletConstraint(net, _g, box_distance([-1.0, 0.0], [1.0, 2.0]))
    return jax.vmap(u)(points), jax.vmap(_g)(points), jax.vmap(ad.laplacian(u))(points)


def test_dirichlet_constraint_is_exact_on_every_face_of_a_box():
    net = MLP(2, "scalar", 8, 2, key=jax.random.key(0))
    s = jnp.linspace(0, 1, 11)
    faces = jnp.concatenate([
        jnp.stack([jnp.full_like(s, -1.0), 2 * s], 1), jnp.stack([jnp.full_like(s, 1.0), 2 * s], 1),
        jnp.stack([2 * s - 1, jnp.zeros_like(s)], 1), jnp.stack([2 * s - 1, jnp.full_like(s, 2.0)], 1),
    ])
    inside = jnp.array([[0.1, 0.7], [-0.5, 1.5]])
    u, g, lap = _dirichlet_on_faces(net, jnp.concatenate([faces, inside]))
    # φ is exactly 0 on the faces: ũ = g + 0·N = g bit for bit
    np.testing.assert_array_equal(u[:44], g[:44])
    assert float(jnp.abs(u[44:] - g[44:]).min()) > 1e-4  # inside, the network contributes
    assert bool(jnp.all(jnp.isfinite(lap)))


def test_box_distance_is_zero_on_listed_faces_only_and_one_at_the_centre():
    phi = box_distance([0.0, 0.0], [2.0, 4.0], axes=(0,))  # axis 1 periodic, say: no constraint there
    np.testing.assert_allclose(phi(jnp.array([1.0, 2.0])), 1.0, rtol=1e-6)
    assert float(phi(jnp.array([0.0, 1.3]))) == 0.0 and float(phi(jnp.array([2.0, 3.1]))) == 0.0
    assert float(phi(jnp.array([1.0, 0.0]))) == 1.0  # the face of axis 1 is not a zero
    ball = ball_distance([0.0, 0.0], 2.0)
    np.testing.assert_allclose([ball(jnp.array([0.0, 0.0])), ball(jnp.array([2.0, 0.0]))], [1.0, 0.0], atol=1e-7)


@pytest.mark.parametrize("kind", ["linear", "exponential"])
def test_initial_condition_is_exact_at_t0_and_the_network_acts_later(kind):
    net = MLP(2, "scalar", 8, 2, key=jax.random.key(1))
    u0 = lambda x: x[0] ** 2 * jnp.cos(jnp.pi * x[0])
    u = InitialCondition(net, u0, t0=0.0, kind=kind, time_scale=0.5)
    x = jnp.linspace(-1, 1, 33)[:, None]

    @eqx.filter_jit
    def values(u):
        at0 = jax.vmap(lambda xi: u(xi, 0.0))(x)
        later = jax.vmap(lambda xi: u(xi, 0.3))(x)
        ut0 = jax.vmap(lambda xi: ad.time_derivative(u)(xi, 0.0))(x)
        return at0, later, ut0, jax.vmap(u0)(x), jax.vmap(lambda xi: net(xi, 0.0))(x)

    at0, later, ut0, exact, n0 = values(u)
    np.testing.assert_array_equal(at0, exact)  # τ(0) = 0 exactly
    assert float(jnp.abs(later - exact).max()) > 1e-3
    # ∂t ũ(x, 0) = τ'(0) N(x, 0): τ' = 1 (linear), 1/T (exponential)
    rate = 1.0 if kind == "linear" else 2.0
    np.testing.assert_allclose(ut0, rate * n0, rtol=1e-5, atol=1e-6)


def test_constraints_refuse_bad_arguments_by_name():
    net = MLP(2, "scalar", 4, 1, key=jax.random.key(0))
    with pytest.raises(TypeError, match="`distance`"):
        DirichletConstraint(net, 0.0, None)
    with pytest.raises(TypeError, match="`boundary_value`"):
        DirichletConstraint(net, [1.0, 2.0], box_distance(0.0, 1.0))
    with pytest.raises(ValueError, match="`kind`"):
        InitialCondition(net, lambda x: x[0], kind="cubic")
    with pytest.raises(ValueError, match="`time_scale`"):
        InitialCondition(net, lambda x: x[0], kind="exponential", time_scale=0.0)
    with pytest.raises(ValueError, match="`lower` and `upper`"):
        box_distance([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="`axes`"):
        box_distance([0.0], [1.0], axes=(1,))
    with pytest.raises(ValueError, match="`t` must be a time"):
        InitialCondition(net, lambda x: x[0])(jnp.ones(1), None)
