r"""`linear_solve`: ``x = A(θ)⁻¹ b(θ)`` with jaxpde's Krylov solvers, and gradients that cannot lie.

`lineax.linear_solve` already differentiates a solve by the adjoint method — ``b̄ = A⁻ᵀ x̄``,
``Ā = -b̄ xᵀ`` (as a matrix-free operator tangent), one transposed solve per cotangent and no
stored iterations — with any lineax solver, jaxpde's `ConjugateGradient` and `Preconditioned`
included. This module adds only what it lacks:

- **No wrong gradient from an unconverged forward solve.** With ``throw=False`` lineax returns
  an unconverged ``x`` and differentiates it as if it were ``A⁻¹ b``: ``Ā = -b̄ xᵀ`` is then wrong
  and nothing says so. Here differentiating an unconverged solve raises.
- **A clear, scale-free adjoint solve.** The transposed solves lineax makes for the gradient go
  through `CheckedSolver`: tolerances relative to the cotangent's max norm (lineax's Krylov
  tests ``|r_i| ≤ atol + rtol |b_i|`` otherwise need a problem-dependent ``atol``), and an error
  that names the adjoint solve when it does not converge.
- **A matrix-free default.** lineax's `AutoLinearSolver` picks a dense factorisation
  (``n²`` memory); the default here is CG (jaxpde's `ConjugateGradient`: norm-based test, robust
  in float32) for operators tagged positive semidefinite, GMRES otherwise.
"""

import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, PyTree

from ..numerics.krylov import ConjugateGradient
from ._adjoint import CheckedSolver
from ._solution import ImplicitSolution, _check_tolerance, _first_error

__all__ = ["linear_solve"]


def linear_solve(
    operator: lx.AbstractLinearOperator,
    vector: PyTree[Array],
    *,
    solver: lx.AbstractLinearSolver | None = None,
    rtol: float = 1e-6,
    atol: float = 0.0,
    max_steps: int | None = None,
    options: dict | None = None,
    throw: bool = True,
) -> ImplicitSolution:
    r"""``x = A⁻¹ b``, differentiable in the operator's and the vector's arrays.

    **Arguments:**

    - `operator`: a `lineax.AbstractLinearOperator` (matrix-free ones included: jaxpde's
      stencil and sparse operators, `lineax.FunctionLinearOperator`, Jacobians).
    - `vector`: the right-hand side, in the operator's output structure.
    - `solver`: any lineax solver (e.g. ``jaxpde.preconditioners.Preconditioned(Jacobi(),
      method="cg")``). Default: `ConjugateGradient` if `operator` is tagged positive
      semidefinite, else `lineax.GMRES`, with `rtol`, `atol` and `max_steps`.
    - `rtol`, `atol`, `max_steps`: the default solver's (ignored when `solver` is given). The
      adjoint solves of a gradient use the same solver, tolerances relative to the cotangent.
    - `options`: lineax options (``{"y0": guess}``, ``{"preconditioner": M}``).
    - `throw`: raise when the forward solve does not converge; with ``throw=False`` the solution
      comes back with its `result`, and differentiating it raises.

    **Returns:** an `ImplicitSolution` (``num_steps``: Krylov iterations of the forward solve).
    """
    owner = "linear_solve"
    if not isinstance(operator, lx.AbstractLinearOperator):
        raise TypeError(f"{owner}: `operator` must be a lineax.AbstractLinearOperator, got {type(operator).__name__}.")
    if solver is None:
        _check_tolerance(owner, "rtol", rtol)
        _check_tolerance(owner, "atol", atol)
        if lx.is_positive_semidefinite(operator) or lx.is_negative_semidefinite(operator):
            solver = ConjugateGradient(rtol=rtol, atol=atol, max_steps=max_steps)
        else:
            # lineax's elementwise test needs atol > 0 once an entry of b is 0; relative to max|b|
            # in the adjoint solves (CheckedSolver), so rtol is the natural floor there too.
            solver = lx.GMRES(rtol=rtol, atol=atol if atol > 0 else rtol, max_steps=max_steps)
    elif not isinstance(solver, lx.AbstractLinearSolver):
        raise TypeError(f"{owner}: `solver` must be a lineax.AbstractLinearSolver, got {type(solver).__name__}.")
    checked = CheckedSolver(solver, f"{owner}: the adjoint (transposed) solve of the gradient", adjoint_only=True)
    solution = lx.linear_solve(operator, vector, checked, options=options, throw=False)
    ok = solution.result == lx.RESULTS.successful
    value = _first_error(
        owner,
        solution.value,
        ok,
        f"the solve with {type(solver).__name__} did not converge (out of steps, breakdown, or non-finite values). "
        "Raise max_steps, precondition it, or pass throw=False to inspect the result.",
        throw,
    )
    num_steps = jnp.asarray(solution.stats.get("num_steps", 0))
    return ImplicitSolution(value, solution.result, ok, num_steps, solution.stats)
