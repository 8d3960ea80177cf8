"""IC(0): equal to a dense-loop reference factorisation, SPD, CG iterations against the reference's,
breakdown and shift, float32 PCG, bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg as spla

from jaxpde import Grid
from jaxpde.numerics.krylov import ConjugateGradient
from jaxpde.numerics.sparse import SparseOperator
from jaxpde.numerics.stencils import DiffusionOperator
from jaxpde.preconditioners._incomplete_cholesky import IncompleteCholesky
from tests.pdes.test_elliptic import scipy_cg_iterations, thresholded_field


def reference_ic0(matrix, pattern=None):
    """IC(0) by the textbook dense loop: L on the lower pattern of `matrix` with (L Lᵀ)_ij = A_ij there.
    Returns None at a non-positive pivot."""
    matrix = np.asarray(matrix, np.float64)
    pattern = matrix != 0 if pattern is None else pattern
    n = len(matrix)
    factor = np.zeros_like(matrix)
    for i in range(n):
        for j in range(i):
            if pattern[i, j]:
                factor[i, j] = (matrix[i, j] - factor[i, :j] @ factor[j, :j]) / factor[j, j]
        pivot = matrix[i, i] - factor[i, :i] @ factor[i, :i]
        if pivot <= 0:
            return None
        factor[i, i] = np.sqrt(pivot)
    return factor


def m_matrix(n=40, density=0.12, seed=2):
    """A random sparse symmetric M-matrix (IC(0) exists) with enough fill that the factorisation's
    inner products L_ik L_jk are not all empty (unlike a 5-point stencil's)."""
    off = scipy.sparse.random(n, n, density=density, random_state=seed).toarray()
    off = -(off + off.T)
    np.fill_diagonal(off, 0)
    return off + np.diag(0.5 - off.sum(axis=1))


_dense_m = jax.jit(lambda operator: IncompleteCholesky()(operator).as_matrix())


_dense_factor = jax.jit(lambda operator: IncompleteCholesky().factor(operator))


def test_ic0_equals_the_reference_factorisation(x64):
    darcy = DiffusionOperator(Grid((8, 8), boundary="dirichlet"), jnp.asarray(thresholded_field(8, seed=3)))
    matrix = m_matrix()
    sparse = SparseOperator.from_scipy(scipy.sparse.csr_matrix(matrix), lx.positive_semidefinite_tag)
    cases = ((_dense_factor(darcy), darcy.as_matrix()), (jax.jit(lambda: IncompleteCholesky().factor(sparse))(), matrix))
    for got, dense in cases:
        expected = reference_ic0(dense)
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6, atol=1e-12 * np.abs(expected).max())
    # The random M-matrix exercises the update sums: some L_ij differ from A_ij / L_jj.
    plain = np.tril(matrix, -1) / np.diag(reference_ic0(matrix))[None, :]
    assert np.abs(np.tril(reference_ic0(matrix), -1) - plain).max() > 1e-3


@pytest.mark.slow
def test_ic0_of_a_dense_matrix_is_cholesky(x64):
    matrix = m_matrix()
    dense = lx.MatrixLinearOperator(jnp.asarray(matrix))
    np.testing.assert_allclose(np.asarray(_dense_factor(dense)), np.linalg.cholesky(matrix), rtol=1e-10, atol=1e-13)


def test_ic0_preconditioner_is_spd_and_the_inverse_of_l_lt(x64):
    grid = Grid((8, 8), boundary="dirichlet")
    poisson = DiffusionOperator(grid, jnp.ones(grid.shape, jnp.float64))
    darcy = DiffusionOperator(grid, jnp.asarray(thresholded_field(8, seed=3)))
    for operator in (poisson, darcy):
        factor = reference_ic0(operator.as_matrix())
        m = np.asarray(_dense_m(operator))
        np.testing.assert_allclose(m @ factor @ factor.T, np.eye(len(m)), atol=1e-10)
        assert np.abs(m - m.T).max() <= 1e-14 * np.abs(m).max()
        assert np.linalg.eigvalsh(m).min() > 0


