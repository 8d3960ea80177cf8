"""linear_solve: gradients against dense solves, central finite differences and unrolled CG;
an unconverged forward solve (throw=False) or adjoint solve raises instead of a wrong gradient."""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from jaxpde.implicit._linear import linear_solve
from jaxpde.preconditioners import Jacobi, Preconditioned, unrolled_pcg

N = 20


def _spd(scale):
    a = jax.random.normal(jax.random.key(0), (N, N))
    return a @ a.T / N + scale * jnp.eye(N)


def _loss(matrix, b, **kwargs):
    x = linear_solve(lx.MatrixLinearOperator(matrix, lx.positive_semidefinite_tag), b, **kwargs).value
    return jnp.sum(jnp.sin(x)) + jnp.sum(x**2)


@pytest.mark.slow
def test_linear_gradient_matches_dense_finite_differences_and_unrolled_cg(x64):
    matrix, b = _spd(1.0), jnp.cos(jnp.arange(N) * 1.0)
    grads = jax.grad(_loss, argnums=(0, 1))(matrix, b, rtol=1e-13)
    dense = jax.grad(lambda m, b: jnp.sum(jnp.sin(jnp.linalg.solve(m, b))) + jnp.sum(jnp.linalg.solve(m, b) ** 2), argnums=(0, 1))(matrix, b)
    unrolled = jax.grad(
        lambda m, b: (lambda x: jnp.sum(jnp.sin(x)) + jnp.sum(x**2))(unrolled_pcg(lx.MatrixLinearOperator(m), b, None, 60)[0]),
        argnums=(0, 1),
    )(matrix, b)
    for got, want, rolled in zip(grads, dense, unrolled):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got, rolled, rtol=1e-6, atol=1e-10)
    dm, db, h = jax.random.normal(jax.random.key(1), (N, N)), jnp.sin(jnp.arange(N) * 1.0), 1e-5
    central = (_loss(matrix + h * dm, b + h * db, rtol=1e-13) - _loss(matrix - h * dm, b - h * db, rtol=1e-13)) / (2 * h)
    np.testing.assert_allclose(jnp.sum(grads[0] * dm) + grads[1] @ db, central, rtol=1e-6)


@pytest.mark.slow
def test_general_operator_and_preconditioned_solver(x64):
    # An untagged, nonsymmetric operator goes to GMRES; a Preconditioned BiCGStab gives the same.
    matrix = _spd(2.0) + 0.3 * jnp.triu(jnp.ones((N, N)), 1)
    b = jnp.cos(jnp.arange(N) * 1.0)
    dense = jax.grad(lambda m: jnp.sum(jnp.linalg.solve(m, b) ** 2))(matrix)
    for solver in (None, Preconditioned(Jacobi(), method="bicgstab", rtol=1e-12, atol=1e-12)):
        got = jax.grad(lambda m: jnp.sum(linear_solve(lx.MatrixLinearOperator(m), b, solver=solver, rtol=1e-12).value ** 2))(matrix)
        np.testing.assert_allclose(got, dense, rtol=1e-8, atol=1e-12)


def test_unconverged_forward_solve_raises_inside_grad(x64):
    matrix, b = _spd(0.01), jnp.cos(jnp.arange(N) * 1.0)
    solution = linear_solve(lx.MatrixLinearOperator(matrix, lx.positive_semidefinite_tag), b, rtol=1e-12, max_steps=3, throw=False)
    assert not bool(solution.converged)
    # lineax alone returns a gradient here (its transposed solve converges; the primal x is wrong)
    with pytest.raises(eqx.EquinoxRuntimeError, match="linear_solve: the solve with ConjugateGradient did not converge"):
        jax.grad(_loss)(matrix, b, rtol=1e-12, max_steps=3, throw=False)


@pytest.mark.slow
def test_unconverged_adjoint_solve_raises(x64):
    # b is an eigenvector, so the forward GMRES converges at once (3 steps); the cotangent does not.
    diagonal = jnp.arange(1.0, N + 1.0)
    operator = lambda d: lx.FunctionLinearOperator(lambda x: d * x, jax.ShapeDtypeStruct((N,), jnp.float64))
    b = jnp.zeros(N).at[0].set(1.0)
    solver = lx.GMRES(rtol=1e-12, atol=1e-12, max_steps=4, restart=2)
    assert bool(linear_solve(operator(diagonal), b, solver=solver).converged)
    with pytest.raises((eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError), match=r"linear_solve: the adjoint \(transposed\) solve"):
        jax.grad(lambda d: jnp.sum(linear_solve(operator(d), b, solver=solver).value * jnp.arange(N)))(diagonal)
