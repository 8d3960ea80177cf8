r"""`sample`: the driver that runs any sampler on any grid, and says exactly what it cost.

Given a denoiser (a model, what it predicts, its schedule), starting points $x_{t_{\mathrm{start}}}$
(usually $\mathcal N(0, I)$), a sampler and a grid or an NFE budget, `sample` integrates

- the probability-flow ODE with an `AbstractDiffusionSolver` (DDIM, DPM-Solver, DPM-Solver++,
  UniPC, EDM's Heun) or any diffrax ODE solver (`diffrax.Euler`, `diffrax.Heun`,
  `diffrax.Tsit5`, …), or
- the reverse SDE (pass a `key`) with a diffrax SDE solver (`diffrax.Euler` is
  Euler–Maruyama, `diffrax.SRA1`, `diffrax.ShARK`) on a `diffrax.VirtualBrownianTree`,

with ``diffrax.StepTo`` on the grid, and returns the end points with the **exact** number of
model evaluations (NFE). diffrax reports steps, not evaluations; `evaluations` knows every
sampler's cost per step (for diffrax's Runge–Kutta solvers from their tableaux: stages per
step, minus the first-same-as-last reuse, plus one evaluation in ``init``), and the tests count
real model calls against it. An NFE budget becomes the largest number of steps that fits in
it, and the grid ends exactly at ``t_end`` — no step is ever spent on a sliver.

`solve` is the same solve without the checks and the budget arithmetic: a pure function of
the time grid, for `jax.jit` and `jax.grad` (the learned schedules differentiate through it).
"""

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._grids import AbstractTimeGrid, _check_times
from ._parameterisation import Denoiser
from ._schedules import AbstractSchedule
from ._sde import brownian_motion, reverse_sde
from ._solvers import AbstractDiffusionSolver, DiffusionTerm

__all__ = ["sample", "solve", "evaluations", "steps_for_nfe", "SampleResult"]


class SampleResult(eqx.Module):
    """What `sample` returns.

    - `ys`: the end points (shape of the starting points), or the states at `saveat`'s times.
    - `ts`: the time grid the sampler stepped on (decreasing, ``ts[0] = t_start``, ``ts[-1] = t_end``).
    - `nfe`: model evaluations spent, exactly.
    - `num_steps`: steps taken (``len(ts) - 1``).
    """

    ys: Array
    ts: Float[Array, " n"]
    nfe: int = eqx.field(static=True)
    num_steps: int = eqx.field(static=True)


# ---- the cost of a solve ------------------------------------------------------------------------


def _stages_and_fsal(solver) -> tuple[int, bool] | None:
    tableau = getattr(type(solver), "tableau", None)
    if isinstance(tableau, diffrax.ButcherTableau):
        return len(tableau.c) + 1, bool(tableau.fsal)
    if isinstance(tableau, diffrax.StochasticButcherTableau):
        ignored = 0 if tableau.ignore_stage_f is None else int(np.sum(tableau.ignore_stage_f))
        return len(tableau.b_sol) - ignored, False
    return None


def evaluations(solver: diffrax.AbstractSolver, num_steps: int) -> int:
    """The exact number of model evaluations of a `num_steps`-step solve with `solver`.

    `AbstractDiffusionSolver`\\ s state it themselves; diffrax's Euler costs one per step; an
    explicit Runge–Kutta method (ODE or SDE) costs its stages per step, an FSAL one (Tsit5,
    Dopri5, Dopri8, Bosh3) one fewer per step plus one in ``init``. Anything else raises.
    """
    num_steps = int(num_steps)
    if isinstance(solver, AbstractDiffusionSolver):
        return solver.evaluations(num_steps)
    if type(solver) is diffrax.Euler:
        return num_steps
    stages = _stages_and_fsal(solver)
    if stages is None or isinstance(solver, diffrax.AbstractImplicitSolver):
        raise ValueError(
            f"evaluations: the NFE of {type(solver).__name__} is not known; use an AbstractDiffusionSolver, "
            "diffrax.Euler or an explicit diffrax Runge-Kutta solver."
        )
    n, fsal = stages
    return (n - 1) * num_steps + 1 if fsal else n * num_steps


