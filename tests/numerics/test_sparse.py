"""SparseOperator against scipy.sparse, and stencil assembly into it."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg as spla
from jax.experimental import sparse as jsparse

from jaxpde import Grid
from jaxpde.numerics.sparse import SparseOperator
from jaxpde.numerics.stencils import DiffusionOperator, HelmholtzOperator


def _random_matrix(m, n, density=0.2, seed=0):
    return scipy.sparse.random(m, n, density=density, random_state=seed, format="csr")


def test_mv_transpose_diagonal_match_scipy(x64):
    matrix = _random_matrix(40, 40)
    op = SparseOperator.from_scipy(matrix)
    x = np.random.default_rng(1).standard_normal(40)
    np.testing.assert_allclose(op.mv(jnp.asarray(x)), matrix @ x, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(op.transpose().mv(jnp.asarray(x)), matrix.T @ x, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(op.as_matrix(), matrix.toarray(), rtol=0, atol=0)
    np.testing.assert_allclose(op.diagonal(), matrix.diagonal(), rtol=0, atol=0)
    np.testing.assert_allclose(lx.diagonal(op), matrix.diagonal(), rtol=0, atol=0)
    main, lower, upper = lx.tridiagonal(op)
    dense = matrix.toarray()
    np.testing.assert_array_equal(lower, np.diagonal(dense, -1))
    np.testing.assert_array_equal(upper, np.diagonal(dense, 1))
    np.testing.assert_array_equal(main, np.diagonal(dense))
    assert not lx.is_symmetric(op) and not lx.is_positive_semidefinite(op)


def test_rectangular_and_round_trip(x64):
    matrix = _random_matrix(30, 50, seed=2)
    op = SparseOperator.from_scipy(matrix)
    assert op.in_structure().shape == (50,) and op.out_structure().shape == (30,)
    back = op.to_scipy()
    assert back.shape == (30, 50) and (back != matrix).nnz == 0
    x = np.random.default_rng(3).standard_normal(50)
    np.testing.assert_allclose(op.mv(jnp.asarray(x)), matrix @ x, rtol=1e-13, atol=1e-14)
    assert op.transpose().in_structure().shape == (30,)


def test_duplicates_and_padding_are_handled(x64):
    # Duplicate (0, 1) entries sum; an out-of-range padding entry (as BCOO.sum_duplicates leaves
    # under jit) is ignored everywhere.
    data = jnp.array([1.0, 2.0, 3.0, 0.0, 5.0])
    indices = jnp.array([[0, 1], [0, 1], [1, 1], [2, 2], [0, 0]])
    op = SparseOperator(jsparse.BCOO((data, indices), shape=(2, 2)))
    dense = np.array([[5.0, 3.0], [0.0, 3.0]])
    np.testing.assert_allclose(op.as_matrix(), dense)
    np.testing.assert_allclose(op.to_scipy().toarray(), dense)
    np.testing.assert_allclose(op.diagonal(), [5.0, 3.0])
    np.testing.assert_allclose(op.mv(jnp.array([1.0, 2.0])), dense @ [1.0, 2.0])


@pytest.mark.parametrize("boundary", ["dirichlet", "periodic"])
@pytest.mark.parametrize("shape", [(7,), (2,), (5, 6), (3, 4, 5)])
def test_stencil_mv_equals_assembled_matrix(x64, shape, boundary):
    grid = Grid(shape, boundary=boundary, lengths=tuple(1.0 + 0.5 * i for i in range(len(shape))))
    rng = np.random.default_rng(4)
    a = jnp.asarray(rng.uniform(0.3, 5.0, shape))
    u = jnp.asarray(rng.standard_normal(shape))
    for op in (DiffusionOperator(grid, a, shift=0.7), HelmholtzOperator(grid, 2.5)):
        sparse = op.to_sparse()
        np.testing.assert_allclose(sparse.mv(u.ravel()), op.mv(u).ravel(), rtol=1e-12, atol=1e-11)
        np.testing.assert_allclose(sparse.to_scipy() @ np.asarray(u).ravel(), op.mv(u).ravel(), rtol=1e-12, atol=1e-11)
        np.testing.assert_allclose(sparse.diagonal(), op.diagonal(), rtol=1e-14)
        assert sparse.tags == op.tags
    assert lx.is_positive_semidefinite(DiffusionOperator(grid, a).to_sparse())


def test_assembly_is_sparse_at_256_squared():
    # No dense intermediate: 65 536 unknowns, 5-point stencil.
    n = 256
    grid = Grid((n, n), boundary="dirichlet")
    sparse = DiffusionOperator(grid, jnp.ones(grid.shape)).to_sparse()
    assert sparse.nnz == grid.size + 2 * 2 * n * (n - 1)
    matrix = sparse.to_scipy()
    assert matrix.shape == (grid.size, grid.size) and matrix.nnz == sparse.nnz
    x = np.random.default_rng(5).standard_normal(grid.size).astype(np.float32)
    op = DiffusionOperator(grid, jnp.ones(grid.shape))
    np.testing.assert_allclose(matrix @ x, np.asarray(op.mv(jnp.asarray(x).reshape(grid.shape))).ravel(), rtol=1e-5, atol=1e-5 * 8 * (n + 1) ** 2)


def test_linear_solve_jit_and_gradient(x64):
    grid = Grid((6, 5), boundary="dirichlet")
    a = jnp.asarray(np.random.default_rng(6).uniform(1.0, 2.0, grid.shape))
    matrix = DiffusionOperator(grid, a).to_sparse()
    b = jnp.ones(grid.size)
    solution = jax.jit(lambda op: lx.linear_solve(op, b, lx.CG(rtol=1e-12, atol=1e-12)).value)(matrix)
    np.testing.assert_allclose(solution, spla.spsolve(matrix.to_scipy().tocsc(), np.ones(grid.size)), rtol=1e-9)

    # d/d data of w . A^{-1} b  =  -(A^{-T} w)_i x_j at entry (i, j).
    w = jnp.asarray(np.random.default_rng(7).standard_normal(grid.size))

    def loss(data):
        op = SparseOperator(jsparse.BCOO((data, matrix.matrix.indices), shape=matrix.matrix.shape), matrix.tags)
        return w @ lx.linear_solve(op, b, lx.CG(rtol=1e-12, atol=1e-12)).value

    grad = jax.grad(loss)(matrix.matrix.data)
    adjoint = spla.spsolve(matrix.to_scipy().T.tocsc(), np.asarray(w))
    rows, cols = np.asarray(matrix.matrix.indices).T
    np.testing.assert_allclose(grad, -adjoint[rows] * np.asarray(solution)[cols], rtol=1e-7, atol=1e-12)


def test_tags_and_errors():
    matrix = scipy.sparse.eye(4, format="csr")
    op = SparseOperator.from_scipy(matrix, tags=lx.positive_semidefinite_tag)
    assert lx.is_positive_semidefinite(op) and lx.is_symmetric(op) and op.transpose() is op
    assert op.in_structure().dtype == jnp.result_type(float)
    with pytest.raises(TypeError, match="scipy.sparse matrix"):
        SparseOperator.from_scipy(np.eye(3))
    with pytest.raises(TypeError, match="jax.experimental.sparse.BCOO"):
        SparseOperator(jnp.eye(3))
    with pytest.raises(ValueError, match="matching input and output"):
        SparseOperator.from_scipy(_random_matrix(3, 4), tags=lx.symmetric_tag)


def test_sparse_operator_under_strict_dtype_promotion(x64):
    matrix = scipy.sparse.diags([[-1.0] * 4, [2.5] * 5, [-1.0] * 4], [-1, 0, 1])
    for dtype in (jnp.float32, jnp.float64):
        with jax.numpy_dtype_promotion("strict"):
            operator = SparseOperator.from_scipy(matrix, (lx.symmetric_tag, lx.positive_semidefinite_tag), dtype=dtype)
            x = jnp.arange(5, dtype=dtype)
            dense = jnp.asarray(matrix.toarray(), dtype)
            np.testing.assert_allclose(operator.mv(x), dense @ x, rtol=1e-6)
            np.testing.assert_allclose(operator.transpose().mv(x), dense.T @ x, rtol=1e-6)
            np.testing.assert_array_equal(lx.diagonal(operator), jnp.diagonal(dense))
            assert all(d.dtype == dtype for d in lx.tridiagonal(operator))
            assert lx.is_positive_semidefinite(operator) and lx.conj(operator).mv(x).dtype == dtype


# -- the diagonal (DIA) layout --------------------------------------------------------------------


@pytest.mark.parametrize("boundary", ["dirichlet", "periodic"])
def test_stencil_matrices_get_the_diagonal_layout_and_the_same_mat_vec(x64, boundary):
    grid = Grid((6, 7), boundary=boundary)
    a = jnp.asarray(np.random.default_rng(8).uniform(0.5, 4.0, grid.shape))
    op = DiffusionOperator(grid, a, shift=0.3).to_sparse()
    assert op.layout == "dia"
    # Dirichlet 5-point: offsets 0, ±1, ±7; periodic adds the wrap-around diagonals.
    assert set(op.dia_offsets) >= {-7, -1, 0, 1, 7}
    x = np.random.default_rng(9).standard_normal(grid.size)
    dense = op.to_scipy().toarray()
    np.testing.assert_allclose(op.mv(jnp.asarray(x)), dense @ x, rtol=1e-13, atol=1e-12)
    bcoo = SparseOperator(op.matrix, op.tags, layout="bcoo")
    assert bcoo.layout == "bcoo" and bcoo.dia_data is None
    np.testing.assert_allclose(jax.jit(lambda o, v: o.mv(v))(op, jnp.asarray(x)), bcoo.mv(jnp.asarray(x)), rtol=1e-13)


def test_diagonal_layout_rectangular_duplicates_padding_and_transpose(x64):
    # Duplicates sum, an out-of-range padding entry drops, offsets beyond the square part work.
    data = jnp.array([1.0, 2.0, 3.0, 0.0, 5.0, 7.0])
    indices = jnp.array([[0, 1], [0, 1], [1, 1], [2, 4], [0, 0], [1, 3]])
    op = SparseOperator(jsparse.BCOO((data, indices), shape=(2, 4)), layout="dia")
    dense = np.array([[5.0, 3.0, 0.0, 0.0], [0.0, 3.0, 0.0, 7.0]])
    assert op.layout == "dia" and op.dia_offsets == (0, 1, 2)
    x = np.array([1.0, -2.0, 0.5, 3.0])
    np.testing.assert_allclose(op.mv(jnp.asarray(x)), dense @ x)
    np.testing.assert_allclose(op.transpose().mv(jnp.array([1.0, 2.0])), dense.T @ [1.0, 2.0])
    np.testing.assert_allclose(op.as_matrix(), dense)


def test_random_matrices_keep_bcoo_and_layout_errors():
    # A random 20%-dense matrix has ~all 79 diagonals: DIA would store ~4x its entries.
    op = SparseOperator.from_scipy(_random_matrix(40, 40))
    assert op.layout == "bcoo" and op.dia_data is None
    assert SparseOperator.from_scipy(_random_matrix(40, 40), layout="dia").layout == "dia"
    with pytest.raises(ValueError, match="`layout` must be one of"):
        SparseOperator.from_scipy(_random_matrix(4, 4), layout="csr")
    matrix = DiffusionOperator(Grid((4, 4), boundary="dirichlet")).to_sparse().matrix

    @jax.jit
    def traced(data, indices):
        auto = SparseOperator(jsparse.BCOO((data, indices), shape=matrix.shape))
        assert auto.layout == "bcoo"  # traced indices: the diagonals are unknown, BCOO it is
        return auto.mv(jnp.ones(16))

    np.testing.assert_allclose(traced(matrix.data, matrix.indices), matrix @ jnp.ones(16), rtol=1e-6)
    with pytest.raises(ValueError, match="needs a static pattern"):
        jax.jit(lambda i: SparseOperator(jsparse.BCOO((matrix.data, i), shape=matrix.shape), layout="dia").mv(
            jnp.ones(16)))(matrix.indices)


def test_the_static_pattern_survives_jit_and_keys_the_cache():
    # The BCOO indices are leaves, traced inside jit; the static copy is part of the treedef.
    stencil = DiffusionOperator(Grid((4, 3), boundary="dirichlet"), 2.0).to_sparse()
    other = SparseOperator.from_scipy(_random_matrix(12, 12, density=0.3, seed=3))
    traces = []

    @jax.jit
    def read(op):
        traces.append(op.pattern)
        assert isinstance(op.matrix.indices, jax.core.Tracer) and op.pattern is not None
        # Traced indices, static transpose (a symmetric operator is its own transpose).
        assert op.transpose().pattern == (op.pattern if lx.is_symmetric(op) else op.pattern.transpose())
        return op.mv(jnp.ones(12))

    for op in (stencil, stencil, other):
        np.testing.assert_allclose(read(op), op.to_scipy() @ np.ones(12), rtol=1e-6)
    # Same pattern (new values or not): one trace; a different pattern: a second one.
    scaled = SparseOperator(jsparse.BCOO((3 * stencil.matrix.data, stencil.matrix.indices), shape=(12, 12)), stencil.tags)
    np.testing.assert_allclose(read(scaled), 3 * (stencil.to_scipy() @ np.ones(12)), rtol=1e-6)
    assert traces == [stencil.pattern, other.pattern]
    np.testing.assert_array_equal(stencil.pattern.indices, np.asarray(stencil.matrix.indices))
    assert not stencil.pattern.indices.flags.writeable
    assert hash(stencil.pattern) == hash(SparseOperator(stencil.matrix).pattern) and stencil.pattern != other.pattern
    # transpose and conj keep the pattern (transposed); compared with the eager BCOO's.
    assert other.transpose().pattern == SparseOperator(other.matrix.T).pattern
    assert other.conj().pattern == other.pattern

    # Built inside jit from traced indices: no pattern (BCOO), unless one is handed over.
    @jax.jit
    def rebuilt(data, indices):
        bare = SparseOperator(jsparse.BCOO((data, indices), shape=(12, 12)))
        given = SparseOperator(jsparse.BCOO((data, indices), shape=(12, 12)), pattern=stencil.pattern)
        assert bare.pattern is None and given.pattern == stencil.pattern
        assert given.layout == "dia" and bare.layout == "bcoo"
        return given.mv(jnp.arange(12.0))

    np.testing.assert_allclose(
        rebuilt(stencil.matrix.data, stencil.matrix.indices), stencil.to_scipy() @ np.arange(12.0), rtol=1e-6
    )
    with pytest.raises(ValueError, match="`pattern` must equal `matrix.indices`"):
        SparseOperator(other.matrix, pattern=SparseOperator(other.matrix.T).pattern)
    with pytest.raises(ValueError, match=r"`pattern` must have the shape of `matrix.indices`, \(\d+, 2\)"):
        SparseOperator(other.matrix, pattern=stencil.pattern)
    with pytest.raises(TypeError, match="`pattern` must be a StaticPattern or None, got ndarray"):
        SparseOperator(other.matrix, pattern=np.asarray(other.matrix.indices))


@pytest.mark.slow  # default-suite budget
def test_diagonal_layout_gradient_reaches_the_bcoo_values(x64):
    # The DIA copy is a scatter of matrix.data: d/d data of w . A x is w_i x_j at entry (i, j).
    matrix = DiffusionOperator(Grid((5, 4), boundary="dirichlet"), 2.0).to_sparse().matrix
    rng = np.random.default_rng(10)
    w, x = jnp.asarray(rng.standard_normal(20)), jnp.asarray(rng.standard_normal(20))

    def loss(data):
        op = SparseOperator(jsparse.BCOO((data, matrix.indices), shape=matrix.shape))
        assert op.layout == "dia"
        return w @ op.mv(x)

    rows, cols = np.asarray(matrix.indices).T
    np.testing.assert_allclose(jax.grad(loss)(matrix.data), np.asarray(w)[rows] * np.asarray(x)[cols], rtol=1e-13)
    batched = jax.vmap(lambda d: SparseOperator(jsparse.BCOO((d, matrix.indices), shape=matrix.shape)).mv(x))
    np.testing.assert_allclose(batched(jnp.stack([matrix.data, 2 * matrix.data]))[1], 2 * (matrix @ x), rtol=1e-13)
