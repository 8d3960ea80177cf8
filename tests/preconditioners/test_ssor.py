"""SSOR: the dense M against its formula, SPD for 0 < ω < 2, CG iterations against a scipy SSOR,
jit/vmap in the operator's own structure, bad input."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg as spla
from jax.experimental import sparse as jsparse

from jaxpde import Grid
from jaxpde.numerics.krylov import ConjugateGradient
from jaxpde.numerics.sparse import SparseOperator
from jaxpde.numerics.stencils import DiffusionOperator
from jaxpde.preconditioners._ssor import SSOR
from tests.pdes.test_elliptic import scipy_cg_iterations, thresholded_field


def _systems():
    # One grid for both, so that one compilation serves both.
    grid = Grid((8, 8), boundary="dirichlet")
    poisson = DiffusionOperator(grid, jnp.ones(grid.shape, jnp.float64))
    darcy = DiffusionOperator(grid, jnp.asarray(thresholded_field(8, seed=3)))
    return {"poisson": poisson, "darcy-12/3": darcy}


# Jitted once per operator type and grid (omega traced): eager builds would dispatch op by op.
_dense_ssor = jax.jit(lambda operator, omega: SSOR(omega)(operator).as_matrix())


def _ssor_inverse_reference(matrix, omega):
    """``M⁻¹ = (D + ωL) D⁻¹ (D + ωLᵀ) / (ω(2-ω))``, dense."""
    d = np.diag(np.diag(matrix))
    lower = np.tril(matrix, -1)
    return (d + omega * lower) @ np.linalg.inv(d) @ (d + omega * lower.T) / (omega * (2 - omega))


@pytest.mark.parametrize("omega", [0.5, 1.0, 1.7])
def test_ssor_is_the_symmetric_sor_matrix_and_spd(x64, omega):
    for name, operator in _systems().items():
        matrix = np.asarray(operator.as_matrix())
        m = np.asarray(_dense_ssor(operator, omega))
        np.testing.assert_allclose(m @ _ssor_inverse_reference(matrix, omega), np.eye(len(m)), atol=1e-10, err_msg=name)
        assert np.abs(m - m.T).max() <= 1e-14 * np.abs(m).max(), name
        assert np.linalg.eigvalsh(m).min() > 0, name
        # ω(2-ω) scaling: M⁻¹ - A is positive semidefinite, so λ(MA) ⊂ (0, 1].
        eigenvalues = np.linalg.eigvals(m @ matrix).real
        assert eigenvalues.min() > 0 and eigenvalues.max() <= 1 + 1e-10, name


def _scipy_ssor(matrix, omega):
    """SSOR from scipy's triangular solves: the independent reference of the level-scheduled sweeps."""
    d = scipy.sparse.diags(matrix.diagonal())
    lower = scipy.sparse.tril(matrix, -1)
    forward = (d + omega * lower).tocsr()
    backward = (d + omega * lower.T).tocsr()

    def apply(r):
        y = spla.spsolve_triangular(forward, r, lower=True)
        return omega * (2 - omega) * spla.spsolve_triangular(backward, d @ y, lower=False)

    return spla.LinearOperator(matrix.shape, matvec=apply, dtype=np.float64)


def test_ssor_cuts_cg_iterations_on_poisson_as_scipy_ssor_does(x64):
    grid = Grid((32, 32), boundary="dirichlet")
    operator = DiffusionOperator(grid, 1.0, dtype=jnp.float64)
    matrix = operator.to_sparse().to_scipy()
    b = np.random.default_rng(0).standard_normal(grid.size)
    build = jax.jit(lambda omega: SSOR(omega)(operator))
    apply = jax.jit(lambda m, v: m.mv(v.reshape(grid.shape)).ravel())
    none = scipy_cg_iterations(matrix, b)
    counts = {}
    for omega in (1.0, 1.6):
        m = build(omega)
        matvec = lambda v, m=m: np.asarray(apply(m, jnp.asarray(v)))  # noqa: E731
        ours = spla.LinearOperator(matrix.shape, matvec=matvec, dtype=np.float64)
        counts[omega] = scipy_cg_iterations(matrix, b, ours)
        assert abs(counts[omega] - scipy_cg_iterations(matrix, b, _scipy_ssor(matrix, omega))) <= 1
    # Measured: none 77, SSOR(1) 29, SSOR(1.6) 18.
    assert counts[1.0] <= 0.45 * none and counts[1.6] < counts[1.0]


