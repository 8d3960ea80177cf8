r"""`fixed_point`: ``z* = f(z*, θ)``, differentiated by the implicit function theorem.

With ``F(z, θ) = f(z, θ) - z = 0`` at the fixed point,

.. math::

    \frac{\mathrm{d} z^*}{\mathrm{d} \theta} = (I - \partial_z f)^{-1} \, \partial_\theta f,
    \qquad \bar\theta = (\partial_\theta f)^{\top} \lambda, \quad
    (I - \partial_z f)^{\top} \lambda = \bar z,

so the backward pass is one linear solve with ``I - (∂_z f)ᵀ`` (vector–Jacobian products of
``f`` only), at memory independent of the number of forward iterations — the deep-equilibrium
gradient (Bai, Kolter & Koltun 2019). For a contraction (``‖∂_z f‖ < 1``) that system is
well conditioned and GMRES converges at least as fast as the forward iteration did.

``adjoint="unrolled"`` differentiates through the iterations instead
(`optimistix.RecursiveCheckpointAdjoint`): the same gradient up to the forward tolerance, at
memory and time that grow with the iteration count (`benchmarks/implicit_vs_unrolled.py`).
"""

from collections.abc import Callable

import optimistix as optx
from jaxtyping import PyTree

from ._adjoint import _resolve_adjoint
from ._anderson import AndersonAcceleration
from ._solution import ImplicitSolution, _check_options, _first_error

__all__ = ["fixed_point"]


def fixed_point(
    fn: Callable,
    z0: PyTree,
    args: PyTree = None,
    *,
    solver: optx.AbstractFixedPointSolver | optx.AbstractRootFinder | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-6,
    max_steps: int = 256,
    adjoint: str | optx.AbstractAdjoint = "implicit",
    adjoint_rtol: float | None = None,
    has_aux: bool = False,
    throw: bool = True,
) -> ImplicitSolution:
    r"""The fixed point ``z* = fn(z*, args)``, differentiable in `args` at constant memory.

    **Arguments:**

    - `fn`: ``fn(z, args) -> z`` (same pytree structure), or ``(z, aux)`` with `has_aux`.
    - `z0`: the initial guess.
    - `args`: everything `fn` depends on that gradients should flow to.
    - `solver`: an `optimistix.AbstractFixedPointSolver` or root finder; default
      ``AndersonAcceleration(rtol, atol)``. A given `solver` carries its own tolerances.
    - `rtol`, `atol`: tolerances of the default solver.
    - `max_steps`: iteration cap; reaching it is a failure.
    - `adjoint`: ``"implicit"`` (default: implicit function theorem, matrix-free GMRES on
      ``(I - ∂f/∂z)ᵀ``, checked), ``"unrolled"`` (reverse mode through the iterations), or any
      `optimistix.AbstractAdjoint` (an `optimistix.ImplicitAdjoint`'s solver is checked too; a
      `jaxpde.preconditioners.Preconditioned` solver there preconditions the adjoint solve).
    - `adjoint_rtol`: tolerance of the default adjoint GMRES, relative to the cotangent's max
      norm (default: `rtol`).
    - `has_aux`: `fn` returns ``(z, aux)``.
    - `throw`: raise when the forward iteration does not converge. With ``throw=False`` the
      solution comes back with its `result`, but differentiating it still raises.

    **Returns:** an `ImplicitSolution` (``value`` the fixed point, ``num_steps`` iterations).
    """
    owner = "fixed_point"
    adjoint_rtol = _check_options(owner, rtol, atol, max_steps, adjoint_rtol)
    if solver is None:
        solver = AndersonAcceleration(rtol=rtol, atol=atol)
    elif not isinstance(solver, (optx.AbstractFixedPointSolver, optx.AbstractRootFinder)):
        raise TypeError(
            f"{owner}: `solver` must be an optimistix.AbstractFixedPointSolver or AbstractRootFinder, got "
            f"{type(solver).__name__}."
        )
    adjoint = _resolve_adjoint(owner, adjoint, adjoint_rtol, None)
    solution = optx.fixed_point(
        fn, solver, z0, args, has_aux=has_aux, max_steps=max_steps, adjoint=adjoint, throw=False
    )
    ok = solution.result == optx.RESULTS.successful
    value = _first_error(
        owner,
        solution.value,
        ok,
        f"the iteration did not converge within max_steps={max_steps} (or its iterates became non-finite) with "
        f"{type(solver).__name__}. Raise max_steps, loosen the tolerances, or check that fn is a contraction "
        "near the fixed point; pass throw=False to inspect the result.",
        throw,
    )
    return ImplicitSolution(value, solution.result, ok, solution.stats["num_steps"], solution.stats, solution.aux)
