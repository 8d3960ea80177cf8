r"""Learned few-step schedules: the time grid optimised by differentiating through the sampler.

At a fixed, small NFE the error of a sampler depends on where its steps are. Align Your Steps
(Sabour et al. 2024) and bespoke solvers (Shaul et al. 2024) optimise the grid against a fine
reference solve; here, directly: with $x^{(j)}_{t_{\mathrm{start}}}$ training starting points and
$x^{\star(j)}$ their end points from a Dopri8 solve of the same probability-flow ODE at
$\mathrm{rtol} = \mathrm{atol} = 10^{-10}$ (`reference_endpoints`),

$$\min_\theta\ \frac1J\sum_j \big\| \Phi_{\mathrm{sampler}}\big(x^{(j)}; t(\theta)\big)
    - x^{\star(j)} \big\|_2 ,$$

the mean $L_2$ distance of the benchmark, over the grid of a `LearnedGrid`: $\lambda$ increments
$\propto \mathrm{softmax}(\theta)$, so every $\theta$ is a valid, monotone grid with the exact
ends and the same NFE. The gradient is `jax.grad` through `diffrax.diffeqsolve` (recursive
checkpointing), the optimiser any optax transformation (Adam by default). The grid starts at
any fixed grid (`LearnedGrid.from_grid`), so the result is never worse than its start on the
training points, and is checked on held-out points.

References:

- A. Sabour, S. Fidler and K. Kreis, "Align your steps: optimizing sampling schedules in
  diffusion models", ICML 2024.
- N. Shaul, J. Perez, R. T. Q. Chen, A. Thabet, A. Pumarola and Y. Lipman, "Bespoke solvers
  for generative flow models", ICLR 2024.
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array

from ._grids import AbstractTimeGrid, LearnedGrid, TimeQuadratic
from ._parameterisation import Denoiser
from ._sample import _min_steps, solve
from ._solvers import DiffusionTerm

__all__ = ["learn_schedule", "reference_endpoints", "mean_l2_error"]


def mean_l2_error(y: Array, reference: Array) -> Array:
    """Mean over samples of the Euclidean distance between end points (the benchmark's error)."""
    axes = tuple(range(1, y.ndim))
    return jnp.mean(jnp.sqrt(jnp.sum((y - reference) ** 2, axis=axes)))


@eqx.filter_jit
def reference_endpoints(denoiser: Denoiser, x: Array, t_start: float, t_end: float, rtol: float = 1e-10, atol: float = 1e-10) -> Array:
    """End points of the probability-flow ODE from `x` at ``t_start`` to ``t_end`` by Dopri8 at `rtol`, `atol`.

    Each sample is solved on its own (`jax.vmap` over the batch), so the step sizes and the
    tolerance hold per sample, not for the batch's RMS. Use float64 for tight tolerances.
    """
    term = DiffusionTerm(denoiser)

    def one(x0):
        return diffrax.diffeqsolve(
            term, diffrax.Dopri8(), t_start, t_end, -(t_start - t_end) / 100, x0,
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), max_steps=100_000,
        ).ys[-1]

    return jax.vmap(one)(x)


def learn_schedule(
    denoiser: Denoiser,
    solver: diffrax.AbstractSolver,
    x: Array,
    reference: Array,
    num_steps: int,
    *,
    init: AbstractTimeGrid = TimeQuadratic(),
    t_start: float | None = None,
    t_end: float | None = None,
    optimiser: optax.GradientTransformation | None = None,
    iterations: int = 100,
) -> tuple[LearnedGrid, dict]:
    """Optimise a `num_steps`-step `LearnedGrid` for `solver` so its end points from `x` approach `reference`.

    **Arguments:**

    - `denoiser`: the model the sampler runs (a `jaxpde.samplers.Denoiser`).
    - `solver`: the sampler (an `AbstractDiffusionSolver` or a diffrax ODE solver).
    - `x`, `reference`: training starting points ``(n, *sample_shape)`` and their reference end
      points (`reference_endpoints`).
    - `num_steps`: steps of the grid (the NFE is the solver's cost for that many steps).
    - `init`: the grid to start from (default time-quadratic).
    - `t_start`, `t_end`: default the schedule's ``t_max`` and ``t_min``.
    - `optimiser`: default ``optax.adam(0.05)``.
    - `iterations`: optimiser steps.

    Returns the learned grid and ``{"loss": [...], "initial_loss", "final_loss"}``: the
    training loss before each step and after the last; the returned grid is the best seen.
    """
    schedule = denoiser.schedule
    t_start = schedule.t_max if t_start is None else t_start
    t_end = schedule.t_min if t_end is None else t_end
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < max(2, _min_steps(solver)):
        raise ValueError(
            f"learn_schedule: `num_steps` must be an integer >= {max(2, _min_steps(solver))} for {type(solver).__name__}, "
            f"got {num_steps!r}."
        )
    if reference.shape != x.shape:
        raise ValueError(f"learn_schedule: `reference` must have the shape of `x` {x.shape}, got {reference.shape}.")
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"learn_schedule: `iterations` must be a positive integer, got {iterations!r}.")
    optimiser = optax.adam(0.05) if optimiser is None else optimiser
    term = DiffusionTerm(denoiser, event_shape=x.shape[1:])
    grid = LearnedGrid.from_grid(init, schedule, num_steps, t_start, t_end, x.dtype)

    def loss(grid):
        ts = grid(schedule, num_steps, t_start, t_end, x.dtype)
        return mean_l2_error(solve(term, solver, ts, x).ys[-1], reference)

    @eqx.filter_jit
    def step(grid, opt_state):
        value, grads = eqx.filter_value_and_grad(loss)(grid)
        updates, opt_state = optimiser.update(grads, opt_state, grid)
        return eqx.apply_updates(grid, updates), opt_state, value

    opt_state = optimiser.init(grid)
    history, best, best_value = [], grid, jnp.inf
    for _ in range(iterations):
        new_grid, opt_state, value = step(grid, opt_state)
        value = float(value)
        history.append(value)
        if value < best_value:
            best, best_value = grid, value
        grid = new_grid
    final = float(eqx.filter_jit(loss)(grid))
    if final < best_value:
        best, best_value = grid, final
    return best, {"loss": history, "initial_loss": history[0], "final_loss": best_value}
