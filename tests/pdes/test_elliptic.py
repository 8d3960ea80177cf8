"""Elliptic PDEs and their CG solves: convergence, scipy parity, float32 robustness, gradients, residuals."""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg as spla
from scipy.fft import dstn, idstn

from jaxpde import Grid
from jaxpde.pdes import Darcy, Helmholtz, Poisson
from jaxpde.numerics.krylov import ConjugateGradient, MixedPrecisionRefinement
from jaxpde.numerics.preconditioning import Jacobi
from jaxpde.pdes.elliptic import default_solver, evaluate_on_grid


def thresholded_field(n, seed=0, dtype=np.float64):
    """FNO-style coefficient: a Dirichlet-sine GRF with spectrum (|k|^2 + 9)^-2, thresholded to {3, 12}."""
    z = np.random.default_rng(seed).standard_normal((n, n))
    k = np.pi * np.arange(1, n + 1)
    g = idstn(dstn(z, type=1, norm="ortho") / (k[:, None] ** 2 + k[None, :] ** 2 + 9.0), type=1, norm="ortho")
    return np.where(g >= 0, 12.0, 3.0).astype(dtype)


def true_relative_residual(operator_float64, u, b):
    matrix = operator_float64.to_sparse().to_scipy()
    b = np.asarray(b, np.float64).ravel()
    return np.linalg.norm(b - matrix @ np.asarray(u, np.float64).ravel()) / np.linalg.norm(b)


def scipy_diagonal_inverse(matrix):
    return scipy.sparse.diags(1 / matrix.diagonal())


def scipy_cg_iterations(matrix, b, preconditioner=None):
    count = [0]
    _, info = spla.cg(matrix, b, rtol=1e-6, M=preconditioner, maxiter=10 * b.size, callback=lambda _: count.__setitem__(0, count[0] + 1))
    assert info == 0
    return count[0]


# -- discretisation ---------------------------------------------------------------------------


def _dirichlet_u(x):
    return jnp.prod(jnp.sin(jnp.pi * x)) * (1 + 0.5 * x[0])


def _periodic_u(x):
    return jnp.sin(2 * jnp.pi * x[0]) * jnp.cos(2 * jnp.pi * x[1] + 0.3) + 0.2 * jnp.cos(4 * jnp.pi * x[1])


def _smooth_a(x):
    return 1.0 + 0.5 * jnp.prod(jnp.cos(jnp.pi * x)) + 0.3 * jnp.sin(2 * jnp.pi * x[0]) ** 2


# Second-order convergence of the discretisations is tested in tests/numerics/test_stencils.py on
# the assembled matrices; here the CG solves must reproduce the direct solution of the same matrix
# and be second-order close to the manufactured solution.
@pytest.mark.parametrize("case", ["darcy-dirichlet", "poisson-periodic"])
def test_solve_matches_direct_solve_and_manufactured_solution(x64, case):
    pde_name, boundary = case.split("-")
    grid = Grid((24, 20), boundary=boundary, lengths=(1.0, 1.0))
    if pde_name == "darcy":
        pde = Darcy.from_solution(_dirichlet_u, coefficient=_smooth_a)
        a = evaluate_on_grid(_smooth_a, grid)
        discrete = pde.solve(grid, a, rtol=1e-12)
        operator = pde.operator(grid, a)
    else:
        pde = Poisson.from_solution(_periodic_u)
        discrete = pde.solve(grid, rtol=1e-12)
        operator = pde.operator(grid)
    f = np.asarray(pde.source_on_grid(grid)).ravel()
    matrix = operator.to_sparse().to_scipy()
    if boundary == "periodic":
        # Singular: the mean-zero solution of the compatible system.
        f = f - f.mean()
        assert abs(float(jnp.mean(discrete))) < 1e-14
        direct = np.linalg.solve(matrix.toarray() + 1.0 / grid.size, f)
    else:
        direct = spla.spsolve(matrix.tocsc(), f)
    np.testing.assert_allclose(np.asarray(discrete).ravel(), direct, rtol=1e-9, atol=1e-12 * np.abs(direct).max())
    exact = evaluate_on_grid(pde.exact_solution, grid)
    exact = exact - jnp.mean(exact) if boundary == "periodic" else exact
    # Second-order closeness: relative max error / h^2 measures 1.07 (Darcy, Dirichlet) and 4.6
    # (periodic Poisson, whose 4π mode has the truncation constant (4π)^2 / 12 ≈ 13).
    h = max(grid.spacing)
    relative = float(jnp.max(jnp.abs(discrete - exact))) / float(jnp.max(jnp.abs(exact)))
    assert relative < (1.5 if boundary == "dirichlet" else 6.0) * h**2, relative / h**2