def _min_steps(solver) -> int:
    return solver.min_steps if isinstance(solver, AbstractDiffusionSolver) else 1


def steps_for_nfe(solver: diffrax.AbstractSolver, nfe: int) -> int:
    """The most steps whose cost `evaluations` fits in `nfe`; raises if fewer than the solver's order needs."""
    if isinstance(nfe, bool) or not isinstance(nfe, (int, np.integer)) or nfe < 1:
        raise ValueError(f"sample: `nfe` must be a positive integer, got {nfe!r}.")
    steps = 0
    while evaluations(solver, steps + 1) <= nfe:
        steps += 1
    need = _min_steps(solver)
    if steps < need:
        raise ValueError(
            f"sample: `nfe` = {nfe} is fewer than {type(solver).__name__} needs for its order: at least "
            f"{evaluations(solver, need)} model evaluations ({need} step{'s' if need > 1 else ''})."
        )
    return steps


# ---- the solve ------------------------------------------------------------------------------------


def solve(
    term: DiffusionTerm,
    solver: diffrax.AbstractSolver,
    ts: Float[Array, " n"],
    x: Array,
    *,
    brownian: diffrax.AbstractBrownianPath | None = None,
    saveat: diffrax.SaveAt | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
):
    """``diffrax.diffeqsolve`` of the probability-flow ODE (or, with `brownian`, the reverse SDE) on the grid `ts`.

    `ts` decreases from ``ts[0]`` (noise) to ``ts[-1]`` (data); its length is static, its values
    may be traced (and differentiated). `brownian` is a Brownian motion on
    ``[0, ts[0] - ts[-1]]`` (`brownian_motion`). Returns the `diffrax.Solution`; for the SDE its
    times are the elapsed times ``ts[0] - t``.
    """
    num_steps = ts.shape[0] - 1
    if term.t_end is None:
        # The samplers' last-step rules (`final_order`) recognise the end by it.
        term = DiffusionTerm(term.denoiser, term.event_shape, t_end=ts[-1])
    saveat = diffrax.SaveAt(t1=True) if saveat is None else saveat
    adjoint = diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint
    if brownian is None:
        return diffrax.diffeqsolve(
            term, solver, ts[0], ts[-1], None, x, stepsize_controller=diffrax.StepTo(ts),
            saveat=saveat, adjoint=adjoint, max_steps=num_steps,
        )
    taus = ts[0] - ts
    return diffrax.diffeqsolve(
        reverse_sde(term, brownian, ts[0]), solver, taus[0], taus[-1], None, x,
        stepsize_controller=diffrax.StepTo(taus), saveat=saveat, adjoint=adjoint, max_steps=num_steps,
    )


