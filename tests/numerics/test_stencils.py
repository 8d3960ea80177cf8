"""Stencil operators: second-order convergence on manufactured solutions, structure, and input checks.

The discrete solutions here come from scipy's sparse direct solver applied to the operator's own
assembled matrix, so these tests check the stencils (and their assembly) independently of any
Krylov solver.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
import scipy.sparse.linalg as spla

from jaxpde import Grid
from jaxpde.numerics.stencils import DiffusionOperator, HelmholtzOperator, face_coefficients


def _unit(x, grid):
    """Coordinates mapped to [0, 1] per axis."""
    return (x - jnp.asarray(grid.origin, x.dtype)) / jnp.asarray(grid.lengths, x.dtype)


def _manufactured(grid):
    """A smooth exact solution u that satisfies the grid's boundary condition, and a smooth a > 0."""

    def u(x):
        xi = _unit(x, grid)
        if grid.boundary == "dirichlet":
            return jnp.prod(jnp.sin(jnp.pi * xi)) * (1 + 0.3 * xi[0])
        return jnp.prod(jnp.sin(2 * jnp.pi * xi + 0.4)) + 0.5 * jnp.cos(4 * jnp.pi * xi[0])

    def a(x):
        xi = _unit(x, grid)
        if grid.boundary == "dirichlet":
            # Zero normal derivative at the walls: see test_boundary_faces_converge_asymptotically
            # for a coefficient without it.
            return 1.0 + 0.5 * jnp.prod(jnp.cos(jnp.pi * xi)) + 0.2 * jnp.cos(2 * jnp.pi * xi[0])
        return 1.0 + 0.5 * jnp.sin(2 * jnp.pi * xi[0] + 1.0) * jnp.cos(2 * jnp.pi * xi[-1])

    return u, a


def _source(u, a, shift):
    """f = -div(a grad u) + shift * u, by automatic differentiation."""

    def f(x):
        flux = lambda y: a(y) * jax.grad(u)(y)
        return -jnp.trace(jax.jacfwd(flux)(x)) + shift * u(x)

    return f


def _max_error(shape_of, lengths, origin, boundary, variable, sizes, coefficient=None):
    """Max-norm errors of the discrete solutions, and the slope of log(error) vs log(h) fitted on
    the three finest grids (the coarsest grid only shows that the error falls)."""
    grids = [Grid(shape_of(n), lengths=lengths, boundary=boundary, origin=origin) for n in sizes]
    u, a = _manufactured(grids[0])
    if coefficient is not None:
        a = coefficient
    elif not variable:
        a = lambda x: jnp.ones((), x.dtype)
    # Periodic: a unit shift makes the operator definite, so a direct solve applies.
    shift = 1.0 if boundary == "periodic" else 0.0
    @jax.jit
    def sample_and_assemble():
        # One compilation for every grid size (compiling per size would dominate the test's time).
        out = []
        for grid in grids:
            points = grid.coordinates().reshape(grid.ndim, -1).T
            u_h, a_h, f_h = jax.vmap(lambda x: (u(x), a(x), _source(u, a, shift)(x)))(points)
            out.append((u_h, f_h, DiffusionOperator(grid, a_h.reshape(grid.shape), shift=shift).to_sparse()))
        return out

    errors = []
    for u_h, f_h, matrix in sample_and_assemble():
        discrete = spla.spsolve(matrix.to_scipy().tocsc(), np.asarray(f_h))
        errors.append(np.max(np.abs(discrete - np.asarray(u_h))))
    spacings = [g.cell_volume ** (1 / g.ndim) for g in grids]  # geometric-mean spacing
    return np.polyfit(np.log(spacings[-3:]), np.log(errors[-3:]), 1)[0], errors


CASES = [
    # (name, shape from n, lengths, origin, sizes)
    ("1d", lambda n: (n,), 2.0, -1.0, (16, 32, 64, 128)),
    ("2d", lambda n: (n, n + 3), (1.0, 1.5), (0.0, 0.5), (8, 16, 32, 64)),
    ("3d", lambda n: (n, n, n), 1.0, 0.0, (6, 10, 16)),
]


def _convergence_cases():
    for name, *case in CASES:
        for variable in (False, True):
            for boundary in ("dirichlet", "periodic"):
                # 3D with a variable coefficient costs ~3 s a case (compiling its source): slow.
                marks = [pytest.mark.slow] if (name == "3d" and variable) else []
                label = f"{name}-{'darcy' if variable else 'poisson'}-{boundary}"
                yield pytest.param(*case, boundary, variable, id=label, marks=marks)


@pytest.mark.parametrize("shape_of, lengths, origin, sizes, boundary, variable", list(_convergence_cases()))
def test_second_order_convergence(x64, shape_of, lengths, origin, sizes, boundary, variable):
    slope, errors = _max_error(shape_of, lengths, origin, boundary, variable, sizes)
    assert errors[-1] < errors[0]
    assert 1.85 < slope < 2.3, (slope, errors)