# -- CG: parity with scipy, float32 ------------------------------------------------------------


def test_cg_iterations_match_scipy_on_the_same_matrix(x64):
    grid = Grid((32, 32), boundary="dirichlet")
    operator = Darcy().operator(grid, jnp.asarray(thresholded_field(32)))
    matrix = operator.to_sparse().to_scipy()
    b = np.ones(grid.size)
    for preconditioner in (None, Jacobi()):
        solver = ConjugateGradient(rtol=1e-6, preconditioner=preconditioner)
        solution = lx.linear_solve(operator, jnp.ones(grid.shape), solver)
        ours = int(solution.stats["num_steps"])
        M = None if preconditioner is None else scipy_diagonal_inverse(matrix)
        theirs = scipy_cg_iterations(matrix, b, M)
        assert abs(ours - theirs) <= 1, (preconditioner, ours, theirs)
        assert int(solution.stats["num_replacements"]) == 0
        assert true_relative_residual(operator, solution.value, b) <= 1e-6


@pytest.mark.parametrize("preconditioner", [None, Jacobi()], ids=["none", "jacobi"])
def test_float32_darcy_reaches_requested_tolerance(x64, preconditioner):
    # float32 arithmetic throughout: operator, right-hand side, iterates. The true residual is
    # measured in float64 on the float64 matrix of the same coefficient field.
    n = 64
    grid = Grid((n, n), boundary="dirichlet")
    a = thresholded_field(n)
    operator32 = Darcy().operator(grid, jnp.asarray(a, jnp.float32))
    operator64 = Darcy().operator(grid, jnp.asarray(a))
    b = jnp.ones(grid.shape, jnp.float32)
    solver = ConjugateGradient(rtol=1e-4, preconditioner=preconditioner)
    solution = lx.linear_solve(operator32, b, solver)
    assert solution.value.dtype == jnp.float32
    assert solution.result == lx.RESULTS.successful
    assert true_relative_residual(operator64, solution.value, b) <= 1e-4
    # No breakdown: it takes about as many steps as scipy in float64 to the same tolerance.
    matrix = operator64.to_sparse().to_scipy()
    count = [0]
    M = None if preconditioner is None else scipy_diagonal_inverse(matrix)
    spla.cg(matrix, np.ones(grid.size), rtol=1e-4, M=M, callback=lambda _: count.__setitem__(0, count[0] + 1))
    assert abs(int(solution.stats["num_steps"]) - count[0]) <= 0.05 * count[0] + 2


def test_float32_below_attainable_tolerance_says_so_and_working_precision_succeeds(x64):
    n = 64
    grid = Grid((n, n), boundary="dirichlet")
    a = thresholded_field(n, seed=1)
    a32 = jnp.asarray(a, jnp.float32)
    operator32 = Darcy().operator(grid, a32)
    b = jnp.ones(grid.shape, jnp.float32)
    # rtol = 1e-6 is below what a float32 vector can represent here (the exact solution rounded to
    # float32 already has a relative residual of ~2e-5): stagnation, quickly, not NaN or 10 n steps.
    solution = lx.linear_solve(operator32, b, ConjugateGradient(rtol=1e-6, preconditioner=Jacobi()), throw=False)
    assert solution.result == lx.RESULTS.stagnation
    assert int(solution.stats["num_steps"]) < 1000
    assert np.all(np.isfinite(solution.value))
    with pytest.raises(eqx.EquinoxRuntimeError, match="cannot represent a more accurate solution"):
        Darcy().solve(grid, a32, rtol=1e-6)
    # The float32 default (rtol = 1e-5 or the float32 floor, whichever comes first) succeeds here,
    # where 1e-5 itself is out of reach, and is accurate to ~1e-6 in the solution.
    u32 = Darcy().solve(grid, a32)
    reference = spla.spsolve(Darcy().operator(grid, jnp.asarray(a)).to_sparse().to_scipy().tocsc(), np.ones(grid.size))
    error = np.linalg.norm(np.asarray(u32, np.float64).ravel() - reference) / np.linalg.norm(reference)
    assert error < 2e-6


