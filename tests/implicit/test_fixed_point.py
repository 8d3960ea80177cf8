"""fixed_point and AndersonAcceleration: solutions against dense solves, implicit gradients
against central finite differences and unrolled differentiation, no dense Jacobian, and errors
(never wrong gradients) from unconverged forward and adjoint solves."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
import pytest

from jaxpde.implicit._anderson import AndersonAcceleration
from jaxpde.implicit._fixed_point import fixed_point

from ._jaxpr import largest_intermediate

N = 24


def _problem():
    a = jax.random.normal(jax.random.key(0), (N, N)) / np.sqrt(N)
    a = 0.8 * a / jnp.linalg.norm(a, 2)  # a contraction: ‖∂f/∂z‖ ≤ 0.8
    theta = jax.random.normal(jax.random.key(1), (N,))
    return a, theta


def _f(z, args):
    a, theta = args
    return jnp.tanh(a @ z + theta)


@pytest.mark.slow
def test_anderson_linear_fixed_point_matches_dense_solve_and_beats_plain_iteration(x64):
    _, theta = _problem()
    # symmetric, spectrum in [-0.5, 0.98]: plain iteration needs ~1400 steps to 1e-12
    q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(4), (N, N)))
    a = (q * jnp.linspace(-0.5, 0.98, N)) @ q.T
    f = lambda z, b: a @ z + b
    exact = jnp.linalg.solve(jnp.eye(N) - a, theta)
    anderson = optx.fixed_point(f, AndersonAcceleration(rtol=1e-12, atol=1e-12), jnp.zeros(N), theta, max_steps=500)
    plain = optx.fixed_point(f, optx.FixedPointIteration(rtol=1e-12, atol=1e-12), jnp.zeros(N), theta, max_steps=5000)
    np.testing.assert_allclose(anderson.value, exact, rtol=1e-9, atol=1e-10)
    # Anderson with memory m on a linear map is GMRES(m)-like: far fewer steps than plain.
    assert int(anderson.stats["num_steps"]) * 5 < int(plain.stats["num_steps"])


@pytest.mark.parametrize("unrolled", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_fixed_point_gradient_matches_finite_differences_and_unrolled(x64, unrolled):
    a, theta = _problem()
    w = jnp.linspace(-1.0, 1.0, N)

    @functools.partial(jax.jit, static_argnums=2)
    def loss(a, theta, adjoint):
        z = fixed_point(_f, jnp.zeros(N), (a, theta), rtol=1e-13, atol=1e-13, adjoint=adjoint).value
        return jnp.sum(w * z) + jnp.sum(z**2)

    implicit = jax.grad(loss, argnums=(0, 1))(a, theta, "implicit")
    da = jax.random.normal(jax.random.key(3), (N, N))
    dtheta = jax.random.normal(jax.random.key(2), (N,))
    h = 1e-5
    central = (loss(a + h * da, theta + h * dtheta, "implicit") - loss(a - h * da, theta - h * dtheta, "implicit")) / (2 * h)
    np.testing.assert_allclose(jnp.sum(implicit[0] * da) + implicit[1] @ dtheta, central, rtol=1e-6)
    if unrolled:  # the slow variant: also against reverse mode through the iterations
        for got, want in zip(implicit, jax.grad(loss, argnums=(0, 1))(a, theta, "unrolled")):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-10)


def test_implicit_adjoint_builds_no_dense_jacobian(x64):
    # A diagonal-plus-stencil contraction on n = 4096: the optimistix default (dense LU) would
    # make an n×n array; the matrix-free adjoint's largest array is the GMRES basis (21 n).
    n = 4096

    def f(z, theta):
        return 0.4 * jnp.tanh(jnp.roll(z, 1) + jnp.roll(z, -1)) + theta

    def loss(theta, adjoint):
        return jnp.sum(fixed_point(f, jnp.zeros(n), theta, rtol=1e-10, atol=1e-10, adjoint=adjoint).value ** 2)

    theta = jnp.linspace(0.0, 1.0, n)
    assert largest_intermediate(jax.grad(lambda t: loss(t, "implicit")), theta) < 64 * n
    # the detector sees the dense Jacobian of optimistix's default linear solver
    assert largest_intermediate(jax.grad(lambda t: loss(t, optx.ImplicitAdjoint())), theta) >= n * n


def test_unconverged_forward_raises_inside_grad_even_with_throw_false(x64):
    a, theta = _problem()

    def loss(theta):
        return jnp.sum(fixed_point(_f, jnp.zeros(N), (a, theta), max_steps=2, throw=False).value)

    solution = fixed_point(_f, jnp.zeros(N), (a, theta), max_steps=2, throw=False)
    assert not bool(solution.converged)  # the value itself comes back, flagged
    with pytest.raises(eqx.EquinoxRuntimeError, match="fixed_point: the iteration did not converge"):
        jax.grad(loss)(theta)
    with pytest.raises(eqx.EquinoxRuntimeError, match="max_steps=2"):
        fixed_point(_f, jnp.zeros(N), (a, theta), max_steps=2)


@pytest.mark.slow
def test_unconverged_adjoint_solve_raises(x64):
    a, theta = _problem()
    starved = optx.ImplicitAdjoint(lx.GMRES(rtol=1e-14, atol=1e-14, max_steps=2, restart=2))

    def loss(theta):
        return jnp.sum(fixed_point(_f, jnp.zeros(N), (a, theta), rtol=1e-12, atol=1e-12, adjoint=starved).value ** 2)

    # raised in the backward pass, outside any filter_jit: jax re-raises it as a JaxRuntimeError
    with pytest.raises((eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError), match="fixed_point: the adjoint linear solve"):
        jax.grad(loss)(theta)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="`memory` must be an integer ≥ 1, got 0"):
        AndersonAcceleration(rtol=1e-6, atol=1e-6, memory=0)
    with pytest.raises(ValueError, match=r"`mixing` must lie in \(0, 1\], got 1.5"):
        AndersonAcceleration(rtol=1e-6, atol=1e-6, mixing=1.5)
    with pytest.raises(ValueError, match="fixed_point: `adjoint` must be 'implicit', 'unrolled'"):
        fixed_point(lambda z, _: z, jnp.zeros(2), adjoint="dense")
    with pytest.raises(ValueError, match="fixed_point: `max_steps` must be a positive integer, got 0"):
        fixed_point(lambda z, _: z, jnp.zeros(2), max_steps=0)


def test_anderson_in_float32_after_exact_convergence():
    # Regression: with a ridge of 1e-10 · max‖r‖² (below float32 precision), the residuals of an
    # iteration that has converged exactly made the small least-squares solve 0/0 -> NaN.
    solution = fixed_point(lambda z, b: 0.5 * z + b, jnp.zeros(3), jnp.ones(3), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(solution.value, 2.0, rtol=1e-5)
    assert solution.value.dtype == jnp.float32
