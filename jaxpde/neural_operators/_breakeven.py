r"""Breakeven of an emulator against the classical solver of the same accuracy.

A learned emulator costs a one-time ``C = C_data + C_train`` (generating its training data with
the classical solver, then training) and ``c_e`` per rollout; the classical solver that is *as
accurate as the emulator* costs ``c_s`` per rollout and nothing up front. After ``N`` rollouts
the emulator has saved ``N (c_s − c_e)``; it has paid for itself once that exceeds ``C``:

$$N^* = \Big\lceil \frac{C_{\text{data}} + C_{\text{train}}}{c_s − c_e} \Big\rceil
  \quad (c_s > c_e), \qquad N^* = ∞ \quad (c_s ≤ c_e).$$

The honest ``c_s`` is not the reference solver's (the fine grid and small step that made the
data, far more accurate than any emulator) but the cheapest classical setting whose error
against the reference is no larger than the emulator's — a coarser grid or a larger time step
(`match_solver`). `evaluate_settings` runs a list of such settings of a semi-linear `jaxpde.pdes`
model from the same initial states as the emulator's test rollouts, measures each one's error
with the same error function and its compiled wall-clock per rollout (`seconds_per_call`), and
`breakeven` assembles the result (`Breakeven`, with `as_dict` for ``results.json``).

If no setting is as accurate as the emulator, the most accurate one is used and the result says
so (``matched=False``): the true classical match is then more expensive, so the reported ``N*``
is an upper bound. Timings are wall-clock on the machine at hand: compare within one run.
"""

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..numerics.etdrk import ETDRK4, AbstractETDRK
from ..numerics.time_integration import trajectory

__all__ = [
    "SolverSetting",
    "Breakeven",
    "breakeven_rollouts",
    "match_solver",
    "breakeven",
    "seconds_per_call",
    "fourier_resample",
    "evaluate_settings",
    "training_seconds",
]


@dataclasses.dataclass(frozen=True)
class SolverSetting:
    """One classical setting: its `name`, `error` against the reference and `seconds` per rollout."""

    name: str
    error: float
    seconds: float
    resolution: int | None = None
    dt: float | None = None


@dataclasses.dataclass(frozen=True)
class Breakeven:
    r"""The result of `breakeven`.

    - `emulator_error`, `emulator_seconds`: the emulator's error and seconds per rollout.
    - `fixed_seconds`: ``C_data + C_train`` (`data_seconds`, `training_seconds`).
    - `matched`: the cheapest setting at least as accurate as the emulator (or the most accurate
      one, with ``is_matched = False``).
    - `rollouts`: ``N*`` against `matched` (``inf`` if the emulator is not faster).
    - `reference`, `rollouts_vs_reference`: the same against the reference setting, if given.
    - `speedup`: ``c_s / c_e`` of the matched setting.
    - `settings`: every setting evaluated.
    """

    emulator_error: float
    emulator_seconds: float
    data_seconds: float
    training_seconds: float
    matched: SolverSetting
    is_matched: bool
    rollouts: float
    speedup: float
    settings: tuple[SolverSetting, ...]
    reference: SolverSetting | None = None
    rollouts_vs_reference: float | None = None

    @property
    def fixed_seconds(self) -> float:
        return self.data_seconds + self.training_seconds

    def as_dict(self) -> dict:
        """A JSON-serialisable dict (``inf`` as the string ``"inf"``)."""

        def clean(value):
            if isinstance(value, float) and math.isinf(value):
                return "inf"
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            return value

        out = dataclasses.asdict(self)
        out["fixed_seconds"] = self.fixed_seconds
        return clean(out)