def test_float32_default_tolerance_stops_early_and_its_gradient_is_accurate(x64):
    # Regression (issue 13, item 10): the float32 default was "to working precision", 530 Jacobi-CG
    # iterations on this 32² problem (measured) where 91 reach rtol = 1e-5; the reverse pass paid
    # it again.
    grid = Grid((32, 32), boundary="dirichlet")
    a = thresholded_field(32)
    a32 = jnp.asarray(a, jnp.float32)
    b = jnp.ones(grid.shape, jnp.float32)
    solver = default_solver(jnp.float32, preconditioner=Jacobi())
    solution = lx.linear_solve(Darcy().operator(grid, a32), b, solver)
    assert solution.result == lx.RESULTS.successful
    assert int(solution.stats["num_steps"]) < 150
    assert true_relative_residual(Darcy().operator(grid, jnp.asarray(a)), solution.value, b) <= 1.2e-5
    # The gradient through the default solve (and its adjoint) matches central differences of the
    # float64 direct solve: a float32 gradient as good as float32 allows.
    loss = lambda a: jnp.sum(Darcy().solve(grid, a) ** 2)  # noqa: E731
    g32 = jax.jit(jax.grad(loss))(a32)
    direction = np.random.default_rng(0).standard_normal(grid.shape)

    def direct_loss(a):
        u = spla.spsolve(Darcy().operator(grid, jnp.asarray(a)).to_sparse().to_scipy().tocsc(), np.ones(grid.size))
        return np.sum(u**2)

    eps = 1e-4
    fd = (direct_loss(a + eps * direction) - direct_loss(a - eps * direction)) / (2 * eps)
    assert float(jnp.sum(g32 * direction)) == pytest.approx(fd, rel=1e-4)
    # float64 keeps the strict 1e-8; an explicit rtol stays strict in float32.
    assert default_solver(jnp.float64).rtol == 1e-8 and not default_solver(jnp.float64).accept_stagnation
    assert not default_solver(jnp.float32, rtol=1e-5).accept_stagnation
    assert solver.accept_stagnation


@pytest.mark.parametrize(
    "preconditioner", [pytest.param(None, marks=pytest.mark.slow, id="none"), pytest.param(Jacobi(), id="jacobi")]
)
def test_mixed_precision_refinement_reaches_1e_minus_6_with_float32_cg(x64, preconditioner):
    n = 64
    grid = Grid((n, n), boundary="dirichlet")
    operator64 = Darcy().operator(grid, jnp.asarray(thresholded_field(n, seed=2)))
    b = jnp.ones(grid.shape)
    inner = ConjugateGradient(rtol=1e-2, preconditioner=preconditioner)
    solution = lx.linear_solve(operator64, b, MixedPrecisionRefinement(rtol=1e-6, inner=inner))
    assert solution.result == lx.RESULTS.successful
    assert true_relative_residual(operator64, solution.value, b) <= 1e-6
    assert 2 <= int(solution.stats["num_refinements"]) <= 5
    if preconditioner is not None:  # the same through the PDE interface
        a = jnp.asarray(thresholded_field(n, seed=2))
        u = Darcy().solve(grid, a, solver=MixedPrecisionRefinement(rtol=1e-6, inner=inner))
        np.testing.assert_allclose(u, solution.value, rtol=1e-12)


@pytest.mark.slow  # default-suite budget
def test_lineax_cg_and_preconditioner_options_are_honoured(x64):
    grid = Grid((16, 16), boundary="dirichlet")
    operator = Darcy().operator(grid, jnp.asarray(thresholded_field(16)))
    b = jnp.ones(grid.shape)
    jacobi = lx.DiagonalLinearOperator(1 / operator.diagonal().reshape(grid.shape))
    jacobi = lx.TaggedLinearOperator(jacobi, lx.positive_semidefinite_tag)
    by_name = lx.linear_solve(operator, b, ConjugateGradient(rtol=1e-8, preconditioner=Jacobi()))
    by_field = lx.linear_solve(operator, b, ConjugateGradient(rtol=1e-8, preconditioner=jacobi))
    by_option = lx.linear_solve(operator, b, ConjugateGradient(rtol=1e-8), options={"preconditioner": jacobi})
    assert int(by_name.stats["num_steps"]) == int(by_field.stats["num_steps"]) == int(by_option.stats["num_steps"])
    np.testing.assert_allclose(by_field.value, by_name.value, rtol=1e-12)
    np.testing.assert_allclose(by_option.value, by_name.value, rtol=1e-12)
    # Negative definite operators are handled as lineax.CG does.
    negative = lx.linear_solve(-operator, -b, ConjugateGradient(rtol=1e-8))
    np.testing.assert_allclose(negative.value, by_name.value, rtol=1e-6)
    with pytest.raises(ValueError, match="positive or negative semidefinite"):
        lx.linear_solve(Helmholtz(3.0).operator(grid), b, ConjugateGradient(rtol=1e-8))


