r"""Elliptic PDEs — Poisson, Darcy flow, Helmholtz — with their stencil operators and robust solves.

The equations, on a box with homogeneous Dirichlet (``u = 0``) or periodic boundaries:

.. math::

    \text{Poisson:}\quad -\Delta u = f, \qquad
    \text{Darcy:}\quad -\nabla\cdot(a\nabla u) = f, \qquad
    \text{Helmholtz:}\quad -\Delta u - k^2 u = f.

Darcy with ``f = 1`` on ``(0, 1)²``, ``u = 0`` on the boundary and ``a`` a thresholded Gaussian
random field is the FNO-paper dataset (Li et al., "Fourier Neural Operator for Parametric
Partial Differential Equations", ICLR 2021).

Each PDE is an `equinox.Module` holding its parameters (the source ``f``; for Helmholtz the
wavenumber ``k``) and offering what each consumer needs:

* ``operator(grid, …)``: the discrete operator, a lineax operator from
  `jaxpde.numerics.stencils` (matrix-free, differentiable in ``a`` and ``k``);
* ``rhs(grid)``: ``f`` sampled at the grid points;
* ``solve(grid, …)``: the discrete solution through `lineax.linear_solve`, differentiable with
  respect to the coefficient field and the right-hand side (implicit differentiation: one
  adjoint solve per reverse pass);
* ``residual(u_fn, x)``: the pointwise PDE residual of a function ``u_fn: R^d → R`` at a point
  ``x`` (for PINNs), by automatic differentiation;
* ``from_solution(u_fn, …)`` / ``exact_solution(x)``: manufactured solutions — the source is
  computed from a chosen ``u`` by autodiff, so ``u`` is exact for the constructed PDE.

The solves go through `jaxpde.numerics.krylov.ConjugateGradient` (see there for why lineax's
own CG is not used, and what float32 can reach).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float, Scalar

from ..grids import Grid
from ..numerics.sparse import register_structure_queries
from ..numerics.krylov import ConjugateGradient
from ..numerics.stencils import DiffusionOperator, HelmholtzOperator

__all__ = ["Darcy", "Helmholtz", "Poisson", "evaluate_on_grid"]


Source = float | Float[Array, "*shape"] | Callable[[Float[Array, " ndim"]], Scalar]

_DEFAULT = "default"  # sentinel: "the PDE's default preconditioner"


def evaluate_on_grid(fn: Callable[[Float[Array, " ndim"]], Scalar], grid: Grid, dtype=None) -> Float[Array, "*shape"]:
    """``fn`` (a pointwise function of one point ``x`` of shape ``(ndim,)``) at every grid point."""
    points = grid.coordinates().reshape(grid.ndim, -1).T
    if dtype is not None:
        points = points.astype(dtype)
    values = _vmap_points(fn, points)
    return values.reshape(grid.shape) if dtype is None else values.reshape(grid.shape).astype(dtype)


@eqx.filter_jit
def _vmap_points(fn, points):
    # Compiled rather than dispatched op by op: sources built by `from_solution` differentiate
    # twice, which is slow eagerly.
    return jax.vmap(_scalar(fn, "fn"))(points)


def _scalar(fn: Callable, name: str) -> Callable:
    def scalar_fn(x):
        value = fn(x)
        if jnp.size(value) != 1:
            raise ValueError(f"`{name}` must return a scalar at a point, got shape {jnp.shape(value)}.")
        return jnp.reshape(value, ())

    return scalar_fn


def _check_point(x, owner: str) -> None:
    if jnp.ndim(x) != 1:
        raise ValueError(
            f"{owner}.residual: `x` must be one point of shape (ndim,), got shape {jnp.shape(x)}; "
            "use jax.vmap over points."
        )


def _laplacian(u_fn: Callable, x: Float[Array, " ndim"]) -> Scalar:
    return jnp.trace(jax.hessian(_scalar(u_fn, "u_fn"))(x))


def _divergence_of_flux(u_fn: Callable, a_fn: Callable, x: Float[Array, " ndim"]) -> Scalar:
    """``∇·(a ∇u)(x)`` by forward-over-reverse differentiation."""
    u, a = _scalar(u_fn, "u_fn"), _scalar(a_fn, "a_fn")
    flux = lambda y: a(y) * jax.grad(u)(y)
    return jnp.trace(jax.jacfwd(flux)(x))


def _pointwise(value: Source, x: Float[Array, " ndim"], name: str, owner: str) -> Scalar:
    if callable(value):
        return _scalar(value, name)(x)
    value = jnp.asarray(value)
    if value.ndim != 0:
        raise ValueError(
            f"{owner}.residual: `{name}` is a grid field of shape {value.shape}; a pointwise residual needs "
            f"a scalar or a callable `{name}`."
        )
    return value


def _sample(value: Source, grid: Grid, name: str, dtype=None) -> Float[Array, "*shape"]:
    """A source given as a callable, a scalar or a field, as a field on ``grid``."""
    if callable(value):
        return evaluate_on_grid(value, grid, dtype)
    out = jnp.asarray(value, dtype=dtype)
    if out.ndim == 0:
        out = jnp.broadcast_to(out, grid.shape)
    else:
        grid.check_field(out, name)
    if not jnp.issubdtype(out.dtype, jnp.floating):
        out = out.astype(jnp.result_type(float))
    return out


def _default_rtol(dtype) -> float:
    # float64: tight enough for reference data. float32: "to working precision" (rtol = 0), since
    # the reachable relative residual of a float32 solution grows like the condition number
    # (≈ 2e-5 at 64², 3e-4 at 256² for FNO Darcy) and no fixed tolerance suits every grid.
    return 1e-8 if jnp.dtype(dtype) == jnp.float64 else 0.0


def _check_solver_arguments(owner, solver, rtol, atol, max_steps, preconditioner) -> None:
    if solver is not None and (rtol is not None or atol != 0 or max_steps is not None or preconditioner is not _DEFAULT):
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
        "residual grows like eps * condition number). Use a larger rtol, rtol=0 ('to working precision'), "
        "float64, or MixedPrecisionRefinement.",
        f"{owner}.solve: CG broke down (p^T A p <= 0 or a non-finite value): the operator or preconditioner is "
        "not positive definite, or an input is not finite.",
        f"{owner}.solve: the maximum number of CG steps was reached; raise `max_steps` or use a preconditioner.",
        f"{owner}.solve: the linear solve failed (see lineax.RESULTS).",
    )
    index = jnp.select(
        [result == lx.RESULTS.stagnation, result == lx.RESULTS.breakdown, result == lx.RESULTS.max_steps_reached],
        [0, 1, 2],
        3,
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
        rtol = _default_rtol(operator.dtype) if rtol is None else rtol
        solver = ConjugateGradient(rtol=rtol, atol=atol, max_steps=max_steps, preconditioner=preconditioner)
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


class Poisson(eqx.Module):
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

    @classmethod
    def from_solution(cls, u_fn: Callable[[Float[Array, " ndim"]], Scalar]) -> Poisson:
        """The Poisson problem solved by ``u_fn``: ``f = -Δu`` by autodiff (a manufactured solution).

        ``u_fn`` must satisfy the boundary condition of the grid it is used on (vanish on the box
        boundary, or be periodic with mean zero).
        """
        return cls(source=lambda x: -_laplacian(u_fn, x), solution=u_fn)

    def operator(self, grid: Grid, dtype=None) -> DiffusionOperator:
        """``-Δ_h`` on `grid` (5-point in 2D), a symmetric positive (semi)definite lineax operator."""
        return DiffusionOperator(grid, 1.0, dtype=dtype)

    def rhs(self, grid: Grid, dtype=None) -> Float[Array, "*shape"]:
        """``f`` at the grid points."""
        return _sample(self.source, grid, "source", dtype)

    def solve(
        self,
        grid: Grid,
        rhs: Float[Array, "*shape"] | None = None,
        *,
        rtol: float | None = None,
        atol: float = 0.0,
        max_steps: int | None = None,
        preconditioner=_DEFAULT,
        solver: lx.AbstractLinearSolver | None = None,
        throw: bool = True,
    ) -> Float[Array, "*shape"]:
        """The discrete solution ``u_h`` of ``-Δ_h u_h = f_h``; differentiable in `rhs`.

        **Arguments:**

        - `grid`: the grid; `rhs` defaults to ``self.rhs(grid)``.
        - `rtol`, `atol`, `max_steps`, `preconditioner`: for the default `ConjugateGradient`
          (norm-based test ``‖b - Au‖ ≤ max(rtol ‖b‖, atol)``; default ``rtol`` is ``1e-8`` in
          float64 and "to working precision" in float32; no preconditioner by default — Jacobi
          is a constant scaling for Poisson).
        - `solver`: any lineax solver instead (then leave the four above unset).
        - `throw`: raise (also under jit, via `equinox.error_if`) if the solve fails.
        """
        _check_solver_arguments("Poisson", solver, rtol, atol, max_steps, preconditioner)
        rhs = self.rhs(grid) if rhs is None else _sample(rhs, grid, "rhs")
        operator = self.operator(grid, dtype=rhs.dtype)
        preconditioner = None if preconditioner is _DEFAULT else preconditioner
        return _solve_definite("Poisson", operator, rhs, rtol, atol, max_steps, preconditioner, solver, throw)

    def residual(self, u_fn: Callable[[Float[Array, " ndim"]], Scalar], x: Float[Array, " ndim"]) -> Scalar:
        """``-Δu(x) - f(x)`` at one point, by automatic differentiation (a PINN's residual)."""
        _check_point(x, "Poisson")
        return -_laplacian(u_fn, x) - _pointwise(self.source, x, "source", "Poisson")

    def exact_solution(self, x: Float[Array, " ndim"]) -> Scalar:
        if self.solution is None:
            raise ValueError("Poisson.exact_solution: no exact solution is known; build with Poisson.from_solution.")
        return _scalar(self.solution, "solution")(x)


class Darcy(eqx.Module):
    r"""Steady Darcy flow ``-∇·(a ∇u) = f`` with homogeneous Dirichlet or periodic boundaries.

    The coefficient (permeability) ``a > 0`` is the input of the problem, so it is an argument
    of `operator`, `solve` and `residual` rather than a field. The FNO-paper setting is
    ``Darcy()`` (``f = 1``) on ``Grid((s, s), boundary="dirichlet")`` with ``a`` ∈ {3, 12} a
    thresholded Gaussian random field.

    **Fields:**

    - `source`: ``f`` — scalar, field or pointwise callable (default ``1``).
    - `solution`: the exact ``u(x)`` where known (see `from_solution`), else ``None``.
    """

    source: Source = 1.0
    solution: Callable | None = None

    @classmethod
    def from_solution(
        cls, u_fn: Callable[[Float[Array, " ndim"]], Scalar], a_fn: Callable[[Float[Array, " ndim"]], Scalar]
    ) -> Darcy:
        """The Darcy problem with coefficient ``a_fn`` solved by ``u_fn``: ``f = -∇·(a∇u)`` by autodiff."""
        return cls(source=lambda x: -_divergence_of_flux(u_fn, a_fn, x), solution=u_fn)

    def operator(self, grid: Grid, coefficient: Float[Array, "*shape"] | float) -> DiffusionOperator:
        """``-∇·(a∇·)`` on `grid` with harmonic-mean face coefficients; SPD for ``a > 0``.

        `coefficient` is a positive field of shape ``grid.shape`` (or a scalar); its dtype is the
        operator's.
        """
        return DiffusionOperator(grid, coefficient)

    def rhs(self, grid: Grid, dtype=None) -> Float[Array, "*shape"]:
        return _sample(self.source, grid, "source", dtype)

    def solve(
        self,
        grid: Grid,
        coefficient: Float[Array, "*shape"],
        rhs: Float[Array, "*shape"] | None = None,
        *,
        rtol: float | None = None,
        atol: float = 0.0,
        max_steps: int | None = None,
        preconditioner=_DEFAULT,
        solver: lx.AbstractLinearSolver | None = None,
        throw: bool = True,
    ) -> Float[Array, "*shape"]:
        """The discrete solution; differentiable with respect to `coefficient` and `rhs`.

        As `Poisson.solve`, with Jacobi preconditioning by default (``diag(A)`` varies with
        ``a``). Gradients cost one adjoint CG solve (lineax's implicit differentiation).
        """
        _check_solver_arguments("Darcy", solver, rtol, atol, max_steps, preconditioner)
        operator = self.operator(grid, coefficient)
        rhs = self.rhs(grid, operator.dtype) if rhs is None else _sample(rhs, grid, "rhs", operator.dtype)
        preconditioner = "jacobi" if preconditioner is _DEFAULT else preconditioner
        return _solve_definite("Darcy", operator, rhs, rtol, atol, max_steps, preconditioner, solver, throw)

    def residual(
        self,
        u_fn: Callable[[Float[Array, " ndim"]], Scalar],
        a_fn: Callable[[Float[Array, " ndim"]], Scalar],
        x: Float[Array, " ndim"],
    ) -> Scalar:
        """``-∇·(a∇u)(x) - f(x)`` at one point, by automatic differentiation."""
        _check_point(x, "Darcy")
        return -_divergence_of_flux(u_fn, a_fn, x) - _pointwise(self.source, x, "source", "Darcy")

    def exact_solution(self, x: Float[Array, " ndim"]) -> Scalar:
        if self.solution is None:
            raise ValueError("Darcy.exact_solution: no exact solution is known; build with Darcy.from_solution.")
        return _scalar(self.solution, "solution")(x)


class Helmholtz(eqx.Module):
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

    @classmethod
    def from_solution(cls, u_fn: Callable[[Float[Array, " ndim"]], Scalar], wavenumber: float) -> Helmholtz:
        """The Helmholtz problem with wavenumber ``k`` solved by ``u_fn``: ``f = -Δu - k²u``."""
        k2 = jnp.asarray(wavenumber) ** 2
        return cls(
            wavenumber=wavenumber,
            source=lambda x: -_laplacian(u_fn, x) - k2 * _scalar(u_fn, "u_fn")(x),
            solution=u_fn,
        )

    def operator(self, grid: Grid, dtype=None) -> HelmholtzOperator:
        """``-Δ_h - k²`` on `grid`, a symmetric lineax operator."""
        return HelmholtzOperator(grid, self.wavenumber, dtype=dtype)

    def rhs(self, grid: Grid, dtype=None) -> Float[Array, "*shape"]:
        return _sample(self.source, grid, "source", dtype)

    def solve(
        self,
        grid: Grid,
        rhs: Float[Array, "*shape"] | None = None,
        *,
        rtol: float | None = None,
        atol: float = 0.0,
        max_steps: int | None = None,
        solver: lx.AbstractLinearSolver | None = None,
        throw: bool = True,
    ) -> Float[Array, "*shape"]:
        """The discrete solution, by restarted GMRES (`lineax.GMRES`) unless `solver` is given.

        Default ``rtol``: ``1e-8`` in float64, ``1e-4`` in float32 (lineax's elementwise test).
        Differentiable with respect to `rhs` and the wavenumber.
        """
        _check_solver_arguments("Helmholtz", solver, rtol, atol, max_steps, _DEFAULT)
        rhs = self.rhs(grid) if rhs is None else _sample(rhs, grid, "rhs")
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

    def residual(self, u_fn: Callable[[Float[Array, " ndim"]], Scalar], x: Float[Array, " ndim"]) -> Scalar:
        """``-Δu(x) - k²u(x) - f(x)`` at one point, by automatic differentiation."""
        _check_point(x, "Helmholtz")
        k = _pointwise(self.wavenumber, x, "wavenumber", "Helmholtz")
        u = _scalar(u_fn, "u_fn")(x)
        return -_laplacian(u_fn, x) - k * k * u - _pointwise(self.source, x, "source", "Helmholtz")

    def exact_solution(self, x: Float[Array, " ndim"]) -> Scalar:
        if self.solution is None:
            raise ValueError("Helmholtz.exact_solution: no exact solution is known; build with Helmholtz.from_solution.")
        return _scalar(self.solution, "solution")(x)
