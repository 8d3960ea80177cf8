r"""Time stepping for the time-dependent datasets: solver names, step counts, trajectories.

The datasets integrate semi-linear PDEs ``u_t = L u + N(u)`` on periodic grids with the
exponential integrators of `jaxpde.numerics.etdrk` (Cox & Matthews 2002, Kassam & Trefethen
2005), through the lean `rollout` driver: constant steps, the state kept in Fourier space, only
the saved frames transformed back.

Times in the configs are physical (``time = 50.0``, ``save_interval = 1.0``); they must be
integer multiples of the step ``dt`` so that every saved frame falls exactly on a step — a
config whose times do not divide is rejected rather than rounded.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, Float

from ..numerics.etdrk import ETDRK1, ETDRK2, ETDRK3, ETDRK4, AbstractETDRK, rollout

__all__ = ["SOLVERS", "etdrk_solver", "num_steps", "trajectory"]

SOLVERS: dict[str, type[AbstractETDRK]] = {"ETDRK1": ETDRK1, "ETDRK2": ETDRK2, "ETDRK3": ETDRK3, "ETDRK4": ETDRK4}


def etdrk_solver(name: str, owner: str = "dataset") -> AbstractETDRK:
    """The ETDRK solver called `name` (``"ETDRK1"`` … ``"ETDRK4"``)."""
    if name not in SOLVERS:
        raise ValueError(f"{owner}: `solver` must be one of {tuple(SOLVERS)}, got {name!r}.")
    return SOLVERS[name]()


def num_steps(interval: float, dt: float, name: str, owner: str, allow_zero: bool = False) -> int:
    """``interval / dt`` as an integer, or a `ValueError` if `dt` does not divide `interval`."""
    if not dt > 0:
        raise ValueError(f"{owner}: `dt` must be positive, got {dt!r}.")
    if interval < 0 or (interval == 0 and not allow_zero):
        raise ValueError(f"{owner}: `{name}` must be {'>= 0' if allow_zero else 'positive'}, got {interval!r}.")
    steps = round(interval / dt)
    # Relative tolerance for the binary rounding of decimal inputs such as 1.0 / 1e-4.
    if not math.isclose(steps * dt, interval, rel_tol=1e-9, abs_tol=1e-12) or (steps == 0 and not allow_zero):
        raise ValueError(
            f"{owner}: `{name}` = {interval!r} must be an integer multiple of `dt` = {dt!r} "
            f"({name} / dt = {interval / dt!r})."
        )
    return int(steps)


def trajectory(
    pde,
    u0: Float[Array, "*state"],
    dt: float,
    steps_per_save: int,
    num_saves: int,
    solver: AbstractETDRK,
    burn_in_steps: int = 0,
) -> Float[Array, "frames *state"]:
    """The states at ``t = 0, Δ, 2Δ, …, num_saves Δ`` (``Δ = steps_per_save·dt``), after a burn-in.

    The burn-in steps are integrated first and discarded; frame 0 is the state after them.
    """
    if burn_in_steps:
        u0 = rollout(pde, u0, dt, burn_in_steps, solver)
    frames = rollout(pde, u0, dt, steps_per_save * num_saves, solver, save_every=steps_per_save)
    return jnp.concatenate([u0[None], frames], axis=0)