# -- gradients ---------------------------------------------------------------------------------


@pytest.mark.parametrize("boundary", ["dirichlet", "periodic"])
def test_gradients_match_finite_differences(x64, boundary):
    grid = Grid((5, 6), boundary=boundary)
    rng = np.random.default_rng(3)
    a = jnp.asarray(rng.uniform(1.0, 4.0, grid.shape))
    f = jnp.asarray(rng.standard_normal(grid.shape))
    w = jnp.asarray(rng.standard_normal(grid.shape))
    pde = Darcy()

    def loss_and_solution(a, f):
        # rtol = 0: to working precision, so finite differences see no solver error (at the
        # default float64 rtol = 1e-8 they would disagree with autodiff by up to tens of percent).
        u = pde.solve(grid, a, f, rtol=0.0)
        return jnp.sum(w * u) + 0.5 * jnp.sum(u**2), u

    (grad_a, grad_f), u = jax.jit(jax.grad(loss_and_solution, argnums=(0, 1), has_aux=True))(a, f)
    loss = jax.jit(lambda a, f: loss_and_solution(a, f)[0])
    # The solve itself: A u = f - mean(f) (periodic: the compatible part, mean-zero u).
    b = f - jnp.mean(f) if boundary == "periodic" else f
    assert true_relative_residual(pde.operator(grid, a), u, b) < 1e-13
    if boundary == "periodic":
        assert abs(float(jnp.mean(u))) < 1e-15
    eps = 1e-6
    for name, grad, base in (("a", grad_a, a), ("f", grad_f, f)):
        direction = jnp.asarray(rng.standard_normal(grid.shape))
        bumped = lambda s: loss(base + s * eps * direction, f) if name == "a" else loss(a, base + s * eps * direction)
        fd = (bumped(1) - bumped(-1)) / (2 * eps)
        assert float(jnp.sum(grad * direction)) == pytest.approx(float(fd), rel=1e-5), name
        for index in [(0, 0), (2, 3), (4, 5)]:
            e = jnp.zeros(grid.shape).at[index].set(1.0)
            bumped = lambda s: loss(base + s * eps * e, f) if name == "a" else loss(a, base + s * eps * e)
            fd = (bumped(1) - bumped(-1)) / (2 * eps)
            assert float(grad[index]) == pytest.approx(float(fd), rel=1e-5, abs=1e-9), (name, index)


def test_vmap_over_coefficients_and_jit(x64):
    grid = Grid((12, 12), boundary="dirichlet")
    coefficients = jnp.stack([jnp.asarray(thresholded_field(12, seed=s)) for s in range(3)])
    batched = eqx.filter_jit(jax.vmap(lambda a: Darcy().solve(grid, a, rtol=1e-10)))(coefficients)
    for a, u in zip(coefficients, batched):
        reference = spla.spsolve(Darcy().operator(grid, a).to_sparse().to_scipy().tocsc(), np.ones(grid.size))
        np.testing.assert_allclose(np.asarray(u).ravel(), reference, rtol=1e-8)


# -- PINN residuals ----------------------------------------------------------------------------


def test_pointwise_residuals(x64):
    x = jnp.array([0.3, 0.7])
    u = lambda y: y[0] ** 2 * y[1]  # Δu = 2 y1
    a = lambda y: 1.0 + y[0]  # -∇·(a∇u) = -∂x((1 + x) 2xy) = -(2y + 4xy)

    @jax.jit
    def residuals(x):
        return (
            # Exact solutions have zero residual.
            Poisson.from_solution(_dirichlet_u).residual(_dirichlet_u, x),
            Darcy.from_solution(_dirichlet_u, coefficient=_smooth_a).residual(_dirichlet_u, x),
            Helmholtz.from_solution(_dirichlet_u, wavenumber=4.0).residual(_dirichlet_u, x),
            # Other functions, against hand-computed values.
            Poisson(source=1.0).residual(u, x),
            Darcy(source=lambda y: y[1]).residual(u, x, args=a),
            Helmholtz(3.0, source=0.0).residual(u, x),
        )

    exact_p, exact_d, exact_h, poisson, darcy, helmholtz = (float(r) for r in residuals(x))
    assert max(abs(exact_p), abs(exact_d), abs(exact_h)) < 1e-12
    assert poisson == pytest.approx(-2 * 0.7 - 1.0)
    assert darcy == pytest.approx(-(2 * 0.7 + 4 * 0.3 * 0.7) - 0.7)
    assert helmholtz == pytest.approx(-2 * 0.7 - 9 * 0.09 * 0.7)
    batched = jax.vmap(lambda p: Darcy().residual(u, p, args=a))(jnp.array([[0.1, 0.2], [0.3, 0.7]]))
    np.testing.assert_allclose(batched, [-(0.4 + 0.08) - 1, -(1.4 + 0.84) - 1], rtol=1e-12)