def test_boundary_faces_converge_asymptotically(x64):
    # A coefficient whose normal derivative does not vanish at the walls: the boundary face takes
    # the adjacent node's value, an O(h) error in an O(h)-thick layer, which is still O(h^2) in
    # the solution but converges slowly into that rate (local rates 1.6, 1.8, 1.9 on 16..128).
    coefficient = lambda x: 1.0 + 0.5 * jnp.sin(2 * jnp.pi * x[0] + 1.0) * jnp.cos(2 * jnp.pi * x[1])
    _, errors = _max_error(lambda n: (n, n), 1.0, 0.0, "dirichlet", True, (63, 127), coefficient)
    rate = np.log(errors[0] / errors[1]) / np.log(2)
    assert 1.85 < rate < 2.1, (rate, errors)


def test_harmonic_face_coefficients_and_boundary_faces(x64):
    a = jnp.array([1.0, 3.0, 3.0, 1.0])
    (dirichlet,) = face_coefficients(a, Grid(4, boundary="dirichlet"))
    # Boundary faces take the adjacent node; inner faces the harmonic mean 2ab/(a+b).
    np.testing.assert_allclose(dirichlet, [1.0, 1.5, 3.0, 1.5, 1.0])
    (periodic,) = face_coefficients(a, Grid(4, boundary="periodic"))
    np.testing.assert_allclose(periodic, [1.5, 3.0, 1.5, 1.0])
    # 1D Dirichlet matrix by hand: h = 1/5, weights a_{i+1/2} / h^2.
    op = DiffusionOperator(Grid(4, boundary="dirichlet"), a)
    w = 25 * np.array([1.0, 1.5, 3.0, 1.5, 1.0])
    expected = np.diag(w[:-1] + w[1:]) - np.diag(w[1:-1], 1) - np.diag(w[1:-1], -1)
    np.testing.assert_allclose(op.as_matrix(), expected, rtol=1e-14)


@pytest.mark.parametrize("boundary", ["dirichlet", "periodic"])
@pytest.mark.parametrize("shape", [(9,), (5, 6), (3, 4, 5)])
def test_structure_tags_and_diagonal(x64, shape, boundary):
    grid = Grid(shape, boundary=boundary)
    a = jnp.asarray(np.random.default_rng(0).uniform(0.5, 4.0, shape))
    op = DiffusionOperator(grid, a)
    matrix = np.asarray(op.as_matrix())
    assert matrix.shape == (grid.size, grid.size)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
    np.testing.assert_allclose(op.diagonal(), np.diag(matrix), rtol=1e-14)
    np.testing.assert_allclose(lx.diagonal(op), np.diag(matrix), rtol=1e-14)
    assert lx.is_symmetric(op) and lx.is_positive_semidefinite(op)
    assert not lx.is_negative_semidefinite(op) and not lx.is_diagonal(op)
    assert op.transpose() is op and op.in_structure() == op.out_structure()
    eigenvalues = np.linalg.eigvalsh(matrix)
    if boundary == "dirichlet":
        assert eigenvalues[0] > 0
        assert not op.is_singular
    else:
        # Constants are the null space; everything else is positive.
        assert op.is_singular
        np.testing.assert_allclose(op.mv(jnp.ones(shape)), 0.0, atol=1e-10)
        assert abs(eigenvalues[0]) < 1e-9 and eigenvalues[1] > 1e-3
        shifted = DiffusionOperator(grid, a, shift=0.25)
        assert np.linalg.eigvalsh(np.asarray(shifted.as_matrix()))[0] == pytest.approx(0.25)


def test_helmholtz_operator(x64):
    grid = Grid((6, 5), boundary="dirichlet")
    k = 7.0
    op = HelmholtzOperator(grid, k)
    laplacian = np.asarray(DiffusionOperator(grid).as_matrix())
    np.testing.assert_allclose(op.as_matrix(), laplacian - k**2 * np.eye(grid.size), rtol=1e-14)
    np.testing.assert_allclose(op.diagonal(), np.diag(laplacian) - k**2, rtol=1e-14)
    assert lx.is_symmetric(op) and not lx.is_positive_semidefinite(op)
    # k^2 = 49 lies inside the spectrum of -Δ_h: the operator is indefinite.
    eigenvalues = np.linalg.eigvalsh(np.asarray(op.as_matrix()))
    assert eigenvalues[0] < 0 < eigenvalues[-1]
    # A heterogeneous medium: k a field; derivative in k matches -2 k u.
    u = jnp.asarray(np.random.default_rng(1).standard_normal(grid.shape))
    dmv = jax.jacfwd(lambda kk: HelmholtzOperator(grid, kk).mv(u))(jnp.asarray(k))
    np.testing.assert_allclose(dmv, -2 * k * u, rtol=1e-12)
    field = jnp.full(grid.shape, k)
    np.testing.assert_allclose(HelmholtzOperator(grid, field).mv(u), op.mv(u), rtol=1e-12)


def test_vmap_and_jit_over_coefficients():
    grid = Grid((8, 8), boundary="dirichlet")
    coefficients = jnp.stack([jnp.full(grid.shape, 1.0), jnp.full(grid.shape, 2.0)])
    u = jnp.ones(grid.shape)
    out = jax.jit(jax.vmap(lambda a: DiffusionOperator(grid, a).mv(u)))(coefficients)
    np.testing.assert_allclose(out[1], 2 * out[0], rtol=1e-6)


