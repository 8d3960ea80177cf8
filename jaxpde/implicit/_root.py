r"""`root_find`: nonlinear steady states ``F(y*, θ) = 0`` by Newton–Krylov, gradients by the IFT.

**Forward.** Newton's method ``J_k δ_k = F(y_k)``, ``y_{k+1} = y_k - δ_k`` with ``J_k = ∂F/∂y(y_k)``
as a matrix-free `lineax.FunctionLinearOperator` (`jax.linearize`: one JVP per Krylov
iteration) and GMRES — optionally preconditioned through
`jaxpde.preconditioners.Preconditioned`, whose preconditioner is built from ``J_k`` inside
every Newton step (e.g. ``Jacobi(stencil_reach=1)``: ``J_k``'s exact diagonal from 9 JVPs in 2D).
This is Newton–Krylov (Knoll & Keyes 2004, *Jacobian-free Newton–Krylov methods*): memory
``O(n)`` plus the Krylov basis, never ``n²``.

**Backward.** The implicit function theorem,

.. math::

    \bar\theta = -\Big(\frac{\partial F}{\partial\theta}\Big)^{\!\top} \lambda, \qquad
    \Big(\frac{\partial F}{\partial y}\Big)^{\!\top} \lambda = \bar y,

one transposed Krylov solve (vector–Jacobian products) per cotangent, checked and scale-free
(`matrix_free_adjoint`), at memory independent of the number of Newton steps.
`optimistix.ImplicitAdjoint`'s default instead LU-factorises the dense ``∂F/∂y``: 8 TB at
``n = 10⁶`` in float64. ``adjoint="unrolled"`` differentiates through the Newton iterations.
"""

from collections.abc import Callable

import lineax as lx
import optimistix as optx
from jaxtyping import PyTree

from ..numerics.preconditioning import AbstractPreconditioner
from ..preconditioners import Preconditioned
from ._adjoint import _resolve_adjoint
from ._solution import ImplicitSolution, _check_options, _first_error

__all__ = ["root_find"]


def root_find(
    fn: Callable,
    y0: PyTree,
    args: PyTree = None,
    *,
    solver: optx.AbstractRootFinder | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-6,
    max_steps: int = 256,
    linear_solver: lx.AbstractLinearSolver | None = None,
    preconditioner: AbstractPreconditioner | None = None,
    adjoint: str | optx.AbstractAdjoint = "implicit",
    adjoint_rtol: float | None = None,
    has_aux: bool = False,
    throw: bool = True,
) -> ImplicitSolution:
    r"""The root ``F(y*, args) = 0`` of ``fn = F``, differentiable in `args` at constant memory.

    **Arguments:**

    - `fn`: ``fn(y, args) -> F`` (same structure as `y`), or ``(F, aux)`` with `has_aux`.
    - `y0`: the initial guess.
    - `args`: everything `fn` depends on that gradients should flow to.
    - `solver`: any `optimistix.AbstractRootFinder`; default `optimistix.Newton` (`rtol`,
      `atol`: its step-size test) with the Krylov `linear_solver`. A given `solver` carries its
      own tolerances and linear solver.
    - `linear_solver`: Newton's inner solver; default GMRES to ``(rtol, atol)``, preconditioned
      by `preconditioner` (``Preconditioned(preconditioner, method="gmres")``) if given.
    - `preconditioner`: a jaxpde `AbstractPreconditioner`, built from each Newton Jacobian; the
      default adjoint solve uses it too (built from the transposed Jacobian).
    - `adjoint`: ``"implicit"`` (default: matrix-free checked GMRES on ``(∂F/∂y)ᵀ``),
      ``"unrolled"`` (reverse mode through the Newton steps), or an `optimistix.AbstractAdjoint`.
    - `adjoint_rtol`: the adjoint solve's tolerance, relative to the cotangent (default `rtol`).
    - `has_aux`, `throw`: as for `fixed_point` (differentiating an unconverged root raises even
      with ``throw=False``).

    **Returns:** an `ImplicitSolution` (``num_steps``: Newton steps).
    """
    owner = "root_find"
    adjoint_rtol = _check_options(owner, rtol, atol, max_steps, adjoint_rtol)
    if preconditioner is not None and not isinstance(preconditioner, AbstractPreconditioner):
        raise TypeError(
            f"{owner}: `preconditioner` must be a jaxpde AbstractPreconditioner or None, got "
            f"{type(preconditioner).__name__}."
        )
    if linear_solver is None:
        # GMRES's elementwise test needs atol > 0: at the root F's entries are at round-off.
        linear_solver = Preconditioned(preconditioner, method="gmres", rtol=rtol, atol=atol if atol > 0 else rtol)
    elif not isinstance(linear_solver, lx.AbstractLinearSolver):
        raise TypeError(f"{owner}: `linear_solver` must be a lineax.AbstractLinearSolver, got {type(linear_solver).__name__}.")
    if solver is None:
        solver = optx.Newton(rtol=rtol, atol=atol, linear_solver=linear_solver)
    elif not isinstance(solver, optx.AbstractRootFinder):
        raise TypeError(f"{owner}: `solver` must be an optimistix.AbstractRootFinder, got {type(solver).__name__}.")
    if adjoint == "implicit" and preconditioner is not None:
        adjoint = optx.ImplicitAdjoint(
            Preconditioned(preconditioner, method="gmres", rtol=adjoint_rtol, atol=adjoint_rtol)
        )
    adjoint = _resolve_adjoint(owner, adjoint, adjoint_rtol, None)
    solution = optx.root_find(fn, solver, y0, args, has_aux=has_aux, max_steps=max_steps, adjoint=adjoint, throw=False)
    ok = solution.result == optx.RESULTS.successful
    value = _first_error(
        owner,
        solution.value,
        ok,
        f"{type(solver).__name__} did not converge within max_steps={max_steps} (or diverged, or its linear solve "
        "failed). Raise max_steps, improve the initial guess or the linear solver, or pass throw=False to inspect "
        "the result.",
        throw,
    )
    return ImplicitSolution(value, solution.result, ok, solution.stats["num_steps"], solution.stats, solution.aux)
