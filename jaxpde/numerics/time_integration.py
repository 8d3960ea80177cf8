r"""Time integration in one place: `solve` (any diffrax solver), `rollout` and `trajectory`.

Three drivers for time-dependent PDEs ``∂_t u = F(t, u)``, from the most general to the leanest:

- `solve` — `diffrax.diffeqsolve` on a constant-step `diffrax.StepTo` grid with ``n =
  round((t1 - t0)/dt)`` equal steps. Any diffrax solver: the ETDRK schemes of
  `jaxpde.numerics.etdrk` get the PDE's `SemiLinearTerm`, IMEX solvers (`diffrax.KenCarp4`) its
  ``imex_terms()``, explicit and implicit ones the method-of-lines ``ODETerm(pde.rhs)``. It is
  the one to use for adjoints, `diffrax.SaveAt`, events and dense output.
- `rollout` — the same ETDRK schemes and coefficients without diffrax's loop machinery: the
  ``φ``-weights computed once for ``dt``, the state kept as its rfft between steps (two FFTs
  fewer per step), only saved states transformed back, a `jax.lax.scan`. For bulk data.
- `trajectory` — the dataset layout on top of `rollout`: frames ``u(kΔ)``, ``k = 0, …, K``,
  *including* ``t = 0``, after an optional discarded burn-in (the transient onto an attractor).

All three vmap, jit and differentiate (reverse mode through diffrax's checkpointed loop or the
scan). Inputs are checked up front with errors that name the argument: the step and the span
must be concrete positive numbers (they fix the number of steps), the state must have the PDE's
shape, and a non-finite initial state is refused — a `ValueError` for a concrete ``u0``, an
`equinox.error_if` runtime error under `jax.jit` — instead of integrating NaNs silently.

References: Cox & Matthews, J. Comput. Phys. 176 (2002) 430–455 and Kassam & Trefethen,
SIAM J. Sci. Comput. 26 (2005) 1214–1233 (the ETDRK schemes); Kidger, "On Neural Differential
Equations" (2021), ch. 5 (diffrax's design).
"""

from __future__ import annotations

import math
from typing import get_origin

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PyTree

from .etdrk import AbstractETDRK, ETDRK4, SemiLinearTerm

__all__ = ["solve", "rollout", "trajectory"]




def _semilinear_term(problem) -> SemiLinearTerm:
    if isinstance(problem, SemiLinearTerm):
        return problem
    make = getattr(problem, "semilinear_term", None)
    if make is None:
        raise TypeError(
            "Expected a SemiLinearTerm or a semi-linear PDE (with a `semilinear_term()` method), "
            f"got {type(problem).__name__}."
        )
    return make()


def _state_shape(problem, term: SemiLinearTerm | None) -> tuple[int, ...] | None:
    shape = getattr(problem, "state_shape", None)
    if shape is not None:
        return tuple(shape)
    if term is not None:
        channels = term.symbol_real.shape[: -term.grid.ndim]
        return (*channels, *term.grid.shape)
    return None


def _check_state(u0, expected: tuple[int, ...] | None, name: str = "u0") -> None:
    shape = tuple(np.shape(u0))
    if expected is not None and shape != expected:
        raise ValueError(f"`{name}` has shape {shape}, expected {expected} (the PDE's state shape).")


def _as_float(u0) -> Array:
    u0 = jnp.asarray(u0)
    if jnp.iscomplexobj(u0):
        raise TypeError("The state must be a real field; got a complex array for `u0`.")
    if not jnp.issubdtype(u0.dtype, jnp.floating):
        u0 = u0.astype(jnp.result_type(float))
    return u0


def _check_finite(u0: Array, caller: str) -> Array:
    """`u0` unchanged if every entry is finite; otherwise an error naming it.

    A NaN or Inf initial state would be integrated into an all-NaN solution without a word (the
    ETDRK steps and diffrax's `StepTo` loop never look at the values). Concrete: `ValueError`
    with the count. Traced (inside `jax.jit`, `jax.vmap`, `jax.grad`): `equinox.error_if`, which
    raises at run time and is the identity for differentiation.
    """
    message = f"{caller}: `u0` must be finite everywhere (a NaN/Inf initial state gives a NaN solution)"
    if isinstance(u0, jax.core.Tracer):
        return eqx.error_if(u0, ~jnp.all(jnp.isfinite(u0)), message + ".")
    values = np.asarray(u0)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"{message}; {int(bad.sum())} of {values.size} values are not (e.g. {values[bad][0]!r}).")
    return u0


