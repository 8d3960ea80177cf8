"""The one training loop of jaxpde.

``fit(model, optimiser, loss_fn, data, steps=..., key=...)`` minimises
``loss_fn(model, batch, key)`` with an optax optimiser, one compiled step per update. Every
family that trains something (PINNs, neural operators, learned preconditioners, samplers)
uses it, so they all get the same guarantees:

* **exact resume** — the state of step ``s`` (model, optimiser state, step counter, seed, data
  position) is a pure function of the seed and ``s``: the key of step ``s`` is
  ``fold_in(key, s)`` and the batch of step ``s`` is fixed by the data source (see
  `jaxpde.training.ArrayLoader`). A run killed at any point and resumed from its newest good
  checkpoint ends with bit-identical parameters to an uninterrupted one;
* **a non-finite guard** — inside the compiled step, an update whose loss, loss terms or
  gradients are not finite is not applied; the state freezes at the last good values and the
  host raises `NonFiniteError` naming the step and the term at the next log point. Nothing
  after the last good checkpoint is written;
* **data parallelism** — with more than one device, the batch is split over a one-axis mesh
  and the parameters are replicated; the compiler inserts the gradient all-reduce;
* **progress and metrics** — a tqdm bar with step, loss, steps/s and ETA, and one JSON line
  per log point in ``out_dir/metrics.jsonl``;
* **checkpoints** — orbax, asynchronous, atomic, with a fingerprint and a retention policy
  (`jaxpde.training.CheckpointStore`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, UInt
from tqdm.auto import tqdm

from ._checkpoints import CheckpointStore
from ._feeds import make_feed
from ._metrics_log import MetricsLog
from ._sharding import DataParallel

PyTree = Any
LossFn = Callable[[eqx.Module, PyTree, PRNGKeyArray], Any]


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or Inf; the message names the step and the offending term."""

    def __init__(self, step: int, term: str, values: dict[str, float], last_checkpoint: int | None):
        self.step, self.term, self.values, self.last_checkpoint = step, term, values, last_checkpoint
        shown = ", ".join(f"{name}={value:.4g}" for name, value in values.items())
        where = (
            f"the last good checkpoint (step {last_checkpoint}) is kept"
            if last_checkpoint is not None
            else "no checkpoint was written"
        )
        super().__init__(f"non-finite {term} at step {step} ({shown}); training stopped, {where}.")


class TrainState(eqx.Module):
    """Everything that changes from step to step. ``step`` counts the updates applied so far."""

    params: PyTree
    opt_state: optax.OptState
    step: Int[Array, ""]
    key: UInt[Array, "..."]
    # The guard: -1 while healthy; else the step count at which a non-finite value appeared,
    # which term it was (index into the loss terms; one past the end means the gradients) and
    # the term values of that step.
    bad_step: Int[Array, ""]
    bad_term: Int[Array, ""]
    bad_values: Float[Array, " terms"]


@dataclass
class TrainResult:
    """What `fit` returns."""

    model: eqx.Module
    opt_state: optax.OptState
    step: int
    history: list[dict] = field(default_factory=list)
    resumed_from: int | None = None


