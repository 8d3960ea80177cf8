"""`Preconditioned`: inside optimistix Newton and a diffrax implicit solve, and its derivatives.

Ground truth: the same Newton solve with a dense LU; scipy's Radau IIA at tight tolerances for the
Kvaerno5 integration; central finite differences of the solution (float64); the dense diagonal of
diffrax's Jacobian.
"""

from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
import pytest
import scipy.integrate

from jaxpde import Grid
from jaxpde.numerics.preconditioning import AbstractPreconditioner, Jacobi, diagonal
from jaxpde.numerics.stencils import DiffusionOperator
from jaxpde.preconditioners._solver import Preconditioned


def _bump(n):
    s = jnp.linspace(0.0, 1.0, n + 2)[1:-1]
    x, y = jnp.meshgrid(s, s, indexing="ij")
    return 50.0 * jnp.sin(jnp.pi * x) * jnp.sin(2 * jnp.pi * y) + 20.0


_SLOW = pytest.mark.slow


@pytest.mark.parametrize("method", ["cg", pytest.param("gmres", marks=_SLOW), pytest.param("bicgstab", marks=_SLOW)])
def test_newton_on_a_nonlinear_elliptic_problem(x64, method):
    # -Δu + u³ = f on (0, 1)², u = 0 on the boundary: the Newton Jacobian -Δ + 3 diag(u²) is
    # SPD, but optimistix hands it over untagged (a FunctionLinearOperator of jax.linearize).
    n = 15
    laplacian = DiffusionOperator(Grid((n, n), boundary="dirichlet"), 1.0, dtype=jnp.float64)
    f = _bump(n)

    def residual(u, args):
        return laplacian.mv(u) + u**3 - f

    @eqx.filter_jit
    def solve(linear_solver):
        newton = optx.Newton(rtol=1e-10, atol=1e-10, linear_solver=linear_solver)
        return optx.root_find(residual, newton, jnp.zeros((n, n)), max_steps=30)

    reference = solve(lx.AutoLinearSolver(well_posed=True))
    with pytest.raises(ValueError, match="must be tagged positive or negative semidefinite"):
        eqx.filter_eval_shape(solve, Preconditioned(Jacobi(stencil_reach=1), rtol=1e-12))  # untagged, no structure
    # lineax's GMRES and BiCGStab test |r_i| ≤ atol + rtol |b_i| elementwise: with atol = 0 they
    # report breakdown / NaN once Newton's residual is at round-off, so they get an atol here.
    tolerances = {"cg": {"rtol": 1e-12}, "gmres": {"rtol": 1e-10, "atol": 1e-12}, "bicgstab": {"rtol": 1e-10, "atol": 1e-12}}
    kwargs = tolerances[method]
    solution = solve(Preconditioned(Jacobi(stencil_reach=1), method=method, structure="spd", **kwargs))
    assert solution.result == optx.RESULTS.successful
    np.testing.assert_allclose(solution.value, reference.value, rtol=1e-9, atol=1e-11)
    assert float(jnp.max(jnp.abs(residual(reference.value, None)))) < 1e-8


class _CheckedJacobi(AbstractPreconditioner):
    """Jacobi with stencil reach 1, recording how far its probed diagonal is from the dense one."""

    errors: ClassVar[list] = []
    is_positive_definite: ClassVar[bool] = True
    is_linear: ClassVar[bool] = True

    def build(self, operator):
        probed = diagonal(operator, stencil_reach=1)
        dense = jnp.diagonal(operator.as_matrix()).reshape(probed.shape)
        error = jnp.max(jnp.abs(probed - dense)) / jnp.max(jnp.abs(dense))
        jax.debug.callback(lambda e: _CheckedJacobi.errors.append(float(e)), error)
        return lx.DiagonalLinearOperator(1 / probed)


def _reaction_diffusion(n):
    """u_t = DΔu - u³ + s on (0, 1)², u = 0 on the boundary: stiff (D λ_max ≈ 8 D / h² ≈ 2·10³)."""
    laplacian = DiffusionOperator(Grid((n, n), boundary="dirichlet"), 1.0, dtype=jnp.float64)
    s = _bump(n)
    return lambda t, u, args: -laplacian.mv(u) - u**3 + s


def _integrate(rhs, n, root_finder):
    solver = diffrax.Kvaerno5(root_finder=root_finder)
    return diffrax.diffeqsolve(
        diffrax.ODETerm(rhs), solver, t0=0.0, t1=0.05, dt0=1e-3, y0=jnp.zeros((n, n)),
        stepsize_controller=diffrax.PIDController(rtol=1e-7, atol=1e-9), max_steps=500,
    )