def _concrete_positive(value, name: str, caller: str) -> float:
    try:
        value = float(value)
    except (TypeError, jax.errors.ConcretizationTypeError):
        raise TypeError(
            f"{caller}: `{name}` must be a concrete Python number (it fixes the number of steps), "
            "not a traced value; close over it instead of passing it through jit."
        ) from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{caller}: `{name}` must be positive and finite, got {value!r}.")
    return value


def _default_terms(problem, solver):
    """The term(s) a given diffrax solver needs from a PDE."""
    if isinstance(solver, AbstractETDRK):
        return _semilinear_term(problem)
    if isinstance(problem, diffrax.AbstractTerm):
        return problem
    if get_origin(solver.term_structure) is diffrax.MultiTerm:
        return problem.imex_terms()
    return diffrax.ODETerm(problem.rhs)


def solve(
    problem,
    u0: Float[ArrayLike, "*state"],
    t1: float,
    dt: float,
    solver: diffrax.AbstractSolver | None = None,
    *,
    t0: float = 0.0,
    saveat: diffrax.SaveAt | None = None,
    args: PyTree = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
) -> diffrax.Solution:
    r"""Integrate a PDE from ``t0`` to ``t1`` with constant steps via `diffrax.diffeqsolve`.

    The interval is cut into ``n = max(1, round((t1 - t0) / dt))`` equal steps of size
    ``(t1 - t0) / n`` (a `diffrax.StepTo` grid), so there is never a sliver step at the end and
    the final time is hit exactly. ``dt`` is therefore honoured to within the rounding that makes
    the steps divide the interval.

    **Arguments:**

    - `problem`: a semi-linear PDE from `jaxpde.pdes` or a `SemiLinearTerm`; with a non-ETDRK
      solver also any PDE with ``rhs`` (method of lines; IMEX solvers such as `diffrax.KenCarp4`
      get ``problem.imex_terms()``).
    - `u0`: initial state, shape ``problem.state_shape``.
    - `t1`, `dt`: final time and step size (concrete Python numbers, ``dt > 0``, ``t1 > t0``).
    - `solver`: default `ETDRK4()`; any diffrax solver works on the method-of-lines terms (an
      implicit one with a fixed step needs its root-finder tolerances set, e.g.
      ``diffrax.KenCarp4(root_finder=optimistix.Newton(rtol=1e-8, atol=1e-10))``).
    - `saveat`: default ``SaveAt(t1=True)``.
    - `args`: passed to the vector fields.
    - `adjoint`: default `diffrax.RecursiveCheckpointAdjoint()`.

    **Returns:** the `diffrax.Solution` (``sol.ys`` holds the saved states).
    """
    solver = ETDRK4() if solver is None else solver
    dt = _concrete_positive(dt, "dt", "solve")
    t0 = float(t0)
    span = _concrete_positive(float(t1) - t0, "t1 - t0", "solve")
    terms = _default_terms(problem, solver)
    expected = _state_shape(problem, terms if isinstance(terms, SemiLinearTerm) else None)
    _check_state(u0, expected)
    n_steps = max(1, round(span / dt))
    ts = t0 + span * np.arange(n_steps + 1) / n_steps
    ts[-1] = float(t1)
    u0 = _check_finite(_as_float(u0), "solve")
    ts = jnp.asarray(ts, dtype=u0.dtype)
    return diffrax.diffeqsolve(
        terms,
        solver,
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=u0,
        args=args,
        saveat=diffrax.SaveAt(t1=True) if saveat is None else saveat,
        stepsize_controller=diffrax.StepTo(ts=ts),
        adjoint=diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint,
        max_steps=n_steps,
    )


