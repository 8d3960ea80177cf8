r"""Elliptic PDEs — Poisson, Darcy flow, Helmholtz — with their stencil operators and robust solves.

The equations, on a box with homogeneous Dirichlet (``u = 0``) or periodic boundaries:

.. math::

    \text{Poisson:}\quad -\Delta u = f, \qquad
    \text{Darcy:}\quad -\nabla\cdot(a\nabla u) = f, \qquad
    \text{Helmholtz:}\quad -\Delta u - k^2 u = f.

Darcy with ``f = 1`` on ``(0, 1)²``, ``u = 0`` on the boundary and ``a`` a thresholded Gaussian
random field is the FNO-paper dataset (Li et al., "Fourier Neural Operator for Parametric
Partial Differential Equations", ICLR 2021).

Each is an `AbstractStationaryPDE` (`jaxpde.pdes._stationary`): ``operator(grid, …)`` (a lineax
operator from `jaxpde.numerics.stencils`), ``source_on_grid(grid)``, ``solve(grid, …)`` through
`lineax.linear_solve` (differentiable in the coefficient field and the source),
``residual(u_fn, x, t=None, args=None)`` for PINNs, and ``from_solution`` / ``exact_solution``
for manufactured solutions. Inputs are float32 or float64 (others raise at once).

**Solves and their tolerance.** Poisson and Darcy use `jaxpde.numerics.krylov.ConjugateGradient`
(Hestenes & Stiefel 1952) with the norm-based test ``‖b - Au‖ ≤ max(rtol ‖b‖, atol)``. The
default ``rtol`` is ``1e-8`` in float64 and ``1e-5`` in float32, where a solve whose true
residual stagnates above ``1e-5`` stops there and counts as converged: float32 cannot represent
a more accurate solution (the reachable relative residual grows like ε·cond(A): about 2e-5 at
64² and 8e-4 at 253² on the FNO Darcy problem, with Jacobi). That is what a user of gradients
wants — the solve and its adjoint stop as soon as the answer is as good as 1e-5 or as float32
allows. The former default, "to working precision" (``rtol=0``: iterate until the true residual
stagnates), spends most of its iterations on round-off: on the FNO Darcy problem (Jacobi) 521
instead of 88 iterations at 32², 588 instead of 195 at 64² (measured), and the reverse pass
pays it again. An explicit ``rtol`` is strict: a solve that cannot reach it fails
(raises with ``throw=True``); ``rtol=0`` still means "to working precision".

**Finite-difference checks need a tight tolerance.** A finite-difference gradient divides the
change of the solution by the step, and the solve's own error (relative ``~rtol·cond(A)``) is
divided by the step too: at the default float64 ``rtol=1e-8``, central differences of a Darcy
loss disagree with autodiff by 1–30%. Use float64 and ``rtol=1e-12`` for such checks.

Helmholtz uses restarted GMRES (Saad & Schultz 1986) through `lineax.GMRES`.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float

from .. import autodiff
from ..grids import Grid
from ..numerics.krylov import ConjugateGradient
from ..numerics.preconditioning import AbstractPreconditioner, Jacobi
from ..numerics.sparse import register_structure_queries
from ..numerics.stencils import DiffusionOperator, HelmholtzOperator
from ._stationary import AbstractStationaryPDE, Source, evaluate_on_grid, pointwise_value, sample_on_grid

__all__ = ["Darcy", "Helmholtz", "Poisson", "default_solver", "evaluate_on_grid"]

_SUPPORTED_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64))


def _check_dtype(owner: str, name: str, value) -> None:
    """float32 and float64 only, said up front (in float16, CG breaks down in its first steps)."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jnp.inexact) and jnp.dtype(dtype) not in _SUPPORTED_DTYPES:
        raise TypeError(
            f"{owner}: `{name}` must be float32 or float64 (the supported dtypes), got {jnp.dtype(dtype).name}."
        )


def _default_rtol(dtype) -> float:
    return 1e-8 if jnp.dtype(dtype) == jnp.float64 else 1e-5


