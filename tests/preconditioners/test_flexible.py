"""Flexible CG and FGMRES: convergence with nonlinear preconditioners where PCG fails, a
non-symmetric convection–diffusion system, float32. Ground truth: dense solves, true residuals."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from jaxpde import Grid
from jaxpde.numerics.krylov import ConjugateGradient
from jaxpde.numerics.preconditioning import AbstractPreconditioner, Jacobi
from jaxpde.numerics.stencils import DiffusionOperator
from jaxpde.preconditioners._flexible import FGMRES, FlexibleCG

_SLOW = pytest.mark.slow


class _InnerCG(AbstractPreconditioner):
    """M(r) = a few CG steps on A z = r to a loose tolerance: a nonlinear, variable map."""

    is_positive_definite: ClassVar[bool] = False
    is_linear: ClassVar[bool] = False

    def build(self, operator):
        inner = ConjugateGradient(rtol=0.3, max_steps=8)
        return lx.FunctionLinearOperator(lambda r: lx.linear_solve(operator, r, inner, throw=False).value, operator.in_structure())


class _TanhJacobi(AbstractPreconditioner):
    """M(r) = D⁻¹ (r + ½ ‖r‖ tanh(r / ‖r‖)): Jacobi with a nonlinear perturbation."""

    is_positive_definite: ClassVar[bool] = False
    is_linear: ClassVar[bool] = False

    def build(self, operator):
        inverse = 1 / jnp.diagonal(operator.as_matrix())

        def apply(r):
            scale = jnp.linalg.norm(r)
            return inverse * (r + 0.5 * scale * jnp.tanh(r / jnp.where(scale > 0, scale, 1)))

        return lx.FunctionLinearOperator(apply, operator.in_structure())


def _relative_residual(operator, x, b):
    return float(jnp.linalg.norm(b - operator.mv(x)) / jnp.linalg.norm(b))


def test_flexible_cg_converges_with_an_inner_cg_preconditioner_where_pcg_fails(x64):
    n = 24
    operator = DiffusionOperator(Grid((n, n), boundary="dirichlet"), 1.0)
    b = jnp.ones((n, n))
    inner = _InnerCG()
    # PCG with the same map (tagged as if it were SPD): its recurrences assume a fixed M and it
    # stalls — 200 steps leave a relative residual of 3e-6 (measured), where unpreconditioned CG
    # needs 44.
    @eqx.filter_jit  # the three solves and their true residuals in one program: one compilation
    def solve(operator):
        tagged = lx.TaggedLinearOperator(inner(operator), lx.positive_semidefinite_tag)
        options = {"preconditioner": tagged}
        pcg = lx.linear_solve(operator, b, ConjugateGradient(rtol=1e-8, max_steps=200), options=options, throw=False)
        fcg = [lx.linear_solve(operator, b, FlexibleCG(rtol=1e-8, preconditioner=inner, m=m)) for m in (1, 2)]
        residual = lambda x: jnp.linalg.norm(b - operator.mv(x)) / jnp.linalg.norm(b)  # noqa: E731
        return (pcg.result, residual(pcg.value)), [(residual(s.value), s.stats["num_steps"]) for s in fcg]

    (pcg_result, pcg_residual), flexible = solve(operator)
    assert pcg_result != lx.RESULTS.successful
    assert float(pcg_residual) > 1e-7
    for residual, steps in flexible:
        assert float(residual) <= 1e-8
        assert int(steps) <= 25  # measured 21 (m = 1), 18 (m = 2)
    with pytest.raises(ValueError, match=r"ConjugateGradient: the preconditioner _InnerCG is not a fixed linear map.*FlexibleCG"):
        ConjugateGradient(rtol=1e-8, preconditioner=inner)


def _convection_diffusion(n, velocity=20.0):
    """-Δu + c ∂u/∂x (central differences, Dirichlet) on (0, 1)²: non-symmetric, cell Péclet c h / 2 < 1."""
    h = 1.0 / (n + 1)
    eye = np.eye(n)
    second = (2 * eye - np.eye(n, k=1) - np.eye(n, k=-1)) / h**2
    first = (np.eye(n, k=1) - np.eye(n, k=-1)) / (2 * h)
    matrix = np.kron(second, eye) + np.kron(eye, second) + velocity * np.kron(first, eye)
    return lx.MatrixLinearOperator(jnp.asarray(matrix))


@_SLOW
@pytest.mark.parametrize("preconditioner", [None, Jacobi(), _TanhJacobi()], ids=["none", "jacobi", "tanh-jacobi"])
def test_fgmres_on_convection_diffusion_matches_a_dense_solve(x64, preconditioner):
    n = 12
    operator = _convection_diffusion(n)
    assert not np.allclose(operator.matrix, operator.matrix.T)
    b = jax.random.normal(jax.random.key(0), (n * n,))
    solution = lx.linear_solve(operator, b, FGMRES(rtol=1e-10, restart=20, preconditioner=preconditioner))
    np.testing.assert_allclose(solution.value, jnp.linalg.solve(operator.matrix, b), rtol=1e-8, atol=1e-10)
    assert _relative_residual(operator, solution.value, b) <= 1e-10
    with pytest.raises(ValueError, match="FlexibleCG: the operator must be tagged positive or negative semidefinite"):
        FlexibleCG(rtol=1e-6).init(operator, {})


@_SLOW
def test_float32_converges_or_says_it_cannot():
    n = 32
    operator = DiffusionOperator(Grid((n, n), boundary="dirichlet"), 1.0, dtype=jnp.float32)
    b = jnp.ones((n, n), jnp.float32)
    for solver in (FlexibleCG(rtol=1e-4, preconditioner=Jacobi()), FGMRES(rtol=1e-4, preconditioner=Jacobi())):
        solution = lx.linear_solve(operator, b, solver)
        assert solution.value.dtype == jnp.float32
        assert _relative_residual(operator, solution.value, b) <= 1e-4
    # 1e-8 is below what float32 can represent here: stagnation, finite, not NaN, not 10 n steps.
    for solver in (FlexibleCG(rtol=1e-8), FGMRES(rtol=1e-8)):
        solution = lx.linear_solve(operator, b, solver, throw=False)
        assert solution.result == lx.RESULTS.stagnation, type(solver).__name__
        assert bool(jnp.all(jnp.isfinite(solution.value))) and int(solution.stats["num_steps"]) < 1000


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: FlexibleCG(rtol=-1.0), r"FlexibleCG: `rtol` must be a finite real number >= 0, got -1.0"),
        (lambda: FlexibleCG(rtol=1e-6, m=0), r"FlexibleCG: `m` must be a positive integer, got 0"),
        (lambda: FGMRES(rtol=1e-6, restart=0), r"FGMRES: `restart` must be a positive integer, got 0"),
        (lambda: FGMRES(rtol=1e-6, preconditioner="jacobi"), r"FGMRES: `preconditioner` must be an AbstractPreconditioner or None, got str"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
