"""steady_state (diffrax ImplicitAdjoint, matrix-free) and the diffrax adjoints of the docs:
gradients against closed forms, central finite differences, root_find and differentiation
through the transient; no steady state inside a gradient raises."""

import functools

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.implicit._root import root_find
from jaxpde.implicit._time import steady_state

from ._jaxpr import largest_intermediate

N = 12


def _rhs(t, y, args):
    """``dy/dt = θ - y - y³ + ε (y_{i-1} - 2 y_i + y_{i+1})``: relaxes to the root of test_root's F."""
    theta, eps = args
    return theta - y - y**3 + eps * (jnp.roll(y, 1) + jnp.roll(y, -1) - 2 * y)


@functools.partial(jax.jit, static_argnums=2)
def _loss(theta, eps, adjoint):
    y = steady_state(_rhs, jnp.zeros_like(theta), (theta, eps), rtol=1e-12, atol=1e-12, adjoint=adjoint).value
    return jnp.sum(jnp.cos(jnp.arange(theta.size)) * y) + jnp.sum(y**4)


@pytest.mark.slow
def test_steady_state_gradient_matches_root_find_and_finite_differences(x64):
    theta, eps = jnp.sin(jnp.arange(N) * 0.7), 0.5
    solution = steady_state(_rhs, jnp.zeros(N), (theta, eps), rtol=1e-12, atol=1e-12)
    root = root_find(lambda y, a: -_rhs(0.0, y, a), jnp.zeros(N), (theta, eps), rtol=1e-13, atol=1e-13).value
    assert bool(solution.converged)
    np.testing.assert_allclose(solution.value, root, rtol=1e-9, atol=1e-11)

    def root_loss(theta, eps):
        y = root_find(lambda y, a: -_rhs(0.0, y, a), jnp.zeros(N), (theta, eps), rtol=1e-13, atol=1e-13).value
        return jnp.sum(jnp.cos(jnp.arange(N)) * y) + jnp.sum(y**4)

    implicit = jax.grad(_loss, argnums=(0, 1))(theta, eps, "implicit")
    exact = jax.grad(root_loss, argnums=(0, 1))(theta, eps)
    for got, want in zip(implicit, exact):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-11)
    dtheta, deps, h = jnp.cos(jnp.arange(N) * 1.3), 0.7, 1e-4
    central = (_loss(theta + h * dtheta, eps + h * deps, "implicit") - _loss(theta - h * dtheta, eps - h * deps, "implicit")) / (2 * h)
    np.testing.assert_allclose(implicit[0] @ dtheta + implicit[1] * deps, central, rtol=1e-6)


def test_steady_state_gradient_matches_finite_differences(x64):
    theta, eps = jnp.sin(jnp.arange(N) * 0.7), 0.5
    implicit = jax.grad(_loss, argnums=(0, 1))(theta, eps, "implicit")
    dtheta, deps, h = jnp.cos(jnp.arange(N) * 1.3), 0.7, 1e-4
    central = (_loss(theta + h * dtheta, eps + h * deps, "implicit") - _loss(theta - h * dtheta, eps - h * deps, "implicit")) / (2 * h)
    np.testing.assert_allclose(implicit[0] @ dtheta + implicit[1] * deps, central, rtol=1e-6)


@pytest.mark.slow
def test_steady_state_gradient_matches_differentiating_the_transient(x64):
    theta, eps = jnp.sin(jnp.arange(N) * 0.7), 0.5
    implicit = jax.grad(_loss, argnums=(0, 1))(theta, eps, "implicit")
    unrolled = jax.grad(_loss, argnums=(0, 1))(theta, eps, "checkpoint")
    for got, want in zip(implicit, unrolled):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-10)


def test_steady_state_adjoint_builds_no_dense_jacobian(x64):
    n = 2048
    theta = jnp.linspace(-1.0, 1.0, n)
    loss = lambda adjoint: lambda t: jnp.sum(steady_state(_rhs, jnp.zeros(n), (t, 0.5), adjoint=adjoint).value ** 2)
    assert largest_intermediate(jax.grad(loss("implicit")), theta) < 64 * n  # diffrax's default: n²


def test_no_steady_state_raises_inside_grad(x64):
    theta = jnp.sin(jnp.arange(N) * 0.7)

    def value(theta):
        return steady_state(_rhs, jnp.zeros(N), (theta, 0.5), max_steps=3, throw=False).value

    with pytest.raises(eqx.EquinoxRuntimeError, match="steady_state: no steady state within max_steps=3"):
        jax.grad(lambda t: jnp.sum(value(t)))(theta)


@pytest.mark.slow
@pytest.mark.parametrize("adjoint", [diffrax.RecursiveCheckpointAdjoint(), diffrax.BacksolveAdjoint(), diffrax.DirectAdjoint()])
def test_finite_horizon_adjoints_match_the_closed_form(x64, adjoint):
    # y' = -θ ⊙ y, y(0) = y0: y(T) = exp(-θT) y0, ∂/∂θ Σ y(T)² = -2T exp(-2θT) y0².
    theta, y0, t1 = jnp.linspace(0.5, 1.5, 4), jnp.linspace(1.0, 2.0, 4), 2.0

    def loss(theta):
        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(lambda t, y, th: -th * y), diffrax.Tsit5(), 0.0, t1, 0.05, y0, theta,
            stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-12), adjoint=adjoint, max_steps=10_000,
        )
        return jnp.sum(solution.ys[-1] ** 2)

    np.testing.assert_allclose(jax.grad(loss)(theta), -2 * t1 * jnp.exp(-2 * theta * t1) * y0**2, rtol=1e-8)