def fit(
    model: eqx.Module,
    optimiser: optax.GradientTransformation,
    loss_fn: LossFn,
    data,
    *,
    steps: int,
    key: PRNGKeyArray,
    out_dir: str | Path | None = None,
    checkpoint_every: int = 1000,
    keep_checkpoints: int = 3,
    log_every: int = 100,
    progress: bool = True,
    devices: int | Sequence[jax.Device] | None = None,
    resume: bool = True,
    asynchronous_checkpoints: bool = True,
) -> TrainResult:
    """Train `model` for `steps` updates of `optimiser` on ``loss_fn(model, batch, key)``.

    **Arguments:**

    - `model`: an equinox module; its inexact (floating) arrays are trained.
    - `optimiser`: any `optax.GradientTransformation`.
    - `loss_fn`: ``loss_fn(model, batch, key)`` returning either a scalar or
      ``(scalar, {name: scalar})`` — the named terms are logged and checked for NaNs.
    - `data`: a sampler function ``key -> batch`` (run inside the compiled step), an
      `ArrayLoader`, or an iterable of batches. See `jaxpde.training.ArrayLoader`.
    - `steps`: total number of updates, counted from the start of the run (a resumed run does
      the remaining ones).
    - `key`: the run's PRNG key; the key of step ``s`` is ``fold_in(key, s)``.
    - `out_dir`: where ``metrics.jsonl`` and ``checkpoints/`` go; ``None`` keeps nothing on disk.
      If it already holds checkpoints the run resumes from the newest good one (unless
      ``resume=False``, which then refuses to overwrite them).
    - `checkpoint_every`, `keep_checkpoints`: checkpoint period (in steps; the final step is
      always saved) and how many to keep.
    - `log_every`: period of the metrics line, the progress-bar refresh and the NaN check.
    - `progress`: show the progress bar.
    - `devices`: ``None`` for every device of the job, an int for the first that many, or a
      sequence of devices. With more than one, training is data parallel.

    **Returns:** a `TrainResult` with the trained model and optimiser state, the final step and
    the metric records logged by this call.

    **Raises:** `NonFiniteError` when a loss term or gradient becomes NaN/Inf; `ValueError`
    for bad arguments.
    """
    _check_positive_int(steps, "steps", allow_zero=True)
    _check_positive_int(checkpoint_every, "checkpoint_every")
    _check_positive_int(log_every, "log_every")
    if not isinstance(model, eqx.Module):
        raise TypeError(f"fit: `model` must be an equinox.Module, got {type(model).__name__}.")
    if not hasattr(optimiser, "init") or not hasattr(optimiser, "update"):
        raise TypeError(f"fit: `optimiser` must be an optax.GradientTransformation, got {type(optimiser).__name__}.")

    placement = DataParallel(_select_devices(devices))
    feed = make_feed(data, placement.put_replicated, placement.put_batch)
    raw_key = _raw_key(key)
    params, static = eqx.partition(model, eqx.is_array)

    def full_loss(model, batch, key):
        out = loss_fn(model, batch, key)
        loss, terms = out if isinstance(out, tuple) else (out, {})
        return loss, dict(terms)

    # Trace the loss once, abstractly, to learn its term names (fixes the logged columns).
    example = feed.example_inputs()
    example_batch = jax.eval_shape(feed.batch, example, jnp.zeros((), jnp.int32), jax.random.wrap_key_data(raw_key))
    placement.check_batch(example_batch)
    loss_shape, term_shapes = eqx.filter_eval_shape(full_loss, model, example_batch, jax.random.wrap_key_data(raw_key))
    for name, shape in {"loss": loss_shape, **term_shapes}.items():
        if shape.shape != ():
            raise ValueError(f"fit: loss term {name!r} must be a scalar, got shape {shape.shape}.")
    names = ("loss", *term_shapes)

    state = placement.put_replicated(
        TrainState(
            params=params,
            opt_state=optimiser.init(eqx.filter(model, eqx.is_inexact_array)),
            step=jnp.zeros((), jnp.int32),
            key=raw_key,
            bad_step=jnp.full((), -1, jnp.int32),
            bad_term=jnp.full((), -1, jnp.int32),
            bad_values=jnp.zeros(len(names), jnp.float32),
        )
    )

    train_step = make_train_step(static, optimiser, full_loss, feed, placement, names)

    store = None
    log = None
    start = 0
    resumed_from = None
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        store = CheckpointStore(out_dir / "checkpoints", keep=keep_checkpoints, asynchronous=asynchronous_checkpoints)
        if store.steps():
            if not resume:
                raise ValueError(
                    f"fit: {out_dir} already holds checkpoints {store.steps()}; pass resume=True to continue "
                    "that run or choose another `out_dir`."
                )
            state, start = _restore(store, state)
            resumed_from = start
        log = MetricsLog(out_dir / "metrics.jsonl", resume_step=start)
    if start > steps:
        raise ValueError(f"fit: the checkpoint in {out_dir} is at step {start}, beyond `steps`={steps}.")
    feed.start(start)

    history: list[dict] = []
    last_saved = start if resumed_from is not None else None
    bar = tqdm(total=steps, initial=start, disable=not progress, unit="step", dynamic_ncols=True, mininterval=0.5)
    clock, clock_step, started = time.perf_counter(), start, time.perf_counter()
    try:
        for step in range(start, steps):
            state, values = train_step(state, feed.device_inputs(step))
            done = step + 1
            if done % log_every == 0 or done == steps:
                bad_step, values = jax.device_get((state.bad_step, values))  # one sync per log point
                if bad_step >= 0:
                    _raise_if_bad(state, names, last_saved)
                now = time.perf_counter()
                record = {"step": done, **dict(zip(names, map(float, values)))}
                record["steps_per_s"] = (done - clock_step) / max(now - clock, 1e-12)
                record["wall_s"] = now - started
                clock, clock_step = now, done
                history.append(record)
                if log is not None:
                    log.write(record)
                bar.set_postfix(loss=f"{record['loss']:.4g}", refresh=False)
                bar.update(done - bar.n)
            if store is not None and (done % checkpoint_every == 0 or done == steps):
                _raise_if_bad(state, names, last_saved)
                _save(store, state, done)
                last_saved = done
    except KeyboardInterrupt:
        # Keep what was done: a resumed run picks up from here.
        if store is not None and int(state.bad_step) < 0 and int(state.step) != last_saved:
            _save(store, state, int(state.step))
        raise
    finally:
        bar.close()
        if store is not None:
            store.close()
        if log is not None:
            log.close()

    model = eqx.combine(state.params, static)
    return TrainResult(model=model, opt_state=state.opt_state, step=int(state.step), history=history, resumed_from=resumed_from)


