"""Chebyshev polynomial preconditioning: the dense M against the polynomial in closed form, the SPD
condition (sharp for odd degrees), estimated bounds, CG iterations, matrix-free and float32 use, bad input."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
import scipy.sparse.linalg as spla

from jaxpde import Grid
from jaxpde.numerics.krylov import ConjugateGradient
from jaxpde.numerics.preconditioning import Jacobi
from jaxpde.numerics.stencils import DiffusionOperator
from jaxpde.preconditioners._chebyshev import Chebyshev
from tests.pdes.test_elliptic import scipy_cg_iterations, thresholded_field


def chebyshev_polynomial(eigenvalues, lower, upper, degree):
    """``p(λ) = (1 - T_m(t(λ)) / T_m(σ)) / λ``, ``m = degree + 1``, in closed form (numpy's Chebyshev series)."""
    t_m = np.polynomial.chebyshev.Chebyshev.basis(degree + 1)
    t = (upper + lower - 2 * eigenvalues) / (upper - lower)
    sigma = (upper + lower) / (upper - lower)
    return (1 - t_m(t) / t_m(sigma)) / eigenvalues


def _operators():
    # One grid for both, so that one compilation serves both.
    grid = Grid((8, 8), boundary="dirichlet")
    poisson = DiffusionOperator(grid, jnp.ones(grid.shape, jnp.float64))
    darcy = DiffusionOperator(grid, jnp.asarray(thresholded_field(8, seed=3)))
    return {"poisson": poisson, "darcy-12/3": darcy}


# The bounds are data (traced here), the degree is static: one compilation per degree.
_dense = jax.jit(lambda preconditioner, operator: preconditioner(operator).as_matrix())


def test_chebyshev_is_the_polynomial_and_spd_when_the_bounds_enclose_the_spectrum(x64):
    for name, operator in _operators().items():
        matrix = np.asarray(operator.as_matrix())
        eigenvalues, vectors = np.linalg.eigh(matrix)
        lower, upper = 0.5 * eigenvalues[0], 1.01 * eigenvalues[-1]
        m = np.asarray(_dense(Chebyshev(3, eigenvalue_bounds=(lower, upper)), operator))
        expected = vectors @ np.diag(chebyshev_polynomial(eigenvalues, lower, upper, 3)) @ vectors.T
        np.testing.assert_allclose(m, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max(), err_msg=name)
        assert np.abs(m - m.T).max() <= 1e-12 * np.abs(m).max() and np.linalg.eigvalsh(m).min() > 0, name


def test_chebyshev_spd_condition_is_the_spectrum_below_a_plus_b(x64):
    operator = _operators()["poisson"]
    eigenvalues = np.linalg.eigvalsh(np.asarray(operator.as_matrix()))
    lam_min, lam_max = eigenvalues[0], eigenvalues[-1]
    # The lower bound far above λ_min and the upper one below λ_max: still SPD while λ_max < a + b.
    a, b = 0.4 * lam_max, 0.7 * lam_max
    assert lam_min < a and b < lam_max < a + b
    assert np.linalg.eigvalsh(np.asarray(_dense(Chebyshev(3, eigenvalue_bounds=(a, b)), operator))).min() > 0
    # Past a + b, an odd degree (even residual polynomial) makes p negative there: M is indefinite.
    a, b = 0.1 * lam_max, 0.8 * lam_max
    assert lam_max > a + b
    assert np.linalg.eigvalsh(np.asarray(_dense(Chebyshev(3, eigenvalue_bounds=(a, b)), operator))).min() < 0


def test_estimated_bounds_enclose_the_spectrum_and_give_an_spd_preconditioner(x64):
    for name, operator in _operators().items():
        matrix = np.asarray(operator.as_matrix())
        eigenvalues = np.linalg.eigvalsh(matrix)
        # The built operator carries the bounds: a = θ_min, b = 1.1 θ_max of `estimate_spectrum`.
        m, lower, upper = jax.jit(lambda op: (lambda p: (p.as_matrix(), p.lower, p.upper))(Chebyshev(3)(op)))(operator)
        theta_min, theta_max, m = float(lower), float(upper) / 1.1, np.asarray(m)
        assert eigenvalues[0] <= theta_min * (1 + 1e-10) and theta_max <= eigenvalues[-1] * (1 + 1e-10), name
        assert theta_max >= 0.97 * eigenvalues[-1], name  # so 1.1 θ_max > λ_max
        assert np.abs(m - m.T).max() <= 1e-10 * np.abs(m).max() and np.linalg.eigvalsh(m).min() > 0, name


@pytest.mark.slow
def test_jacobi_scaled_chebyshev_is_spd(x64):
    for name, operator in _operators().items():
        m = np.asarray(_dense(Chebyshev(4, inner=Jacobi()), operator))
        assert np.abs(m - m.T).max() <= 1e-10 * np.abs(m).max() and np.linalg.eigvalsh(m).min() > 0, name


def test_chebyshev_cuts_cg_iterations_on_poisson(x64):
    grid = Grid((32, 32), boundary="dirichlet")
    operator = DiffusionOperator(grid, 1.0, dtype=jnp.float64)
    matrix = operator.to_sparse().to_scipy()
    b = np.random.default_rng(0).standard_normal(grid.size)
    m = jax.jit(lambda: Chebyshev(3)(operator))()
    apply = jax.jit(lambda m, v: m.mv(v.reshape(grid.shape)).ravel())
    ours = spla.LinearOperator(matrix.shape, matvec=lambda v: np.asarray(apply(m, jnp.asarray(v))), dtype=np.float64)
    none, chebyshev = scipy_cg_iterations(matrix, b), scipy_cg_iterations(matrix, b, ours)
    assert chebyshev <= 0.4 * none  # measured: none 77, Chebyshev(3) 26 (each with 3 extra mat-vecs)


@pytest.mark.slow
def test_chebyshev_is_matrix_free_and_converges_in_float32():
    # A function operator (no entries, no diagonal) of a 12/3 Darcy problem at 32², float32.
    grid = Grid((32, 32), boundary="dirichlet")
    a = jnp.asarray(thresholded_field(32, seed=1), jnp.float32)

    def solve(a):
        stencil = DiffusionOperator(grid, a)
        operator = lx.FunctionLinearOperator(stencil.mv, stencil.in_structure(), lx.positive_semidefinite_tag)
        solver = ConjugateGradient(rtol=1e-5, preconditioner=Chebyshev(6)(operator))
        solution = lx.linear_solve(operator, jnp.ones(grid.shape, jnp.float32), solver, throw=False)
        return solution.value, solution.result == lx.RESULTS.successful, solution.stats["num_steps"]

    u, ok, steps = jax.jit(solve)(a)
    matrix = DiffusionOperator(grid, a).to_sparse().to_scipy().astype(np.float64)
    exact = spla.spsolve(matrix.tocsc(), np.ones(grid.size))
    assert bool(ok) and np.linalg.norm(np.asarray(u, np.float64).ravel() - exact) <= 2e-4 * np.linalg.norm(exact)
    assert int(steps) < 0.3 * scipy_cg_iterations(matrix, np.ones(grid.size))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(degree=0), r"`degree` must be an integer >= 1, got 0"),
        (dict(degree=2.5), r"`degree` must be an integer >= 1, got 2.5"),
        (dict(degree=True), r"`degree` must be an integer >= 1, got True"),
        (dict(degree=3, lanczos_steps=0), r"`lanczos_steps` must be an integer >= 1"),
        (dict(degree=3, eigenvalue_bounds=(2.0, 1.0)), r"`eigenvalue_bounds` must be None or a pair \(a, b\)"),
        (dict(degree=3, eigenvalue_bounds=(0.0, 1.0)), r"`eigenvalue_bounds` must be None or a pair"),
        (dict(degree=3, eigenvalue_bounds=(1.0,)), r"`eigenvalue_bounds` must be None or a pair"),
        (dict(degree=3, eigenvalue_bounds=(1.0, float("inf"))), r"`eigenvalue_bounds` must be None or a pair"),
    ],
)
def test_chebyshev_bad_input_is_named(kwargs, match):
    with pytest.raises(ValueError, match=r"Chebyshev: " + match):
        Chebyshev(**kwargs)


def test_chebyshev_inner_must_be_a_linear_spd_preconditioner():
    with pytest.raises(TypeError, match=r"Chebyshev: `inner` must be None or an AbstractPreconditioner, got str"):
        Chebyshev(3, inner="jacobi")