def rollout(
    problem,
    u0: Float[ArrayLike, "*state"],
    dt: float,
    num_steps: int,
    solver: AbstractETDRK | None = None,
    *,
    t0: float = 0.0,
    save_every: int | None = None,
    args: PyTree = None,
) -> Float[Array, "..."]:
    r"""Lean constant-step ETDRK stepping with `jax.lax.scan`, staying in Fourier space.

    The same schemes and coefficients as the diffrax path, without diffrax's loop machinery: the
    weights are computed once for ``dt`` outside the scan, the state is kept as its rfft between
    steps (two FFTs fewer per step than a physical-space state), and only saved states are
    transformed back. Use it for bulk data generation; use `solve` (diffrax) for adjoints, dense
    output, events and adaptive stepping. Differentiable with `jax.grad` (reverse mode through the
    scan) and batchable with `jax.vmap`.

    **Arguments:**

    - `problem`: a semi-linear PDE or a `SemiLinearTerm`.
    - `u0`: initial state, shape ``problem.state_shape``.
    - `dt`: step size (> 0). `num_steps`: number of steps (>= 1).
    - `solver`: an ETDRK solver (default `ETDRK4()`).
    - `save_every`: ``None`` returns the final state only; ``k`` returns the states after every
      ``k`` steps, shape ``(num_steps // k, *state)`` (``num_steps`` must be a multiple of ``k``).
    """
    solver = ETDRK4() if solver is None else solver
    if not isinstance(solver, AbstractETDRK):
        raise TypeError(f"rollout: `solver` must be an ETDRK solver, got {type(solver).__name__}.")
    dt = _concrete_positive(dt, "dt", "rollout")
    if not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise ValueError(f"rollout: `num_steps` must be a positive integer, got {num_steps!r}.")
    if save_every is not None:
        if not isinstance(save_every, (int, np.integer)) or save_every < 1 or num_steps % save_every:
            raise ValueError(
                f"rollout: `save_every` must be a positive divisor of num_steps={num_steps}, got {save_every!r}."
            )
    term = _semilinear_term(problem)
    _check_state(u0, _state_shape(problem, term))
    u0 = _check_finite(_as_float(u0), "rollout")
    u_hat = term.to_spectral(u0)
    real_dtype = jnp.finfo(u_hat.dtype).dtype
    dt_arr = jnp.asarray(dt, real_dtype)
    coeffs = solver.coefficients(term.symbol_for(u_hat), dt_arr)

    def one_step(carry, n):
        t = jnp.asarray(t0, real_dtype) + n.astype(real_dtype) * dt_arr
        return solver.step_spectral(term, t, dt_arr, carry, coeffs, args), None

    if save_every is None:
        u_hat, _ = jax.lax.scan(one_step, u_hat, jnp.arange(num_steps))
        return term.to_physical(u_hat).astype(u0.dtype)

    def chunk(carry, start):
        carry, _ = jax.lax.scan(one_step, carry, start + jnp.arange(save_every))
        return carry, term.to_physical(carry).astype(u0.dtype)

    _, saved = jax.lax.scan(chunk, u_hat, save_every * jnp.arange(num_steps // save_every))
    return saved


def trajectory(
    problem,
    u0: Float[ArrayLike, "*state"],
    dt: float,
    steps_per_save: int,
    num_saves: int,
    solver: AbstractETDRK | None = None,
    burn_in_steps: int = 0,
    *,
    args: PyTree = None,
) -> Float[Array, "frames *state"]:
    r"""The states at ``t = 0, Δ, 2Δ, …, num_saves·Δ`` (``Δ = steps_per_save·dt``), after a burn-in.

    The `burn_in_steps` are integrated first and discarded; frame 0 is the state after them, so
    the result has ``num_saves + 1`` frames, shape ``(num_saves + 1, *state)``. The stepping is
    `rollout`'s (same scheme, same numbers); frames fall exactly on steps.
    """
    if not isinstance(burn_in_steps, (int, np.integer)) or burn_in_steps < 0:
        raise ValueError(f"trajectory: `burn_in_steps` must be an integer >= 0, got {burn_in_steps!r}.")
    if not isinstance(steps_per_save, (int, np.integer)) or steps_per_save < 1:
        raise ValueError(f"trajectory: `steps_per_save` must be an integer >= 1, got {steps_per_save!r}.")
    if not isinstance(num_saves, (int, np.integer)) or num_saves < 1:
        raise ValueError(f"trajectory: `num_saves` must be an integer >= 1, got {num_saves!r}.")
    if burn_in_steps:
        u0 = rollout(problem, u0, dt, burn_in_steps, solver, args=args)
    frames = rollout(problem, u0, dt, steps_per_save * num_saves, solver, save_every=steps_per_save, args=args)
    u0 = jnp.asarray(u0, frames.dtype)
    return jnp.concatenate([u0[None], frames], axis=0)

