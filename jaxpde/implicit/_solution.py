r"""What every differentiable solve of `jaxpde.implicit` returns, and the two checks behind it.

**One return convention.** `linear_solve`, `root_find`, `fixed_point` and `steady_state`
return an `ImplicitSolution`: the solution ``value``, the solver's ``result`` (a lineax,
optimistix or diffrax ``RESULTS``; ``successful`` when converged), ``num_steps`` (iterations,
Newton steps, or time steps) and the library's own ``stats``.

**No wrong gradient.** The implicit function theorem differentiates the *equation*, not the
iterations: the gradient it returns is the exact gradient at the returned point, and only the
gradient of the solution when that point solves the equation. Two failures would make it
wrong without a trace, and both raise instead:

1. *The forward solve did not converge* but the caller asked for ``throw=False`` (to inspect
   the result): the value comes back with its ``result``, but differentiating it raises —
   `_guard_derivative` checks convergence in the derivative rule, which runs only when a
   derivative is taken.
2. *The adjoint (backward) linear solve did not converge*: ``(∂F/∂y)ᵀ λ = ḡ`` is solved by a
   Krylov method to a tolerance; `jaxpde.implicit.CheckedSolver` (in ``_adjoint.py``) raises
   if it does not get there, naming the adjoint solve.
"""

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, Bool, Int, PyTree

__all__ = ["ImplicitSolution"]


class ImplicitSolution(eqx.Module):
    """The solution of a `jaxpde.implicit` solve.

    **Fields:**

    - `value`: the solution (a pytree shaped like the initial guess or right-hand side).
    - `result`: the solver's ``RESULTS`` (lineax for `linear_solve`, optimistix for
      `root_find`/`fixed_point`, diffrax for `steady_state`); ``successful`` when converged.
    - `converged`: ``result == successful``, as a boolean array.
    - `num_steps`: iterations (Krylov, Newton, fixed-point) or accepted time steps.
    - `stats`: the underlying library's statistics dictionary.
    - `aux`: auxiliary output (`has_aux` functions; the diffrax solution for `steady_state`).
    """

    value: PyTree[Array]
    result: Any
    converged: Bool[Array, ""]
    num_steps: Int[Array, ""]
    stats: dict[str, Any]
    aux: Any = None


def _leaf_guard(x, ok, message):
    return eqx.error_if(x, jnp.invert(ok), message) if eqx.is_inexact_array(x) else x


@eqx.filter_custom_jvp
def _guard(value, ok, message):
    return value


@_guard.def_jvp
def _guard_jvp(primals, tangents, message):
    value, ok = primals
    t_value, _ = tangents
    # Runs only when a derivative is being taken (jvp, grad, vjp): this is the check.
    return jtu.tree_map(lambda x: _leaf_guard(x, ok, message), value), t_value


def _guard_derivative(value: PyTree[Array], ok: Bool[Array, ""], message: str) -> PyTree[Array]:
    """Identity on ``value``; differentiating it raises `message` unless ``ok`` (see module)."""
    return _guard(value, ok, message=message)


def _check_tolerance(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{owner}: `{name}` must be a non-negative number, got {value!r}.")


def _check_steps(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: `{name}` must be a positive integer, got {value!r}.")


def _check_options(owner: str, rtol, atol, max_steps, adjoint_rtol) -> float:
    """The checks every nonlinear solve makes; returns the adjoint tolerance (default `rtol`)."""
    _check_tolerance(owner, "rtol", rtol)
    _check_tolerance(owner, "atol", atol)
    _check_steps(owner, "max_steps", max_steps)
    adjoint_rtol = rtol if adjoint_rtol is None else adjoint_rtol
    _check_tolerance(owner, "adjoint_rtol", adjoint_rtol)
    return adjoint_rtol


def _first_error(owner, value, ok, message, throw):
    """Raise at run time when not converged (``throw``); always guard the derivative."""
    full = f"{owner}: {message}"
    if throw:
        value = jtu.tree_map(lambda x: _leaf_guard(x, ok, full), value)
    return _guard_derivative(value, ok, full + " Differentiating an unconverged solve would return a wrong gradient.")