def default_solver(
    dtype,
    rtol: float | None = None,
    atol: float = 0.0,
    max_steps: int | None = None,
    preconditioner: AbstractPreconditioner | lx.AbstractLinearOperator | None = None,
) -> ConjugateGradient:
    """The CG that `Poisson.solve` and `Darcy.solve` use in `dtype` (see the module docstring).

    ``rtol=None`` is the default tolerance: ``1e-8`` in float64; in float32 ``1e-5`` or the
    float32 floor, whichever is reached first (``accept_stagnation=True``). An explicit `rtol` is
    strict. `preconditioner`: as `ConjugateGradient`'s (``None``, `Jacobi()`, …).
    """
    floor = rtol is None and jnp.dtype(dtype) != jnp.float64
    rtol = _default_rtol(dtype) if rtol is None else rtol
    return ConjugateGradient(
        rtol=rtol, atol=atol, max_steps=max_steps, preconditioner=preconditioner, accept_stagnation=floor
    )


def _check_solver_arguments(owner, solver, rtol, atol, max_steps, preconditioner, default_preconditioner) -> None:
    # Equality, not identity: `Jacobi()` passed explicitly is the default, and configures nothing.
    changed = eqx.tree_equal(preconditioner, default_preconditioner) is not True
    if solver is not None and (rtol is not None or atol != 0 or max_steps is not None or changed):
        raise ValueError(
            f"{owner}.solve: pass either `solver` or `rtol`/`atol`/`max_steps`/`preconditioner` "
            "(they configure the default ConjugateGradient), not both."
        )


def _raise_unless_successful(value, result, owner: str, rtol, dtype):
    dtype_name = jnp.dtype(dtype).name
    requested = "the requested tolerance" if rtol is None else f"the requested tolerance (rtol={rtol})"
    messages = (
        f"{owner}.solve: the true residual stopped decreasing above {requested}: "
        f"{dtype_name} arithmetic cannot represent a more accurate solution on this grid (the reachable relative "
        "residual grows like eps * condition number). Use a larger rtol, leave `rtol` unset (in float32 the default "
        "stops at the float32 floor), rtol=0 ('to working precision'), float64, MixedPrecisionRefinement (needs x64) or jaxpde.numerics.refine with a float-float residual (no x64).",
        f"{owner}.solve: CG broke down (p^T A p <= 0 or a non-finite value): the operator or preconditioner is "
        "not positive definite, or the coefficient is not finite.",
        f"{owner}.solve: the maximum number of CG steps was reached; raise `max_steps` or use a preconditioner.",
        f"{owner}.solve: the right-hand side (source) or initial guess holds NaN or Inf.",
        f"{owner}.solve: the linear solve failed (see lineax.RESULTS).",
    )
    index = jnp.select(
        [
            result == lx.RESULTS.stagnation,
            result == lx.RESULTS.breakdown,
            result == lx.RESULTS.max_steps_reached,
            result == lx.RESULTS.nonfinite_input,
        ],
        [0, 1, 2, 3],
        4,
    )
    return eqx.branched_error_if(value, result != lx.RESULTS.successful, index, messages)


class _GroundedOperator(lx.AbstractLinearOperator):
    r"""``A u + s·mean(u)·1`` for a symmetric positive semidefinite ``A`` whose null space is the constants.

    Adding ``(s/n) 11ᵀ`` lifts the zero eigenvalue of the constants to ``s`` and leaves the rest of
    the spectrum alone (``1ᵀA = 0``), so the operator is positive *definite*. For ``mean(b) = 0``
    its solution is the mean-zero solution of ``A u = b`` (average the equation: ``s·mean(u) =
    mean(b) = 0``). CG on the singular ``A`` itself works only while rounding keeps the iterates
    out of the null space; solving to working precision, it eventually meets a search direction
    with ``pᵀAp ≈ 0``. With ``s = mean(diag A)`` the lifted eigenvalue lies inside ``A``'s
    spectrum, so the condition number is unchanged.
    """

    operator: DiffusionOperator
    shift: Float[Array, ""]
    tags: frozenset = eqx.field(static=True)

    def __init__(self, operator: DiffusionOperator):
        self.operator = operator
        # The solution does not depend on s, so no gradient needs to flow through it.
        self.shift = jax.lax.stop_gradient(jnp.mean(operator.diagonal()))
        self.tags = frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})

    def mv(self, vector):
        return self.operator.mv(vector) + self.shift * jnp.mean(vector)

    def diagonal(self):
        return self.operator.diagonal() + self.shift / self.operator.grid.size

    def tridiagonal(self):
        raise NotImplementedError("_GroundedOperator has no tridiagonal structure.")

    def conj(self):
        return self

    def as_matrix(self):
        n = self.operator.grid.size
        return self.operator.as_matrix() + self.shift / n

    def transpose(self):
        return self

    def in_structure(self):
        return self.operator.in_structure()

    def out_structure(self):
        return self.operator.out_structure()