def test_bad_inputs_raise():
    grid = Grid((4, 5), boundary="dirichlet")
    a = np.ones(grid.shape)
    with pytest.raises(ValueError, match=r"`coefficient` must be positive and finite"):
        DiffusionOperator(grid, np.where(np.arange(20).reshape(4, 5) == 7, -1.0, a))
    with pytest.raises(ValueError, match=r"`coefficient` must be positive"):
        DiffusionOperator(grid, 0.0)
    with pytest.raises(ValueError, match=r"`coefficient` must be positive"):
        DiffusionOperator(grid, np.where(a > 0, np.nan, a))
    with pytest.raises(ValueError, match=r"`coefficient` has shape \(5, 4\), expected a scalar or \(4, 5\)"):
        DiffusionOperator(grid, np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"`shift` must be a finite Python float >= 0"):
        DiffusionOperator(grid, a, shift=-1.0)
    with pytest.raises(ValueError, match=r"`wavenumber` has shape \(3,\)"):
        HelmholtzOperator(grid, jnp.ones(3))
    with pytest.raises(TypeError, match=r"`grid` must be a jaxpde.Grid"):
        DiffusionOperator((4, 5), a)
    # A boundary kind the stencils do not implement (Grid itself only builds the two it knows,
    # so forge one to stand for a future kind such as Neumann).
    neumann = Grid((4, 5), boundary="dirichlet")
    object.__setattr__(neumann, "boundary", "neumann")
    with pytest.raises(ValueError, match=r"unsupported boundary kind 'neumann'"):
        DiffusionOperator(neumann, a)
    with pytest.raises(ValueError, match=r"unsupported boundary kind 'neumann'"):
        HelmholtzOperator(neumann, 1.0)


def test_non_positive_coefficient_under_jit_raises_at_run_time():
    grid = Grid((4, 4), boundary="dirichlet")
    apply = eqx.filter_jit(lambda a: DiffusionOperator(grid, a).mv(jnp.ones(grid.shape)))
    assert np.all(np.isfinite(apply(jnp.ones(grid.shape))))
    with pytest.raises(eqx.EquinoxRuntimeError, match="must be positive and finite"):
        jax.block_until_ready(apply(-jnp.ones(grid.shape)))


@pytest.mark.parametrize("bad, kind", [(-1.0, "a negative value"), (0.0, "a zero value"), (np.nan, "a NaN or infinite")])
def test_bad_coefficient_under_plain_jax_jit_names_argument_and_kind(bad, kind):
    # Under plain `jax.jit` (not eqx.filter_jit) JAX wraps the check in a JaxRuntimeError
    # ("CpuCallback error"); its text must still say which argument, what was expected and what
    # was found.
    grid = Grid((4, 4), boundary="dirichlet")
    apply = jax.jit(lambda a: DiffusionOperator(grid, a).mv(jnp.ones(grid.shape)))
    with pytest.raises(Exception, match=rf"DiffusionOperator: `coefficient` must be positive and finite.*got {kind}"):
        jax.block_until_ready(apply(jnp.ones(grid.shape).at[1, 2].set(bad)))
    helmholtz = jax.jit(lambda k: HelmholtzOperator(grid, k).mv(jnp.ones(grid.shape)))
    with pytest.raises(Exception, match=r"HelmholtzOperator: `wavenumber` must be finite, got a NaN"):
        jax.block_until_ready(helmholtz(jnp.inf))


@pytest.mark.parametrize("boundary", ["dirichlet", "periodic"])
def test_operators_under_strict_dtype_promotion(x64, boundary):
    # Libraries that depend on jaxpde may run with strict promotion (lineax's tests do): every
    # method and structure query of the stencil operators must then stay in the operator's dtype.
    grid = Grid((5, 4), boundary=boundary)
    for dtype in (jnp.float32, jnp.float64):
        with jax.numpy_dtype_promotion("strict"):
            a = jnp.linspace(1.0, 2.0, grid.size, dtype=dtype).reshape(grid.shape)
            u = jnp.cos(jnp.arange(grid.size, dtype=dtype)).reshape(grid.shape)
            for operator in (
                DiffusionOperator(grid, a, shift=0.5),
                DiffusionOperator(grid, 2, dtype=dtype),
                HelmholtzOperator(grid, jnp.asarray(1.5, dtype)),
            ):
                matrix = operator.as_matrix()
                assert matrix.dtype == dtype
                np.testing.assert_allclose(operator.mv(u).ravel(), matrix @ u.ravel(), rtol=1e-5, atol=1e-4)
                np.testing.assert_array_equal(lx.diagonal(operator), jnp.diagonal(matrix))
                main, lower, upper = lx.tridiagonal(operator)
                assert main.dtype == lower.dtype == upper.dtype == dtype
                assert lx.is_symmetric(operator) and operator.to_sparse().mv(u.ravel()).dtype == dtype