def test_ssor_under_jit_and_vmap_in_the_grid_structure():
    grid = Grid((6, 5), boundary="dirichlet")
    rng = np.random.default_rng(1)
    coefficients = jnp.asarray(rng.uniform(1, 4, (2, *grid.shape)), jnp.float32)
    omegas = jnp.asarray([0.8, 1.5], jnp.float32)
    v = jnp.asarray(rng.standard_normal(grid.shape), jnp.float32)
    apply = jax.jit(jax.vmap(lambda a, w: SSOR(w)(DiffusionOperator(grid, a)).mv(v)))
    out = apply(coefficients, omegas)
    assert out.shape == (2, *grid.shape) and out.dtype == jnp.float32
    for a, w, got in zip(coefficients, [0.8, 1.5], out):
        operator = DiffusionOperator(grid, a)
        expected = np.linalg.solve(_ssor_inverse_reference(np.asarray(operator.as_matrix(), np.float64), w), v.ravel())
        np.testing.assert_allclose(np.asarray(got).ravel(), expected, rtol=2e-5, atol=2e-5 * np.abs(expected).max())


@pytest.mark.slow
def test_ssor_reads_sparse_and_dense_operators_alike(x64):
    operator = _systems()["darcy-12/3"]
    expected = np.asarray(_dense_ssor(operator, 1.3))
    sparse = SparseOperator.from_scipy(operator.to_sparse().to_scipy(), lx.positive_semidefinite_tag)
    dense = lx.TaggedLinearOperator(lx.MatrixLinearOperator(operator.as_matrix()), lx.positive_semidefinite_tag)
    for other in (sparse, dense):
        m = jax.jit(lambda: SSOR(1.3)(other))()
        assert lx.is_positive_semidefinite(m) and m.in_structure().shape == (64,)
        np.testing.assert_allclose(np.asarray(jax.jit(lambda m: m.as_matrix())(m)), expected, rtol=1e-12, atol=1e-15)


def test_ssor_of_a_negated_or_scaled_operator_reads_its_entries(x64):
    # ConjugateGradient negates a negative definite operator before building M; implicit steps scale.
    operator = _systems()["darcy-12/3"]
    scaled = lx.TaggedLinearOperator(-(-2.5 * operator), lx.positive_semidefinite_tag)
    np.testing.assert_allclose(
        np.asarray(_dense_ssor(scaled, 1.3)), np.asarray(_dense_ssor(operator, 1.3)) / 2.5, rtol=1e-12, atol=1e-16
    )


@pytest.mark.slow
def test_ssor_inside_conjugate_gradient_on_a_negative_definite_operator(x64):
    grid = Grid((16, 16), boundary="dirichlet")
    operator = DiffusionOperator(grid, jnp.asarray(thresholded_field(16, seed=4)))
    negative = lx.TaggedLinearOperator(-operator, lx.negative_semidefinite_tag)
    b = jnp.ones(grid.shape)
    solve = jax.jit(lambda op, p: lx.linear_solve(op, b, ConjugateGradient(rtol=1e-8, preconditioner=p)))
    solution = solve(negative, SSOR(1.5))
    exact = spla.spsolve(operator.to_sparse().to_scipy().tocsc(), -np.ones(grid.size))
    np.testing.assert_allclose(np.asarray(solution.value).ravel(), exact, rtol=1e-6)
    assert int(solution.stats["num_steps"]) < 0.5 * int(solve(negative, None).stats["num_steps"])


@pytest.mark.parametrize("omega", [0.0, 2.0, -0.5, 2.5, float("nan"), "1.0", True])
def test_ssor_bad_omega_is_named(omega):
    with pytest.raises(ValueError, match=r"SSOR: `omega` must"):
        SSOR(omega)


def test_ssor_needs_an_operator_with_entries():
    grid = Grid((4, 4), boundary="dirichlet")
    operator = DiffusionOperator(grid, 1.0)
    matrix_free = lx.FunctionLinearOperator(operator.mv, operator.in_structure(), lx.positive_semidefinite_tag)
    with pytest.raises(TypeError, match=r"SSOR: .*stencil operators .*SparseOperator.*MatrixLinearOperator.*FunctionLinearOperator"):
        SSOR()(matrix_free)
    matrix = operator.to_sparse().matrix
    # Built inside jit from traced indices, with no static copy of the pattern to plan from.
    with pytest.raises(ValueError, match=r"SSOR: the sparsity pattern of the SparseOperator is traced and it has no static copy"):
        jax.jit(lambda i: SSOR()(SparseOperator(jsparse.BCOO((matrix.data, i), shape=matrix.shape))).mv(jnp.ones(16)))(
            matrix.indices
        )