register_structure_queries(_GroundedOperator)


def _solve_definite(
    owner: str,
    operator: DiffusionOperator,
    rhs: Float[Array, "*shape"],
    rtol: float | None,
    atol: float,
    max_steps: int | None,
    preconditioner,
    solver: lx.AbstractLinearSolver | None,
    throw: bool,
) -> Float[Array, "*shape"]:
    if solver is None:
        solver = default_solver(operator.dtype, rtol, atol, max_steps, preconditioner)
    return _solve_definite_compiled(owner, operator, rhs, solver, throw, rtol)


@eqx.filter_jit
def _solve_definite_compiled(owner, operator, rhs, solver, throw, rtol):
    # One compiled program for the projections, the solve and the error check (called eagerly,
    # these would each compile separately for every new grid shape).
    dtype = operator.dtype
    if operator.is_singular:
        # Periodic, no shift: A u = b is solvable only for mean(b) = 0, and u is defined up to a
        # constant. Solve for the compatible part of b and return the mean-zero solution, with
        # the constants lifted out of the null space (`_GroundedOperator`).
        rhs = rhs - jnp.mean(rhs)
        operator = _GroundedOperator(operator)
    solution = lx.linear_solve(operator, rhs, solver, throw=False)
    u = solution.value
    if isinstance(operator, _GroundedOperator):
        u = u - jnp.mean(u)  # exact mean zero, not just to rounding
    if throw:
        u = _raise_unless_successful(u, solution.result, owner, rtol, dtype)
    return u


class Poisson(AbstractStationaryPDE):
    r"""The Poisson equation ``-Δu = f`` with homogeneous Dirichlet or periodic boundaries.

    **Fields:**

    - `source`: ``f`` — a scalar, a field of the grid's shape, or a pointwise callable
      ``f(x)`` of one point ``x`` of shape ``(ndim,)`` (default ``1``).
    - `solution`: the exact ``u(x)`` where known (see `from_solution`), else ``None``.

    On a periodic grid the problem needs ``mean(f) = 0``; `solve` uses the mean-zero part of
    ``f`` and returns the mean-zero solution.
    """

    source: Source = 1.0
    solution: Callable | None = None

    def operator(self, grid: Grid, dtype=None) -> DiffusionOperator:
        """``-Δ_h`` on `grid` (5-point in 2D), a symmetric positive (semi)definite lineax operator."""
        return DiffusionOperator(grid, 1.0, dtype=dtype)

    def pointwise_operator(self, u_fn, x, args=None):
        return -autodiff.laplacian(u_fn)(x)

    def solve(
        self,
        grid: Grid,
        source: Source | None = None,
        *,
        rtol: float | None = None,
        atol: float = 0.0,
        max_steps: int | None = None,
        preconditioner: AbstractPreconditioner | lx.AbstractLinearOperator | None = None,
        solver: lx.AbstractLinearSolver | None = None,
        throw: bool = True,
    ) -> Float[Array, "*shape"]:
        """The discrete solution ``u_h`` of ``-Δ_h u_h = f_h``; differentiable in `source`.

        **Arguments:**

        - `grid`: the grid; `source` (a field, scalar or callable, float32 or float64) defaults
          to the field ``self.source``.
        - `rtol`, `atol`, `max_steps`, `preconditioner`: for the default `ConjugateGradient`
          (``‖b - Au‖ ≤ max(rtol ‖b‖, atol)``). `preconditioner` is ``None`` (the default —
          Jacobi is a constant scaling for Poisson), an `AbstractPreconditioner` such as
          `Jacobi()`, built from the operator inside the solve, or a positive
          semidefinite-tagged lineax operator. Default ``rtol``: ``1e-8`` in float64; in float32
          ``1e-5`` or the float32 floor, whichever is reached first (see the module docstring).
          An explicit ``rtol`` is strict. Finite-difference checks need a tight ``rtol``.
        - `solver`: any lineax solver instead (then leave the four above unset).
        - `throw`: raise (also under jit, via `equinox.error_if`) if the solve fails.
        """
        _check_solver_arguments("Poisson", solver, rtol, atol, max_steps, preconditioner, None)
        _check_dtype("Poisson.solve", "source", source)
        rhs = self.source_on_grid(grid) if source is None else sample_on_grid(source, grid, "source")
        _check_dtype("Poisson.solve", "source", rhs)
        operator = self.operator(grid, dtype=rhs.dtype)
        return _solve_definite("Poisson", operator, rhs, rtol, atol, max_steps, preconditioner, solver, throw)


