"""`unrolled_pcg`: the iterates of ConjugateGradient, and gradients that match finite differences."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from jaxpde.numerics.krylov import ConjugateGradient
from jaxpde.numerics.preconditioning import Jacobi
from jaxpde.preconditioners._unrolled import unrolled_pcg

N = 24


def _spd(key):
    """An SPD matrix with a spread diagonal (so diagonal preconditioning matters): D^½ Q Λ Qᵀ D^½."""
    k1, k2 = jax.random.split(key)
    q, _ = jnp.linalg.qr(jax.random.normal(k1, (N, N)))
    inner = (q * jnp.linspace(1.0, 30.0, N)) @ q.T
    d = jnp.exp(2.0 * jax.random.uniform(k2, (N,)))
    return jnp.sqrt(d)[:, None] * inner * jnp.sqrt(d)[None, :]


def _psd(matrix):
    return lx.MatrixLinearOperator(matrix, lx.positive_semidefinite_tag)


@pytest.mark.slow
def test_iterates_equal_conjugate_gradient(x64):
    k = 7
    matrix = _spd(jax.random.key(0))
    b = jax.random.normal(jax.random.key(1), (N,))
    for ours_m, theirs_m in ((None, None), (Jacobi(), Jacobi())):
        x, norms = unrolled_pcg(_psd(matrix), b, ours_m, k)
        # rtol = atol = 0 with max_steps = k: ConjugateGradient stops after exactly k steps.
        solution = lx.linear_solve(
            _psd(matrix), b, ConjugateGradient(rtol=0.0, max_steps=k, preconditioner=theirs_m), throw=False
        )
        assert int(solution.stats["num_steps"]) == k
        np.testing.assert_allclose(x, solution.value, rtol=1e-11, atol=1e-13)
        assert norms.shape == (k + 1,)
        np.testing.assert_allclose(norms[0], jnp.linalg.norm(b), rtol=1e-14)
        np.testing.assert_allclose(norms[-1], jnp.linalg.norm(b - matrix @ x), rtol=1e-8)
    # after N steps in float64, CG has (nearly) solved the system
    x, norms = unrolled_pcg(_psd(matrix), b, Jacobi(), 2 * N)
    np.testing.assert_allclose(x, jnp.linalg.solve(matrix, b), rtol=1e-8)


@pytest.mark.slow  # default-suite budget
def test_gradient_in_a_preconditioner_parameter_matches_finite_differences(x64):
    matrix = _spd(jax.random.key(2))
    b = jax.random.normal(jax.random.key(3), (N,))
    k = 6

    @jax.jit
    def loss(theta):
        # M = diag(exp(θ)) / diag(A): a learned correction of Jacobi; loss = log ‖r_k‖ / ‖r_0‖.
        m = lx.DiagonalLinearOperator(jnp.exp(theta) / jnp.diagonal(matrix))
        _, norms = unrolled_pcg(_psd(matrix), b, m, k)
        return jnp.log(norms[-1] / norms[0])

    theta = 0.1 * jax.random.normal(jax.random.key(4), (N,))
    gradient = jax.grad(loss)(theta)
    direction = jax.random.normal(jax.random.key(5), (N,))
    eps = 1e-6
    fd = (loss(theta + eps * direction) - loss(theta - eps * direction)) / (2 * eps)
    np.testing.assert_allclose(jnp.sum(gradient * direction), fd, rtol=1e-6)
    assert float(jnp.linalg.norm(gradient)) > 1e-3  # the loss does depend on M

    # A function r -> M r (e.g. a network) works the same, and so does batching.
    fn_loss = lambda theta: unrolled_pcg(_psd(matrix), b, lambda r: jnp.exp(theta) * r / jnp.diagonal(matrix), k)[1][-1]  # noqa: E731
    np.testing.assert_allclose(jnp.log(fn_loss(theta) / jnp.linalg.norm(b)), loss(theta), rtol=1e-12)
    batch = jax.vmap(jax.grad(fn_loss))(jnp.stack([theta, 2 * theta]))
    assert batch.shape == (2, N) and bool(jnp.all(jnp.isfinite(batch)))


@pytest.mark.slow
def test_exact_convergence_keeps_gradients_finite(x64):
    # A diagonal system with the exact inverse as preconditioner converges in one step; the
    # remaining steps divide 0 by 0, which must not poison the gradient.
    diag = jnp.arange(1.0, 5.0)
    loss = lambda s: unrolled_pcg(lx.DiagonalLinearOperator(diag * s), jnp.ones(4), lambda r: r / diag, 5)[0].sum()  # noqa: E731
    value, gradient = jax.value_and_grad(loss)(2.0)
    np.testing.assert_allclose(value, jnp.sum(1 / (2.0 * diag)), rtol=1e-12)
    np.testing.assert_allclose(gradient, -jnp.sum(1 / (4.0 * diag)), rtol=1e-10)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"unrolled_pcg: `iterations` must be a non-negative integer, got -1"):
        unrolled_pcg(lx.DiagonalLinearOperator(jnp.ones(3)), jnp.ones(3), None, -1)
    with pytest.raises(TypeError, match=r"unrolled_pcg: `preconditioner` must be None, .* got str"):
        unrolled_pcg(lx.DiagonalLinearOperator(jnp.ones(3)), jnp.ones(3), "jacobi", 2)