# -- Helmholtz ---------------------------------------------------------------------------------


def test_helmholtz_indefinite_solve(x64):
    # k^2 = 36 > 2π^2 ≈ 19.7, the smallest eigenvalue of -Δ on the unit square: indefinite.
    pde = Helmholtz.from_solution(_dirichlet_u, wavenumber=6.0)
    grid = Grid((24, 24), boundary="dirichlet")
    u = pde.solve(grid)
    dense = np.linalg.solve(np.asarray(pde.operator(grid).as_matrix()), np.asarray(pde.source_on_grid(grid)).ravel())
    np.testing.assert_allclose(np.asarray(u).ravel(), dense, rtol=1e-6, atol=1e-9)
    # Second order: error / h^2 = 1.454 at both h = 1/25 and h = 1/49 (measured).
    error = float(jnp.max(jnp.abs(u - evaluate_on_grid(_dirichlet_u, grid))))
    assert error < 1.6 * max(grid.spacing) ** 2, error


# -- bad input ---------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    grid = Grid((6, 6), boundary="dirichlet")
    a = np.ones(grid.shape, np.float32)
    with pytest.raises(ValueError, match="`coefficient` must be positive and finite"):
        Darcy().solve(grid, a - 2.0)
    with pytest.raises(ValueError, match=r"`coefficient` has shape \(5, 6\)"):
        Darcy().solve(grid, np.ones((5, 6), np.float32))
    with pytest.raises(ValueError, match=r"`source` has shape \(6, 5\)"):
        Darcy().solve(grid, a, np.ones((6, 5), np.float32))
    with pytest.raises(ValueError, match=r"`source` has shape \(3,\)"):
        Poisson(source=jnp.ones(3)).solve(grid)
    with pytest.raises(ValueError, match="pass either `solver` or"):
        Darcy().solve(grid, a, rtol=1e-3, solver=ConjugateGradient(rtol=1e-3))
    with pytest.raises(ValueError, match=r"`x` must be one point of shape \(ndim,\)"):
        Poisson().residual(_dirichlet_u, jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="pointwise residual needs a scalar or a callable `source`"):
        Poisson(source=jnp.ones(grid.shape)).residual(_dirichlet_u, jnp.ones(2))
    with pytest.raises(ValueError, match="`u_fn` must return a scalar"):
        Poisson().residual(lambda x: x, jnp.ones(2))
    with pytest.raises(ValueError, match="no exact solution is known"):
        Darcy().exact_solution(jnp.ones(2))
    with pytest.raises(TypeError, match="`preconditioner` must be None, an AbstractPreconditioner .* got str"):
        ConjugateGradient(rtol=1e-6, preconditioner="ilu")
    with pytest.raises(TypeError, match=r"the 'jacobi' string is now Jacobi\(\)"):
        Darcy().solve(grid, a, preconditioner="jacobi")
    # The default Jacobi() passed explicitly configures nothing; any other preconditioner does.
    Darcy().solve(grid, a, preconditioner=Jacobi(), solver=ConjugateGradient(rtol=1e-3))
    with pytest.raises(ValueError, match="pass either `solver` or"):
        Darcy().solve(grid, a, preconditioner=None, solver=ConjugateGradient(rtol=1e-3))
    with pytest.raises(ValueError, match="pass either `solver` or"):
        Poisson().solve(grid, preconditioner=Jacobi(), solver=ConjugateGradient(rtol=1e-3))
    neumann = Grid((6, 6), boundary="dirichlet")
    object.__setattr__(neumann, "boundary", "neumann")
    with pytest.raises(ValueError, match="unsupported boundary kind 'neumann'"):
        Darcy().solve(neumann, a)
    # Under jit, a non-positive coefficient is a runtime error, not a silent NaN.
    solve = eqx.filter_jit(lambda a: Darcy().solve(grid, a))
    with pytest.raises(eqx.EquinoxRuntimeError, match="must be positive and finite"):
        solve(jnp.asarray(a) - 2.0)