class Darcy(AbstractStationaryPDE):
    r"""Steady Darcy flow ``-∇·(a ∇u) = f`` with homogeneous Dirichlet or periodic boundaries.

    The coefficient (permeability) ``a > 0`` is usually the input of the problem: an argument of
    `operator` and `solve`, and of `residual` as ``args`` (``Darcy().residual(u_fn, x,
    args=a_fn)``, so a PINN can learn ``a``). It may also be fixed as a field of the PDE. The
    FNO-paper setting is ``Darcy()`` (``f = 1``) on ``Grid((s, s), boundary="dirichlet")`` with
    ``a`` ∈ {3, 12} a thresholded Gaussian random field.

    **Fields:**

    - `source`: ``f`` — scalar, field or pointwise callable (default ``1``).
    - `coefficient`: a fixed ``a`` — a positive scalar, field or pointwise callable ``a(x)`` —
      or ``None`` (default: ``a`` is given to each call).
    - `solution`: the exact ``u(x)`` where known (see `from_solution`), else ``None``.
    """

    source: Source = 1.0
    coefficient: Source | None = None
    solution: Callable | None = None

    def _coefficient(self, coefficient, owner: str):
        coefficient = self.coefficient if coefficient is None else coefficient
        if coefficient is None:
            raise ValueError(
                f"{owner}: no coefficient `a`: pass one (a field of the grid's shape, a scalar or a "
                "function a(x)) or build Darcy(coefficient=...)."
            )
        return coefficient

    def operator(self, grid: Grid, coefficient: Source | None = None) -> DiffusionOperator:
        """``-∇·(a∇·)`` on `grid` with harmonic-mean face coefficients; SPD for ``a > 0``.

        `coefficient`: a positive field of shape ``grid.shape``, a scalar or a function ``a(x)``
        (default: the field ``self.coefficient``), float32 or float64; its dtype is the operator's.
        """
        coefficient = self._coefficient(coefficient, "Darcy.operator")
        _check_dtype("Darcy.operator", "coefficient", coefficient)
        if callable(coefficient):
            coefficient = evaluate_on_grid(coefficient, grid)
        return DiffusionOperator(grid, coefficient)

    def pointwise_operator(self, u_fn, x, args=None):
        a = self._coefficient(args, "Darcy.residual")
        if not callable(a):
            a = pointwise_value(a, x, "coefficient", "Darcy")
        return -autodiff.div_flux(u_fn, a)(x)

    def solve(
        self,
        grid: Grid,
        coefficient: Source | None = None,
        source: Source | None = None,
        *,
        rtol: float | None = None,
        atol: float = 0.0,
        max_steps: int | None = None,
        preconditioner: AbstractPreconditioner | lx.AbstractLinearOperator | None = Jacobi(),
        solver: lx.AbstractLinearSolver | None = None,
        throw: bool = True,
    ) -> Float[Array, "*shape"]:
        """The discrete solution; differentiable with respect to `coefficient` and `source`.

        **Arguments:**

        - `grid`, `coefficient` (as in `operator`); `source` defaults to the field
          ``self.source`` and takes the coefficient's dtype.
        - `rtol`, `atol`, `max_steps`, `preconditioner`: as in `Poisson.solve`, with
          ``preconditioner=Jacobi()`` by default (``diag(A)`` varies with ``a``; ``None`` for
          none). Default ``rtol``: ``1e-8``
          in float64; in float32 ``1e-5`` or the float32 floor, whichever comes first — a float32
          gradient then costs about a third of a solve "to working precision". An explicit
          ``rtol`` is strict. Finite-difference gradient checks need a tight ``rtol`` (the
          solve's error is divided by the step): ``1e-12`` in float64.
        - `solver`, `throw`: as in `Poisson.solve`.

        Gradients cost one adjoint CG solve (lineax's implicit differentiation).
        """
        _check_solver_arguments("Darcy", solver, rtol, atol, max_steps, preconditioner, Jacobi())
        _check_dtype("Darcy.solve", "coefficient", coefficient)
        _check_dtype("Darcy.solve", "source", source)
        operator = self.operator(grid, coefficient)
        _check_dtype("Darcy.solve", "coefficient", operator)
        if source is None:
            rhs = self.source_on_grid(grid, operator.dtype)
        else:
            rhs = sample_on_grid(source, grid, "source", operator.dtype)
        return _solve_definite("Darcy", operator, rhs, rtol, atol, max_steps, preconditioner, solver, throw)