def test_ic0_cuts_cg_iterations_on_poisson_as_the_reference_does(x64):
    grid = Grid((32, 32), boundary="dirichlet")
    operator = DiffusionOperator(grid, 1.0, dtype=jnp.float64)
    matrix = operator.to_sparse().to_scipy()
    b = np.random.default_rng(0).standard_normal(grid.size)
    m = jax.jit(lambda: IncompleteCholesky()(operator))()
    apply = jax.jit(lambda m, v: m.mv(v.reshape(grid.shape)).ravel())
    ours = spla.LinearOperator(matrix.shape, matvec=lambda v: np.asarray(apply(m, jnp.asarray(v))), dtype=np.float64)
    factor = scipy.sparse.csr_matrix(reference_ic0(matrix.toarray()))
    reference = spla.LinearOperator(
        matrix.shape,
        matvec=lambda v: spla.spsolve_triangular(factor.T.tocsr(), spla.spsolve_triangular(factor, v), lower=False),
        dtype=np.float64,
    )
    none, ic0 = scipy_cg_iterations(matrix, b), scipy_cg_iterations(matrix, b, ours)
    assert abs(ic0 - scipy_cg_iterations(matrix, b, reference)) <= 1
    assert ic0 <= 0.45 * none  # measured: none 77, IC(0) 25


@pytest.mark.slow
def test_ic0_breakdown_keeps_m_spd_and_shift_factors_the_shifted_matrix(x64):
    # An SPD (not M-) matrix on whose pattern IC(0) meets a negative pivot (seed found by search).
    rng = np.random.default_rng(83)
    off = scipy.sparse.random(8, 8, density=0.3, random_state=83).toarray() * rng.choice([-1, 1], (8, 8))
    off = off + off.T
    np.fill_diagonal(off, 0)
    matrix = off + (0.05 - np.linalg.eigvalsh(off).min()) * np.eye(8)
    assert np.linalg.eigvalsh(matrix).min() > 0 and reference_ic0(matrix) is None
    sparse = SparseOperator.from_scipy(scipy.sparse.csr_matrix(matrix), lx.positive_semidefinite_tag)
    m = np.asarray(jax.jit(lambda: IncompleteCholesky()(sparse).as_matrix())())
    assert np.all(np.isfinite(m)) and np.abs(m - m.T).max() <= 1e-12 * np.abs(m).max()
    assert np.linalg.eigvalsh(m).min() > 0
    # Manteuffel's shift: IC(0) of A + α diag(A), which exists here for α = 1.
    shifted = matrix + np.diag(np.diag(matrix))
    expected = reference_ic0(shifted, pattern=matrix != 0)
    got = np.asarray(jax.jit(lambda: IncompleteCholesky(shift=1.0).factor(sparse))())
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-13)


@pytest.mark.slow
def test_ic0_pcg_converges_in_float32_under_vmap():
    # Darcy 12/3 at 32², float32: the factorisation and both sweeps in float32, inside vmap.
    grid = Grid((32, 32), boundary="dirichlet")
    coefficients = jnp.asarray(np.stack([thresholded_field(32, seed=s) for s in (0, 1)]), jnp.float32)

    def solve(a):
        operator = DiffusionOperator(grid, a)
        solver = ConjugateGradient(rtol=1e-5, preconditioner=IncompleteCholesky()(operator))
        solution = lx.linear_solve(operator, jnp.ones(grid.shape, jnp.float32), solver, throw=False)
        return solution.value, solution.result == lx.RESULTS.successful, solution.stats["num_steps"]

    u, ok, steps = jax.jit(jax.vmap(solve))(coefficients)
    assert bool(jnp.all(ok)) and bool(jnp.all(jnp.isfinite(u)))
    for a, got, count in zip(coefficients, u, steps):
        matrix = DiffusionOperator(grid, a).to_sparse().to_scipy().astype(np.float64)
        exact = spla.spsolve(matrix.tocsc(), np.ones(grid.size))
        assert np.linalg.norm(np.asarray(got, np.float64).ravel() - exact) <= 2e-4 * np.linalg.norm(exact)
        assert count < 0.5 * scipy_cg_iterations(matrix, np.ones(grid.size))