def make_train_step(static, optimiser, loss_fn, feed, placement: DataParallel, names: tuple[str, ...]):
    """The compiled step ``(state, inputs) -> (state, values)`` of `fit`.

    ``loss_fn(model, batch, key) -> (loss, {name: term})``; ``values`` stacks the loss and the
    terms in the order of `names`. The update is applied inside a `jax.lax.cond` on the
    finiteness of every value and gradient, so a bad step costs nothing and changes nothing but
    the guard fields.

    Every non-array part (the model's static fields, the optimiser, the loss) is closed over, so
    the state and inputs are pure array pytrees and plain `jax.jit` applies. That is what
    `eqx.filter_jit` would compile too, without its per-call partitioning of the arguments, which
    on small models costs as much as the step itself.
    """

    def apply_update(params, opt_state, grads):
        model = eqx.combine(params, static)
        updates, opt_state = optimiser.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.filter(eqx.apply_updates(model, updates), eqx.is_array), opt_state

    def keep(params, opt_state, grads):
        return params, opt_state

    @jax.jit
    def train_step(state: TrainState, inputs):
        step_key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
        data_key, loss_key = jax.random.split(step_key)
        batch = placement.constrain_batch(feed.batch(inputs, state.step, data_key))
        model = eqx.combine(state.params, static)
        (loss, terms), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(model, batch, loss_key)
        values = jnp.stack([loss, *(terms[name] for name in names[1:])]).astype(jnp.float32)
        grads_finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
        finite = jnp.isfinite(values)
        healthy = jnp.all(finite) & grads_finite & (state.bad_step < 0)
        params, opt_state = jax.lax.cond(healthy, apply_update, keep, state.params, state.opt_state, grads)

        first_bad = ~healthy & (state.bad_step < 0)
        # Name the culprit: a named term if one went bad (the total follows it), else the total,
        # else the gradients.
        bad_term = jnp.where(finite[0], len(names), 0)
        if len(names) > 1:
            bad_term = jnp.where(jnp.all(finite[1:]), bad_term, 1 + jnp.argmin(finite[1:]))
        new_state = TrainState(
            params=params,
            opt_state=opt_state,
            step=state.step + healthy.astype(jnp.int32),
            key=state.key,
            bad_step=jnp.where(first_bad, state.step, state.bad_step),
            bad_term=jnp.where(first_bad, bad_term, state.bad_term).astype(jnp.int32),
            bad_values=jnp.where(first_bad, values, state.bad_values),
        )
        return new_state, values

    return train_step


def _checkpointed(state: TrainState) -> list:
    """The arrays a checkpoint holds: everything needed to continue, nothing derived."""
    return jax.tree.leaves((state.params, state.opt_state, state.step, state.key))


def _save(store: CheckpointStore, state: TrainState, step: int) -> None:
    store.save(step, _checkpointed(state), {"data_position": step})


def _restore(store: CheckpointStore, state: TrainState) -> tuple[TrainState, int]:
    found = store.restore_latest(_checkpointed(state))
    if found is None:
        raise RuntimeError(
            f"fit: none of the checkpoints {store.steps()} in {store.directory} could be loaded (all damaged, "
            "or written by a different model/optimiser). Delete them or choose another `out_dir`."
        )
    leaves, metadata = found
    treedef = jax.tree.structure((state.params, state.opt_state, state.step, state.key))
    params, opt_state, step, key = jax.tree.unflatten(treedef, leaves)
    state = eqx.tree_at(lambda s: (s.params, s.opt_state, s.step, s.key), state, (params, opt_state, step, key))
    return state, int(metadata["data_position"])


def _raise_if_bad(state: TrainState, names: tuple[str, ...], last_saved: int | None) -> None:
    bad_step = int(state.bad_step)
    if bad_step < 0:
        return
    index = int(state.bad_term)
    term = "gradient" if index >= len(names) else "loss" if index == 0 else f"loss term {names[index]!r}"
    values = dict(zip(names, map(float, np.asarray(state.bad_values))))
    raise NonFiniteError(bad_step + 1, term, values, last_saved)


def _select_devices(devices):
    if devices is None:
        return jax.devices()
    if isinstance(devices, int):
        available = jax.devices()
        if not 1 <= devices <= len(available):
            raise ValueError(f"fit: `devices` must be between 1 and {len(available)} (available), got {devices}.")
        return available[:devices]
    return list(devices)


def _raw_key(key) -> jax.Array:
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    if isinstance(key, jax.Array) and key.dtype == jnp.uint32:
        return key
    raise TypeError(f"fit: `key` must be a JAX PRNG key (jax.random.key(seed)), got {type(key).__name__}.")


def _check_positive_int(value, name: str, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, np.integer)) and (value >= 0 if allow_zero else value >= 1)
    if not ok:
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"fit: `{name}` must be an integer {bound}, got {value!r}.")