class Helmholtz(AbstractStationaryPDE):
    r"""The Helmholtz equation ``-Δu - k² u = f`` with homogeneous Dirichlet or periodic boundaries.

    Symmetric but indefinite once ``k²`` exceeds the smallest eigenvalue of ``-Δ`` (``dπ²`` on the
    unit box with Dirichlet boundaries), so `solve` uses GMRES, not CG. Singular when ``k²`` is an
    eigenvalue of the discrete ``-Δ``.

    **Fields:**

    - `wavenumber`: ``k``, a scalar (or a field of the grid's shape for a heterogeneous medium;
      then `residual` is not available).
    - `source`: ``f`` — scalar, field or pointwise callable (default ``1``).
    - `solution`: the exact ``u(x)`` where known (see `from_solution`), else ``None``.
    """

    wavenumber: float | Float[Array, "..."]
    source: Source = 1.0
    solution: Callable | None = None

    def operator(self, grid: Grid, dtype=None) -> HelmholtzOperator:
        """``-Δ_h - k²`` on `grid`, a symmetric lineax operator."""
        return HelmholtzOperator(grid, self.wavenumber, dtype=dtype)

    def pointwise_operator(self, u_fn, x, args=None):
        k = pointwise_value(self.wavenumber, x, "wavenumber", "Helmholtz")
        return -autodiff.laplacian(u_fn)(x) - k * k * u_fn(x)

    def solve(
        self,
        grid: Grid,
        source: Source | None = None,
        *,
        rtol: float | None = None,
        atol: float = 0.0,
        max_steps: int | None = None,
        solver: lx.AbstractLinearSolver | None = None,
        throw: bool = True,
    ) -> Float[Array, "*shape"]:
        """The discrete solution, by restarted GMRES (`lineax.GMRES`) unless `solver` is given.

        Default ``rtol``: ``1e-8`` in float64, ``1e-4`` in float32 (lineax's elementwise test).
        Differentiable with respect to `source` and the wavenumber.
        """
        _check_solver_arguments("Helmholtz", solver, rtol, atol, max_steps, None, None)
        _check_dtype("Helmholtz.solve", "source", source)
        rhs = self.source_on_grid(grid) if source is None else sample_on_grid(source, grid, "source")
        _check_dtype("Helmholtz.solve", "source", rhs)
        operator = self.operator(grid, dtype=rhs.dtype)
        if solver is None:
            if rtol is None:
                rtol = 1e-8 if rhs.dtype == jnp.float64 else 1e-4
            solver = lx.GMRES(rtol=rtol, atol=atol, max_steps=max_steps, restart=min(grid.size, 100))
        solution = lx.linear_solve(operator, rhs, solver, throw=False)
        u = solution.value
        if throw:
            u = solution.result.error_if(u, solution.result != lx.RESULTS.successful)
        return u