def test_ic0_bad_input_is_named():
    with pytest.raises(ValueError, match=r"IncompleteCholesky: `shift` must be a finite real number >= 0, got -1"):
        IncompleteCholesky(shift=-1.0)
    operator = DiffusionOperator(Grid((4, 4), boundary="dirichlet"), 1.0)
    matrix_free = lx.FunctionLinearOperator(operator.mv, operator.in_structure(), lx.positive_semidefinite_tag)
    with pytest.raises(TypeError, match=r"IncompleteCholesky: needs the entries .*DiffusionOperator.*SparseOperator"):
        IncompleteCholesky()(matrix_free)



def test_ic0_and_ssor_are_built_inside_cg_on_a_sparse_operator_passed_into_jit(x64):
    # Regression: lineax.linear_solve traces the operator's leaves, the BCOO indices among them, so
    # a factorisation planned from matrix.indices failed in CG's init ("pattern ... traced"); it
    # now reads SparseOperator.pattern, a static copy. The operator is an argument of the jit,
    # its pattern a random one (BCOO layout, no stencil); checked against scipy's solve and CG.
    from jaxpde.preconditioners._neural_if import NeuralIF
    from jaxpde.preconditioners._ssor import SSOR

    matrix = scipy.sparse.csr_matrix(m_matrix(n=60, density=0.08, seed=5))
    operator = SparseOperator.from_scipy(matrix, lx.positive_semidefinite_tag)
    assert operator.layout == "bcoo"
    b = np.random.default_rng(0).standard_normal(60)
    exact = spla.spsolve(matrix.tocsc(), b)
    count = [0]
    spla.cg(matrix, b, rtol=1e-10, maxiter=600, callback=lambda _: count.__setitem__(0, count[0] + 1))

    preconditioners = (IncompleteCholesky(), SSOR(1.2))

    @eqx.filter_jit  # both solves in one program: one compilation (~30% less than two)
    def solve(operator):
        solutions = [
            lx.linear_solve(operator, jnp.asarray(b), ConjugateGradient(rtol=1e-10, preconditioner=p)) for p in preconditioners
        ]
        return [(solution.value, solution.stats["num_steps"]) for solution in solutions]

    for preconditioner, (u, steps) in zip(preconditioners, solve(operator)):
        np.testing.assert_allclose(np.asarray(u), exact, rtol=1e-8, err_msg=type(preconditioner).__name__)
        assert int(steps) < 0.6 * count[0], (type(preconditioner).__name__, int(steps), count[0])  # measured 11, 12 vs 27
    # The graph networks read the same static pattern. NeuralIF whose output layers are zero (at
    # initialisation; here every weight, set on the host — an eager random initialisation compiles
    # op by op, ~3 s) is symmetric Gauss–Seidel in closed form: L = D^{1/2} (I + N), N the strictly
    # lower part of D^{-1/2} A D^{-1/2}.
    dense = matrix.toarray()
    root = np.sqrt(np.diag(dense))
    expected = root[:, None] * (np.eye(60) + np.tril(dense / np.outer(root, root), -1))
    shapes = eqx.filter_eval_shape(lambda: NeuralIF(key=jax.random.key(0)))
    zero = lambda s: jnp.asarray(np.zeros(s.shape, s.dtype)) if isinstance(s, jax.ShapeDtypeStruct) else s  # noqa: E731
    network = jax.tree_util.tree_map(zero, shapes)
    factor = eqx.filter_jit(lambda op: network.factor(op).as_matrix())(operator)
    np.testing.assert_allclose(np.asarray(factor), expected, rtol=1e-10, atol=1e-14)
