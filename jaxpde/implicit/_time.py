r"""Time integration: which diffrax adjoint to use when, and `steady_state` by the implicit theorem.

**Gradients through `diffrax.diffeqsolve`** (measured in `benchmarks/implicit_vs_unrolled.py`):

- `diffrax.RecursiveCheckpointAdjoint` (diffrax's default; reverse mode through the solver
  steps with binomial checkpointing, Griewank & Walther 2000): the exact gradient of the
  discrete solve, memory ``O(n log N)`` for ``N`` steps, 2–5× the forward time (measured on
  ``u_t = ν u_xx + θu - u³``, 64 points, 500 Tsit5 steps: 56 KiB, 1.7–4.7× forward). The
  default choice: exact, works with every solver, event and `SaveAt`.
- `diffrax.BacksolveAdjoint` (the continuous adjoint of Chen et al. 2018, *Neural ODEs*):
  integrates the adjoint ODE backwards, memory ``O(n)`` independent of the step count, but the
  gradient is only as accurate as the backward solve's tolerance, and it fails on dissipative
  problems, whose state it re-integrates backwards in time: NaN on the problem above with
  ``ν = 0.01``, exact to 3·10⁻¹⁵ with ``ν = 0`` (20 KiB). For long, non-dissipative horizons
  where checkpoints do not fit.
- `diffrax.DirectAdjoint`: differentiable in forward and reverse mode, at the memory of full
  unrolling (248 KiB above, 4.4× the checkpointed); only when forward mode (`jax.jvp`,
  `jax.jacfwd`) is needed.
- `diffrax.ImplicitAdjoint` for a solve run *to a steady state*: `steady_state` below.

**Steady states.** ``y* = lim_{t→∞} y(t)`` of ``dy/dt = f(t, y, θ)`` solves ``f(y*, θ) = 0``;
`steady_state` integrates until ``‖f(t, y)‖ ≤ atol + rtol ‖y‖`` (`diffrax.steady_state_event`)
and differentiates by the implicit function theorem,

.. math::

    \bar\theta = -\Big(\frac{\partial f}{\partial\theta}\Big)^{\!\top}\lambda,\qquad
    \Big(\frac{\partial f}{\partial y}\Big)^{\!\top}\lambda = \bar y,

with `diffrax.ImplicitAdjoint` given a matrix-free, checked GMRES (`matrix_free_adjoint`'s
`CheckedSolver`) instead of its dense default: memory independent of the (often thousands
of) time steps of the transient, and no ``n × n`` Jacobian. Time integration is the robust way
to a steady state that Newton (`root_find`) cannot reach from a poor initial guess.
"""

from collections.abc import Callable

import diffrax
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx
from jaxtyping import PyTree

from ._adjoint import CheckedSolver
from ._solution import ImplicitSolution, _check_options, _first_error

__all__ = ["steady_state"]

_ADJOINTS = {
    "checkpoint": diffrax.RecursiveCheckpointAdjoint,
    "backsolve": diffrax.BacksolveAdjoint,
    "direct": diffrax.DirectAdjoint,
}


def steady_state(
    rhs: Callable,
    y0: PyTree,
    args: PyTree = None,
    *,
    solver: diffrax.AbstractSolver | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-6,
    dt0: float = 0.1,
    max_steps: int = 4096,
    adjoint: str | diffrax.AbstractAdjoint = "implicit",
    adjoint_rtol: float | None = None,
    linear_solver: lx.AbstractLinearSolver | None = None,
    throw: bool = True,
) -> ImplicitSolution:
    r"""Integrate ``dy/dt = rhs(t, y, args)`` from ``y0`` until steady; differentiable in `args`.

    **Arguments:**

    - `rhs`: the vector field ``rhs(t, y, args)`` (autonomous at the steady state).
    - `y0`: the initial condition (gradients do not flow to it: the steady state does not
      depend on it, only on `args`).
    - `solver`: a diffrax solver; default `diffrax.Tsit5` (explicit, so matrix-free). For a
      stiff transient pass an implicit one with a Krylov Newton, e.g.
      ``diffrax.Kvaerno5(root_finder=optimistix.Newton(rtol, atol, linear_solver=Preconditioned(
      Jacobi(stencil_reach=1), method="gmres", atol=…)))`` — diffrax's default root finder
      factorises the dense Jacobian.
    - `rtol`, `atol`: the step-size controller's tolerances and the steady-state test
      ``‖rhs‖_RMS ≤ atol + rtol ‖y‖_RMS``.
    - `dt0`: the first step; `max_steps`: cap on time steps (reaching it is a failure).
    - `adjoint`: ``"implicit"`` (default; `diffrax.ImplicitAdjoint` with a matrix-free checked
      solve), ``"checkpoint"`` / ``"backsolve"`` / ``"direct"`` (differentiate the transient:
      for comparison), or any `diffrax.AbstractAdjoint`.
    - `adjoint_rtol`: the adjoint solve's tolerance relative to the cotangent (default `rtol`).
    - `linear_solver`: the adjoint solver (default `lineax.GMRES`); a ``Preconditioned`` one or
      jaxpde's ``ConjugateGradient`` (for a symmetric ``∂f/∂y``) fits here.
    - `throw`: raise when no steady state is reached within `max_steps`; with ``throw=False``
      the last state comes back flagged, and differentiating it raises.

    **Returns:** an `ImplicitSolution` (``value`` the steady state, ``num_steps`` accepted steps,
    ``aux`` the `diffrax.Solution`).
    """
    owner = "steady_state"
    adjoint_rtol = _check_options(owner, rtol, atol, max_steps, adjoint_rtol)
    if solver is None:
        solver = diffrax.Tsit5()
    elif not isinstance(solver, diffrax.AbstractSolver):
        raise TypeError(f"{owner}: `solver` must be a diffrax.AbstractSolver, got {type(solver).__name__}.")
    if adjoint == "implicit":
        if linear_solver is None:
            linear_solver = lx.GMRES(rtol=adjoint_rtol, atol=adjoint_rtol)
        adjoint = diffrax.ImplicitAdjoint(CheckedSolver(linear_solver, f"{owner}: the adjoint linear solve (implicit function theorem)"))
    elif isinstance(adjoint, str) and adjoint in _ADJOINTS:
        adjoint = _ADJOINTS[adjoint]()
    elif not isinstance(adjoint, diffrax.AbstractAdjoint):
        raise ValueError(
            f"{owner}: `adjoint` must be 'implicit', 'checkpoint', 'backsolve', 'direct' or a diffrax.AbstractAdjoint, "
            f"got {adjoint!r}."
        )
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs),
        solver,
        t0=0.0,
        t1=jnp.inf,
        dt0=dt0,
        y0=y0,
        args=args,
        saveat=diffrax.SaveAt(t1=True),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        event=diffrax.Event(diffrax.steady_state_event(rtol=rtol, atol=atol)),
        adjoint=adjoint,
        max_steps=max_steps,
        throw=False,
    )
    ok = solution.result == diffrax.RESULTS.event_occurred
    value = _first_error(
        owner,
        jtu.tree_map(lambda y: y[-1], solution.ys),
        ok,
        f"no steady state within max_steps={max_steps} time steps of {type(solver).__name__} (or the solve failed). "
        "Raise max_steps or dt0, loosen rtol/atol, or check that the dynamics settle; pass throw=False to inspect "
        "the result.",
        throw,
    )
    return ImplicitSolution(value, solution.result, ok, solution.stats["num_accepted_steps"], solution.stats, solution)