def _radau_reference(rhs, n):
    """scipy's Radau IIA (host, float64, tight tolerances, exact Jacobian): no second compile."""
    f = jax.jit(lambda u: rhs(0.0, u.reshape(n, n), None).ravel())
    jacobian = jax.jit(jax.jacfwd(f))
    solution = scipy.integrate.solve_ivp(
        lambda t, u: np.asarray(f(jnp.asarray(u))), (0.0, 0.05), np.zeros(n * n), method="Radau",
        jac=lambda t, u: np.asarray(jacobian(jnp.asarray(u))), rtol=1e-10, atol=1e-12,
    )
    return solution.y[:, -1].reshape(n, n)


@_SLOW
def test_kvaerno5_implicit_solve_with_preconditioned_cg_and_exact_probed_diagonal(x64):
    n = 12
    rhs = _reaction_diffusion(n)
    _CheckedJacobi.errors.clear()
    linear_solver = Preconditioned(_CheckedJacobi(), method="cg", rtol=1e-10, structure="spd")
    ours = _integrate(rhs, n, optx.Newton(rtol=1e-8, atol=1e-10, linear_solver=linear_solver))
    assert ours.result == diffrax.RESULTS.successful
    np.testing.assert_allclose(ours.ys[-1], _radau_reference(rhs, n), rtol=1e-5, atol=1e-6)
    # diffrax's Jacobian I - γh ∂f/∂u couples nearest neighbours only: the 9 coloured probes give
    # its diagonal exactly (to rounding), where lineax.diagonal would take n² = 144 mat-vecs.
    assert _CheckedJacobi.errors and max(_CheckedJacobi.errors) < 1e-14


def _operator(theta, n=5):
    """An SPD stencil operator depending on parameters: -∇·(a∇u) with a = exp(θ)."""
    return DiffusionOperator(Grid((n, n), boundary="dirichlet"), jnp.exp(theta))


@_SLOW
@pytest.mark.parametrize("method", ["cg", "gmres", "bicgstab"])
def test_gradients_through_linear_solve_match_finite_differences(x64, method):
    n = 5
    key1, key2, key3, key4 = jax.random.split(jax.random.key(0), 4)
    theta = 0.3 * jax.random.normal(key1, (n, n))
    b = jax.random.normal(key2, (n, n))
    weights = jax.random.normal(key3, (n, n))
    structure = "spd" if method == "cg" else None
    solver = Preconditioned(Jacobi(), method=method, rtol=1e-13, atol=1e-13, max_steps=500, structure=structure)

    @jax.jit
    def loss(theta, b):
        return jnp.sum(weights * lx.linear_solve(_operator(theta), b, solver).value)

    g_theta, g_b = jax.jit(jax.grad(loss, argnums=(0, 1)))(theta, b)
    direction = jax.random.normal(key4, (n, n))
    eps = 1e-5
    fd_theta = (loss(theta + eps * direction, b) - loss(theta - eps * direction, b)) / (2 * eps)
    fd_b = (loss(theta, b + eps * direction) - loss(theta, b - eps * direction)) / (2 * eps)
    np.testing.assert_allclose(jnp.sum(g_theta * direction), fd_theta, rtol=1e-6)
    np.testing.assert_allclose(jnp.sum(g_b * direction), fd_b, rtol=1e-6)
    # and forward mode agrees with reverse mode
    _, tangent = jax.jvp(lambda t: loss(t, b), (theta,), (direction,))
    np.testing.assert_allclose(tangent, jnp.sum(g_theta * direction), rtol=1e-8)


class _NotSPD(AbstractPreconditioner):
    is_positive_definite: ClassVar[bool] = False
    is_linear: ClassVar[bool] = True

    def build(self, operator):
        return lx.IdentityLinearOperator(operator.in_structure())


class _Nonlinear(AbstractPreconditioner):
    is_positive_definite: ClassVar[bool] = True
    is_linear: ClassVar[bool] = False

    def build(self, operator):
        return lx.IdentityLinearOperator(operator.in_structure())


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match=r"ConjugateGradient: the preconditioner _NotSPD is not symmetric positive .*FlexibleCG"):
        Preconditioned(_NotSPD(), method="cg")
    Preconditioned(_NotSPD(), method="gmres")  # GMRES takes a non-symmetric M
    with pytest.raises(ValueError, match=r"Preconditioned: the preconditioner _Nonlinear is not a fixed linear map.*FGMRES"):
        Preconditioned(_Nonlinear(), method="gmres")
    with pytest.raises(ValueError, match=r"Preconditioned: `method` must be one of \('cg', 'gmres', 'bicgstab'\), got 'lu'"):
        Preconditioned(Jacobi(), method="lu")
    with pytest.raises(ValueError, match=r"Preconditioned: `structure` must be 'spd', 'symmetric', 'general' or None, got 'pd'"):
        Preconditioned(Jacobi(), structure="pd")
    with pytest.raises(TypeError, match=r"Preconditioned: `preconditioner` must be an AbstractPreconditioner or None, got str"):
        Preconditioned("jacobi")