def sample(
    denoiser: Denoiser | Callable,
    x: Array,
    *,
    solver: diffrax.AbstractSolver,
    grid: AbstractTimeGrid | Array,
    nfe: int | None = None,
    num_steps: int | None = None,
    schedule: AbstractSchedule | None = None,
    parameterisation: str | None = None,
    t_start: float | None = None,
    t_end: float | None = None,
    key: PRNGKeyArray | None = None,
    saveat: diffrax.SaveAt | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
) -> SampleResult:
    r"""Sample from a diffusion model: integrate from ``t_start`` down to ``t_end`` starting at `x`.

    **Arguments:**

    - `denoiser`: a `jaxpde.samplers.Denoiser`, or a model ``model(x, t) -> prediction`` together
      with `schedule` and `parameterisation` (``"eps"``, ``"x0"``, ``"v"``, ``"score"``, ``"flow"``).
      The model maps one sample.
    - `x`: starting points, shape ``(n, *sample_shape)``.
    - `solver`: an `AbstractDiffusionSolver`, a diffrax ODE solver, or (with `key`) a diffrax SDE
      solver.
    - `grid`: an `AbstractTimeGrid` (with `nfe` or `num_steps`), or the times themselves
      (decreasing, from ``t_start`` to ``t_end``).
    - `nfe`: the model-evaluation budget; the solver takes the most steps that fit in it.
    - `num_steps`: the number of steps instead.
    - `t_start`, `t_end`: default the schedule's ``t_max`` and ``t_min``.
    - `key`: sample the reverse SDE with this key instead of the probability-flow ODE.
    - `saveat`, `adjoint`: as `diffrax.diffeqsolve` (default: the end point; recursive checkpointing).

    Errors name the argument: an unknown `parameterisation`, an `nfe` below what the solver's
    order needs, a time outside the schedule, a model whose output has the wrong shape.
    """
    if isinstance(denoiser, Denoiser):
        if schedule is not None or parameterisation is not None:
            raise ValueError("sample: give `schedule` and `parameterisation` only with a plain model, not with a Denoiser.")
    else:
        if not callable(denoiser):
            raise TypeError(f"sample: `denoiser` must be a Denoiser or a callable model, got {type(denoiser).__name__}.")
        if schedule is None or parameterisation is None:
            raise ValueError("sample: a plain model needs `schedule` and `parameterisation` (or pass a Denoiser).")
        denoiser = Denoiser(denoiser, schedule, parameterisation)
    schedule = denoiser.schedule
    x = jnp.asarray(x)
    if x.ndim < 1:
        raise ValueError(f"sample: `x` must be a batch of starting points, shape (n, *sample_shape), got {x.shape}.")
    if not isinstance(solver, diffrax.AbstractSolver):
        raise TypeError(f"sample: `solver` must be a diffrax.AbstractSolver, got {type(solver).__name__}.")
    if key is not None and isinstance(solver, AbstractDiffusionSolver):
        raise ValueError(f"sample: {type(solver).__name__} integrates the probability-flow ODE; pass `key` only with an SDE solver.")
    t_start = schedule.t_max if t_start is None else t_start
    t_end = schedule.t_min if t_end is None else t_end

    if isinstance(grid, AbstractTimeGrid):
        if (nfe is None) == (num_steps is None):
            raise ValueError("sample: give exactly one of `nfe` and `num_steps` with a grid rule.")
        if nfe is not None:
            num_steps = steps_for_nfe(solver, nfe)
        elif num_steps < _min_steps(solver):
            raise ValueError(f"sample: `num_steps` must be at least {_min_steps(solver)} for {type(solver).__name__}, got {num_steps}.")
        ts = grid(schedule, num_steps, t_start, t_end, x.dtype)
    else:
        ts = jnp.asarray(grid, x.dtype)
        if ts.ndim != 1 or ts.shape[0] < 2:
            raise ValueError(f"sample: `grid` as times must be a vector of at least 2, got shape {ts.shape}.")
        _check_times("sample", schedule, ts.shape[0] - 1, float(ts[0]), float(ts[-1]))
        if not bool(jnp.all(jnp.diff(ts) < 0)):
            raise ValueError("sample: `grid` as times must decrease strictly, from t_start (noise) to t_end (data).")
        num_steps = ts.shape[0] - 1
        if nfe is not None and evaluations(solver, num_steps) > nfe:
            raise ValueError(f"sample: the {num_steps}-step `grid` costs {evaluations(solver, num_steps)} NFE, over `nfe` = {nfe}.")
    cost = evaluations(solver, num_steps)
    term = DiffusionTerm(denoiser, event_shape=x.shape[1:])
    brownian = None
    if key is not None:
        # The tree resolves times to well below the smallest step.
        tol = float(jnp.min(-jnp.diff(ts))) / 64
        brownian = brownian_motion(key, t_start - t_end, x.shape, x.dtype, tol=tol)
    solution = _jitted_solve(term, solver, ts, x, brownian, saveat, adjoint)
    ys = solution.ys[-1] if saveat is None else solution.ys
    return SampleResult(ys=ys, ts=ts, nfe=cost, num_steps=num_steps)


@eqx.filter_jit
def _jitted_solve(term, solver, ts, x, brownian, saveat, adjoint):
    return solve(term, solver, ts, x, brownian=brownian, saveat=saveat, adjoint=adjoint)
