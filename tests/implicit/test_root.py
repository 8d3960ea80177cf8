"""root_find: Newton–Krylov roots differentiated by the implicit function theorem — against
central finite differences and unrolled differentiation, preconditioned, at 10⁶ unknowns (no
dense Jacobian), and raising on unconverged forward or adjoint solves."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
import pytest

from jaxpde.implicit._root import root_find
from jaxpde.preconditioners import Jacobi, Preconditioned

from ._jaxpr import largest_intermediate


def _residual(y, args):
    """``F(y) = y + y³ - ε (y_{i-1} - 2 y_i + y_{i+1}) - θ``: diagonal plus a periodic stencil."""
    theta, eps = args
    return y + y**3 - eps * (jnp.roll(y, 1) + jnp.roll(y, -1) - 2 * y) - theta


N = 24


@functools.partial(jax.jit, static_argnums=2)
def _loss(theta, eps, adjoint):
    y = root_find(_residual, jnp.zeros_like(theta), (theta, eps), rtol=1e-12, atol=1e-12, adjoint=adjoint).value
    return jnp.sum(jnp.cos(jnp.arange(theta.size)) * y) + jnp.sum(y**4)


@pytest.mark.slow
@pytest.mark.parametrize("unrolled", [False, True])
def test_root_gradient_matches_finite_differences_and_unrolled(x64, unrolled):
    theta, eps = jnp.sin(jnp.arange(N) * 0.7), 0.5
    solution = root_find(_residual, jnp.zeros(N), (theta, eps), rtol=1e-12, atol=1e-12)
    assert bool(solution.converged)
    np.testing.assert_allclose(_residual(solution.value, (theta, eps)), 0, atol=1e-12)
    implicit = jax.grad(_loss, argnums=(0, 1))(theta, eps, "implicit")
    dtheta, deps, h = jnp.cos(jnp.arange(N) * 1.3), 0.7, 1e-5
    central = (_loss(theta + h * dtheta, eps + h * deps, "implicit") - _loss(theta - h * dtheta, eps - h * deps, "implicit")) / (2 * h)
    np.testing.assert_allclose(implicit[0] @ dtheta + implicit[1] * deps, central, rtol=1e-6)
    if unrolled:  # the slow variant: also against reverse mode through the Newton steps
        for got, want in zip(implicit, jax.grad(_loss, argnums=(0, 1))(theta, eps, "unrolled")):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)


@pytest.mark.slow
def test_preconditioned_newton_krylov_gives_the_same_root_and_gradient(x64):
    theta, eps = jnp.sin(jnp.arange(N) * 0.7), 0.5

    def loss(theta, **kwargs):
        return jnp.sum(root_find(_residual, jnp.zeros(N), (theta, eps), rtol=1e-12, atol=1e-12, **kwargs).value ** 2)

    plain = jax.grad(loss)(theta)
    jacobi = jax.grad(functools.partial(loss, preconditioner=Jacobi(stencil_reach=1)))(theta)
    np.testing.assert_allclose(jacobi, plain, rtol=1e-9)


def test_root_adjoint_builds_no_dense_jacobian(x64):
    n = 4096
    theta = jnp.linspace(-1.0, 1.0, n)

    def loss(theta, adjoint):
        return jnp.sum(root_find(_residual, jnp.zeros(n), (theta, 0.5), rtol=1e-8, atol=1e-8, adjoint=adjoint).value ** 2)

    # (optimistix's default ImplicitAdjoint makes an n×n array here: see test_fixed_point)
    assert largest_intermediate(jax.grad(lambda t: loss(t, "implicit")), theta) < 64 * n


@pytest.mark.slow
def test_root_gradient_at_a_million_unknowns(x64):
    # The dense Jacobian would take 8 TB. Newton–CG (the Jacobian is SPD) forward and backward.
    n = 10**6
    cg = Preconditioned(None, method="cg", structure="spd", rtol=1e-10)
    theta = jnp.sin(jnp.arange(n) * 0.01)
    direction = jnp.cos(jnp.arange(n) * 0.003)

    @jax.jit
    def loss(theta):
        y = root_find(
            _residual, jnp.zeros(n), (theta, 0.5), rtol=1e-10, atol=1e-10, linear_solver=cg, adjoint=optx.ImplicitAdjoint(cg)
        ).value
        return jnp.sum(y**2)

    grad = jax.grad(loss)(theta)
    h = 1e-4
    central = (loss(theta + h * direction) - loss(theta - h * direction)) / (2 * h)
    np.testing.assert_allclose(grad @ direction, central, rtol=1e-6)


def test_unconverged_root_raises_inside_grad(x64):
    theta = jnp.sin(jnp.arange(N) * 0.7)
    with pytest.raises(eqx.EquinoxRuntimeError, match="root_find: Newton did not converge within max_steps=1"):
        jax.grad(lambda t: jnp.sum(root_find(_residual, jnp.zeros(N), (t, 0.5), max_steps=1, throw=False).value))(theta)


@pytest.mark.slow
def test_unconverged_root_adjoint_raises(x64):
    theta = jnp.sin(jnp.arange(N) * 0.7)
    starved = optx.ImplicitAdjoint(lx.GMRES(rtol=1e-14, atol=1e-14, max_steps=2, restart=2))
    with pytest.raises((eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError), match="root_find: the adjoint linear solve"):
        jax.grad(lambda t: jnp.sum(root_find(_residual, jnp.zeros(N), (t, 0.5), rtol=1e-12, atol=1e-12, adjoint=starved).value ** 2))(theta)


def test_root_find_arguments_are_checked():
    with pytest.raises(TypeError, match="root_find: `preconditioner` must be a jaxpde AbstractPreconditioner"):
        root_find(_residual, jnp.zeros(2), (jnp.zeros(2), 0.5), preconditioner=lx.IdentityLinearOperator(jax.ShapeDtypeStruct((2,), jnp.float32)))
    with pytest.raises(TypeError, match="root_find: `solver` must be an optimistix.AbstractRootFinder"):
        root_find(_residual, jnp.zeros(2), (jnp.zeros(2), 0.5), solver=lx.GMRES(rtol=1e-6, atol=1e-6))