def _nonnegative(value, name: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{owner}: `{name}` must be a finite number >= 0, got {value!r}.")
    return float(value)


def breakeven_rollouts(fixed_seconds: float, emulator_seconds: float, solver_seconds: float) -> float:
    r"""``N* = ⌈C / (c_s − c_e)⌉``, or ``inf`` when the emulator is not faster (``c_s ≤ c_e``)."""
    fixed = _nonnegative(fixed_seconds, "fixed_seconds", "breakeven_rollouts")
    c_e = _nonnegative(emulator_seconds, "emulator_seconds", "breakeven_rollouts")
    c_s = _nonnegative(solver_seconds, "solver_seconds", "breakeven_rollouts")
    if c_s <= c_e:
        return math.inf
    # A rounding guard: C/(c_s − c_e) that is an integer up to rounding is that integer.
    ratio = fixed / (c_s - c_e)
    return float(max(math.ceil(ratio - 1e-9 * max(ratio, 1.0)), 0))


def match_solver(settings: Sequence[SolverSetting], error: float) -> SolverSetting | None:
    """The cheapest setting with ``setting.error <= error`` (``None`` if there is none)."""
    if not settings:
        raise ValueError("match_solver: `settings` is empty.")
    good = [s for s in settings if s.error <= error]
    return min(good, key=lambda s: s.seconds) if good else None


def breakeven(
    emulator_error: float,
    emulator_seconds: float,
    settings: Sequence[SolverSetting],
    *,
    data_seconds: float,
    training_seconds: float,
    reference: SolverSetting | None = None,
) -> Breakeven:
    """Match the emulator's error with the cheapest classical setting and count the rollouts to breakeven.

    **Arguments:** the emulator's `emulator_error` (same error function as the settings') and
    `emulator_seconds` per rollout; the classical `settings` (`evaluate_settings`); the one-time
    costs `data_seconds` and `training_seconds`; optionally the `reference` setting (the solver
    that made the data), for the breakeven against it too.
    """
    settings = tuple(settings)
    if not all(isinstance(s, SolverSetting) for s in settings):
        raise TypeError("breakeven: every entry of `settings` must be a SolverSetting.")
    error = _nonnegative(emulator_error, "emulator_error", "breakeven")
    c_e = _nonnegative(emulator_seconds, "emulator_seconds", "breakeven")
    data = _nonnegative(data_seconds, "data_seconds", "breakeven")
    train = _nonnegative(training_seconds, "training_seconds", "breakeven")
    matched = match_solver(settings, error)
    is_matched = matched is not None
    if not is_matched:
        matched = min(settings, key=lambda s: s.error)
    fixed = data + train
    return Breakeven(
        emulator_error=error,
        emulator_seconds=c_e,
        data_seconds=data,
        training_seconds=train,
        matched=matched,
        is_matched=is_matched,
        rollouts=breakeven_rollouts(fixed, c_e, matched.seconds),
        speedup=matched.seconds / c_e if c_e > 0 else math.inf,
        settings=settings,
        reference=reference,
        rollouts_vs_reference=None if reference is None else breakeven_rollouts(fixed, c_e, reference.seconds),
    )


def training_seconds(out_dir, result, elapsed: float) -> float:
    """The wall-clock a `jaxpde.training.fit` run took, across a resume.

    `elapsed` is this call's time; after a resume (``result.resumed_from``) the run's
    ``metrics.jsonl`` in `out_dir` still holds the records up to the checkpoint, whose last
    ``wall_s`` is the time the earlier call had spent by then — added, so that a resumed (or
    already finished and re-evaluated) run reports its training cost, not the few seconds of the
    last call.
    """
    from ..training import read_metrics  # the one reader of metrics.jsonl

    if result.resumed_from:
        path = Path(out_dir) / "metrics.jsonl"
        earlier = [r for r in (read_metrics(path) if path.exists() else []) if r.get("step", 0) <= result.resumed_from]
        if earlier:
            elapsed += float(earlier[-1].get("wall_s", 0.0))
    return float(elapsed)


def seconds_per_call(fn: Callable, *args, repeats: int = 5, per: int = 1) -> float:
    """The fastest of `repeats` wall-clock timings of ``fn(*args)`` after one warm-up call (the
    compile), divided by `per`. The minimum, not the median: on a shared machine every other
    process only ever adds time, so the fastest call is the least disturbed estimate of the cost.

    `fn` should be compiled (``jax.jit``); the result is blocked on, so asynchronous dispatch
    does not hide the work. With a batch of ``B`` rollouts in one call, ``per=B`` gives seconds
    per rollout.
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"seconds_per_call: `repeats` must be a positive integer, got {repeats!r}.")
    if not isinstance(per, int) or per < 1:
        raise ValueError(f"seconds_per_call: `per` must be a positive integer, got {per!r}.")
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times) / per


def fourier_resample(u: Float[ArrayLike, "..."], shape: Sequence[int]) -> Float[Array, "..."]:
    r"""A periodic field on a new grid: its Fourier series truncated or zero-padded (trigonometric interpolation).

    The trailing ``len(shape)`` axes are the grid. Modes beyond the coarser grid's Nyquist are
    dropped (and its Nyquist mode, which a real field on an even grid cannot represent
    symmetrically, set to zero), so coarsening then refining a band-limited field is exact.
    """
    u = jnp.asarray(u)
    shape = tuple(int(n) for n in shape)
    d = len(shape)
    if d < 1 or u.ndim < d or any(n < 2 for n in shape):
        raise ValueError(f"fourier_resample: `shape` must hold 1..{u.ndim} sizes >= 2, got {shape} for a field of shape {u.shape}.")
    old = u.shape[-d:]
    if old == shape:
        return u
    axes = tuple(range(-d, 0))
    u_hat = jnp.fft.fftn(u, axes=axes)
    out = jnp.zeros((*u.shape[:-d], *shape), u_hat.dtype)
    # Keep |m| < min(n_old, n_new)/2 on every axis (both signs), the same physical modes.
    index_old, index_new = [], []
    for n_old, n_new in zip(old, shape):
        keep = (min(n_old, n_new) - 1) // 2
        m = np.concatenate([np.arange(0, keep + 1), np.arange(-keep, 0)])
        index_old.append(m % n_old)
        index_new.append(m % n_new)
    grid_old = np.ix_(*index_old)
    grid_new = np.ix_(*index_new)
    lead = (slice(None),) * (u.ndim - d)
    out = out.at[lead + grid_new].set(u_hat[lead + grid_old])
    scale = float(np.prod(shape)) / float(np.prod(old))
    return (jnp.fft.ifftn(out, axes=axes).real * scale).astype(u.dtype)


def evaluate_settings(
    make_pde: Callable[[int], object],
    initial: Float[ArrayLike, "batch *grid"],
    reference: Float[ArrayLike, "batch frames *grid"],
    interval: float,
    settings: Sequence[tuple[int, float]],
    error: Callable[[Array, Array], Array],
    *,
    solver: AbstractETDRK | None = None,
    repeats: int = 5,
) -> list[SolverSetting]:
    r"""Run classical settings ``(resolution, dt)`` from `initial` and score them against `reference`.

    **Arguments:**

    - `make_pde`: ``resolution -> pde``, the semi-linear PDE on a periodic grid of that many
      points per axis (the same physics at every resolution).
    - `initial`: ``(B, *grid)``, the initial states on the reference's grid (resampled to each
      setting's grid by `fourier_resample`).
    - `reference`: ``(B, F, *grid)``, the reference frames at times ``interval, 2·interval, …,
      F·interval`` after `initial`.
    - `interval`: the time between frames; each `dt` must divide it.
    - `settings`: ``(resolution, dt)`` pairs.
    - `error`: ``error(prediction, reference) -> scalar`` on ``(B, F, *grid)`` arrays — the
      same function the emulator is scored with.

    **Returns:** a `SolverSetting` per pair, named ``"s=RES, dt=DT"``, with the error and the
    compiled seconds per rollout (a vmapped batch of ``B``, timed by `seconds_per_call`).
    """
    solver = ETDRK4() if solver is None else solver
    initial, reference = jnp.asarray(initial), jnp.asarray(reference)
    grid_shape = initial.shape[1:]
    if reference.ndim != initial.ndim + 1 or reference.shape[0] != initial.shape[0] or reference.shape[2:] != grid_shape:
        raise ValueError(
            f"evaluate_settings: `reference` must be (batch, frames, *grid) for `initial` {initial.shape}, "
            f"got {reference.shape}."
        )
    frames = reference.shape[1]
    out = []
    for resolution, dt in settings:
        steps = round(interval / dt)
        if steps < 1 or not math.isclose(steps * dt, interval, rel_tol=1e-9):
            raise ValueError(f"evaluate_settings: `dt` = {dt!r} must divide `interval` = {interval!r}.")
        pde = make_pde(int(resolution))
        shape = tuple(pde.state_shape)

        def run(u0, pde=pde, shape=shape, steps=steps, dt=dt):
            coarse = fourier_resample(u0, shape)
            path = trajectory(pde, coarse, float(dt), steps, frames, solver)[1:]
            return fourier_resample(path, grid_shape)

        batched = jax.jit(jax.vmap(run))
        prediction = batched(initial)
        value = float(error(prediction, reference))
        seconds = seconds_per_call(batched, initial, repeats=repeats, per=int(initial.shape[0]))
        out.append(SolverSetting(f"s={resolution}, dt={dt:g}", value, seconds, int(resolution), float(dt)))
    return out
