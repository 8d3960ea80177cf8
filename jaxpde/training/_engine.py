"""The one training loop of jaxpde.

``fit(model, optimiser, loss_fn, data, steps=..., key=...)`` minimises
``loss_fn(model, batch, key)`` with an optax optimiser (or any `AbstractTrainStep`), one
compiled step per update (or ``steps_per_call`` of them per call, for small models). Every
family that trains something (PINNs, neural operators, learned preconditioners, samplers) uses
it, so they all get the same guarantees:

* **exact resume** — the state of step ``s`` (model, optimiser state, extra state, EMA, step
  counter, seed, data position) is a pure function of the seed and ``s``: the key of step
  ``s`` is ``fold_in(key, s)`` and the batch of step ``s`` is fixed by the data source (see
  `jaxpde.training.ArrayLoader`). A run killed at any point (``kill -9`` included) and resumed
  from its newest good checkpoint ends with bit-identical parameters to an uninterrupted one;
* **a non-finite guard** — inside the compiled step, an update whose loss, loss terms,
  gradients, optimiser update, new parameters or new extra state are not all finite is not
  kept; the state freezes at the last good values and the host raises `NonFiniteError`
  naming the step and the culprit at the next log point. Nothing after the last good
  checkpoint is written, so "the last good checkpoint" is good;
* **one run per folder** — checkpoints carry the run's identity (`run_config`, data source,
  model and optimiser structure, seed); resuming a folder with a different run raises
  `RunMismatchError` (only a larger `steps` continues, extending the run), and an exclusive
  lock (`run_lock`) stops a second process writing the same folder;
* **data parallelism** — with more than one device, the batch is split over a one-axis mesh
  and the parameters are replicated; the compiler inserts the gradient all-reduce;
* **several processes** — after `jaxpde.distributed.initialize`, every process runs the same
  call: the step is one program over every process's devices (a sampler's or an
  `ArrayLoader`'s batch is the one a single process would draw), process 0 alone shows the
  progress bar, writes ``metrics.jsonl`` and holds the lock, and the checkpoints are written
  collectively into the one shared `out_dir`; exact resume holds as on one process;
* **progress, metrics, callbacks** — a tqdm bar, one JSON line per log point in
  ``out_dir/metrics.jsonl``, and callbacks (validation, early stopping) at the log points;
* **checkpoints** — orbax, asynchronous, atomic, with a fingerprint and a retention policy
  (`jaxpde.training.CheckpointStore`).

`fit` is assembled from small pieces: `_build` (the state and the compiled step),
`_resume` (the identity check and the restore), `_loop` (the steps) and `_log_point` (the
record, the guard's report, the callbacks).
"""

from __future__ import annotations

import contextlib
import logging
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, UInt
from tqdm.auto import tqdm

from ._callbacks import LogPoint
from .. import distributed
from ._checkpoints import CheckpointStore, fingerprint
from ._feeds import make_feed
from ._identity import RunMismatchError, differences, run_identity
from ._lock import run_lock
from ._metrics_log import MetricsLog
from ._sharding import DataParallel
from ._steps import AbstractTrainStep, OptaxStep

logger = logging.getLogger(__name__)

PyTree = Any
LossFn = Callable[..., Any]


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or Inf; the message names the step and the offending term
    (a loss term, the loss, the gradient, the update, the parameters or the extra state)."""

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
    opt_state: PyTree
    extra: PyTree
    ema: PyTree  # average of the floating-point arrays of `params`; None without EMA
    step: Int[Array, ""]
    key: UInt[Array, "..."]
    # The guard: -1 while healthy; else the step count at which a non-finite value appeared,
    # its index in the step's culprit labels, and the logged values of that step.
    bad_step: Int[Array, ""]
    bad_term: Int[Array, ""]
    bad_values: Float[Array, " terms"]


@dataclass(frozen=True)
class TrainResult:
    """What `fit` returns.

    - `model`, `opt_state`, `extra`: the final state; `ema_model` the model with its
      parameters replaced by their exponential moving average (``None`` without EMA).
    - `step`: updates applied; `history`: the metric records logged by this call.
    - `resumed_from`: the checkpoint step this call started from (``None`` for a fresh run).
    - `stop_reason`: why a callback ended training early (``None`` if it ran to `steps`).
    """

    model: eqx.Module
    opt_state: PyTree
    step: int
    history: tuple[dict, ...] = ()
    resumed_from: int | None = None
    ema_model: eqx.Module | None = None
    extra: PyTree = None
    stop_reason: str | None = None


def fit(
    model: eqx.Module,
    optimiser: optax.GradientTransformation | AbstractTrainStep,
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
    extra: PyTree = None,
    ema_decay: float | None = None,
    callbacks: Sequence[Callable[[LogPoint], Any]] = (),
    run_config: dict | None = None,
    steps_per_call: int = 1,
) -> TrainResult:
    """Train `model` for `steps` updates of `optimiser` on ``loss_fn(model, batch, key)``.

    **Arguments:**

    - `model`: an equinox module; its inexact (floating) arrays are trained.
    - `optimiser`: any `optax.GradientTransformation` (an `optax.lbfgs` gets the loss for its
      line search), or an `AbstractTrainStep` for an update that is not an optax transform of a
      gradient (see `jaxpde.training.AbstractTrainStep` for the contract).
    - `loss_fn`: ``loss_fn(model, batch, key)`` returning either a scalar or
      ``(scalar, {name: scalar})`` — the named terms are logged and checked for NaNs. With
      `extra`, ``loss_fn(model, batch, key, extra) -> (scalar, {name: scalar}, new_extra)``.
    - `data`: a sampler function ``key -> batch`` (run inside the compiled step), an
      `ArrayLoader`, or an iterable of batches. See `jaxpde.training.ArrayLoader`.
    - `steps`: total number of updates, counted from the start of the run (a resumed run does
      the remaining ones; a larger value than the checkpoints were written with extends the run).
    - `key`: the run's PRNG key; the key of step ``s`` is ``fold_in(key, s)``.
    - `out_dir`: where ``metrics.jsonl`` and ``checkpoints/`` go; ``None`` keeps nothing on disk.
      If it already holds checkpoints of the same run, the run resumes from the newest good one
      (unless ``resume=False``, which then refuses to overwrite them). The folder is locked
      against other processes for the duration (`run_lock`).
    - `checkpoint_every`, `keep_checkpoints`: checkpoint period (in steps; the final step is
      always saved) and how many to keep.
    - `log_every`: period of the metrics line, the progress-bar refresh, the NaN report and the
      callbacks.
    - `progress`: show the progress bar.
    - `devices`: ``None`` for every device of the job, an int for the first that many, or a
      sequence of devices. With more than one, training is data parallel.
    - `extra`: initial extra state, a pytree of arrays updated by the step through `loss_fn`
      (loss-weight averages, adaptive collocation points, a replay buffer). It is checkpointed,
      restored and checked for NaNs like the parameters (so keep it finite: masks, not NaN or
      Inf sentinels); it is not differentiated.
    - `ema_decay`: keep ``ema ← d·ema + (1 − d)·θ`` of the trained arrays after every kept
      update, starting from the initial model (`TrainResult.ema_model`). ``0 < d < 1``.
    - `callbacks`: callables ``callback(point: LogPoint) -> {name: value} | None`` run at every
      log point (see `jaxpde.training.Evaluate`, `jaxpde.training.EarlyStopping`).
    - `run_config`: a JSON-serialisable dict identifying the run (an experiment's config);
      compared on resume with the checkpoints' (a ``"steps"`` entry is ignored: `steps` follows
      its own rule).
    - `steps_per_call`: updates per compiled call — a `jax.lax.scan` of the step, what Keras
      calls ``steps_per_execution``. For models whose step is shorter than the host's ~50 µs
      per call of the loop: on one core of the 2-core CPU box a 4-parameter regression trains
      at 5.5 µs per step with 100 per call against 53 µs with one; a step of milliseconds (the
      DeepXDE Burgers PINN's, 3.8 ms) gains nothing, its dispatch already overlaps the running
      step. On an accelerator the threshold is whatever the device's step takes. A call starts
      at a multiple of it and runs only where no log point, checkpoint, end of run or new epoch
      of an `ArrayLoader` falls inside; elsewhere the steps run one by one. So a resumed run
      makes the same calls as an uninterrupted one, and resume stays exact. `log_every` (and,
      with `out_dir`, `checkpoint_every`) must be multiples of it; an iterable of batches (one
      host batch per step) always runs one step per call.

    **Returns:** a `TrainResult`.

    **Raises:** `NonFiniteError` when a loss term, gradient, update, parameter or extra state
    becomes NaN/Inf; `RunMismatchError` when `out_dir` holds a different run; `RunLockedError`
    when another process holds `out_dir`; `ValueError`/`TypeError` for bad arguments.
    """
    _check_arguments(model, optimiser, steps, checkpoint_every, log_every, ema_decay, callbacks)
    _check_steps_per_call(steps_per_call, log_every, checkpoint_every if out_dir is not None else None)
    run = _build(model, optimiser, loss_fn, data, key, devices, extra, ema_decay)
    identity = run.identity(run_config)
    primary = jax.process_index() == 0
    progress = progress and primary
    with contextlib.ExitStack() as stack:
        state, start, resumed_from, stop_reason, store, log = run.state, 0, None, None, None, None
        if out_dir is not None:
            out_dir = Path(stack.enter_context(run_lock(out_dir)))
            store = CheckpointStore(out_dir / "checkpoints", keep=keep_checkpoints, asynchronous=asynchronous_checkpoints)
            stack.callback(store.close)
            if store.steps():
                if not resume:
                    raise ValueError(
                        f"fit: {out_dir} already holds checkpoints {store.steps()}; pass resume=True to continue "
                        "that run or choose another `out_dir`."
                    )
                state, start, stop_reason = _resume(store, state, identity, steps, out_dir)
                resumed_from = start
            log = MetricsLog(out_dir / "metrics.jsonl", resume_step=start, write=primary)
            stack.callback(log.close)
        if start > steps:
            raise ValueError(f"fit: the checkpoint in {out_dir} is at step {start}, beyond `steps`={steps}.")
        loop = _Loop(run, store, log, identity, steps, checkpoint_every, log_every, callbacks, progress, steps_per_call)
        if stop_reason is None:
            state, stop_reason = loop.train(state, start, resumed_from)
    return run.result(state, tuple(loop.history), resumed_from, stop_reason)


class _Run:
    """The pieces of a run that do not change while it trains: the placement, the feed, the
    compiled step, the initial state and the labels of the logged values."""

    def __init__(self, model, update, full_loss, feed, placement, raw_key, extra, ema_decay):
        self.feed, self.placement, self.ema_decay = feed, placement, ema_decay
        params, self.static = eqx.partition(model, eqx.is_array)
        self.model_type = type(model).__name__
        opt_state = update.init(model)
        # One abstract trace of the step learns the loss terms and the step's named checks.
        example = feed.example_inputs()
        wrapped = jax.random.wrap_key_data(raw_key)
        self.example_batch = jax.eval_shape(feed.batch, example, jnp.zeros((), jnp.int32), wrapped)
        placement.check_batch(self.example_batch)
        loss, terms, _ = eqx.filter_eval_shape(full_loss, model, self.example_batch, wrapped, extra)
        for name, value in {"loss": loss, **terms}.items():
            if value.shape != ():
                raise ValueError(f"fit: loss term {name!r} must be a scalar, got shape {value.shape}.")
        shape = eqx.filter_eval_shape(update, full_loss, model, opt_state, self.example_batch, wrapped, extra)
        _check_step_output(shape, model, opt_state, extra)
        self.names = ("loss", *shape.terms)
        self.labels = (
            *(f"loss term {name!r}" for name in shape.terms),
            "loss",
            *(shape.checks or {}),
            "parameters",
            "extra state",
        )
        ema = None if ema_decay is None else eqx.filter(params, eqx.is_inexact_array)
        self.state = placement.put_replicated(
            TrainState(
                params=params,
                opt_state=opt_state,
                extra=extra,
                ema=ema,
                step=jnp.zeros((), jnp.int32),
                key=raw_key,
                bad_step=jnp.full((), -1, jnp.int32),
                bad_term=jnp.full((), -1, jnp.int32),
                bad_values=jnp.zeros(len(self.names), jnp.float32),
            )
        )
        self.step = make_train_step(self.static, update, full_loss, feed, placement, self.names, ema_decay)
        if jax.process_count() > 1:
            _check_same_initial_state(self.state)

    def identity(self, run_config):
        state = self.state
        return run_identity(
            run_config=run_config, data=self.feed.describe(), batch=self.example_batch, model=state.params,
            model_type=self.model_type, opt_state=state.opt_state, extra=state.extra, ema_decay=self.ema_decay,
            key=state.key,
        )

    def model(self, state: TrainState) -> eqx.Module:
        return eqx.combine(state.params, self.static)

    def ema_model(self, state: TrainState) -> eqx.Module | None:
        if state.ema is None:
            return None
        return eqx.combine(state.ema, eqx.filter(state.params, eqx.is_inexact_array, inverse=True), self.static)

    def result(self, state, history, resumed_from, stop_reason) -> TrainResult:
        return TrainResult(
            model=self.model(state), opt_state=state.opt_state, step=int(state.step), history=history,
            resumed_from=resumed_from, ema_model=self.ema_model(state), extra=state.extra, stop_reason=stop_reason,
        )


def _build(model, optimiser, loss_fn, data, key, devices, extra, ema_decay) -> _Run:
    """State construction: everything `fit` needs before it looks at the run folder."""
    placement = DataParallel(_select_devices(devices))
    feed = make_feed(data, placement.put_replicated, placement.put_batch)
    update = optimiser if isinstance(optimiser, AbstractTrainStep) else OptaxStep(optimiser)
    with_extra = extra is not None

    def full_loss(model, batch, key, extra):
        # fit's normal form of the loss: (loss, {name: term}, new_extra).
        if with_extra:
            out = loss_fn(model, batch, key, extra)
            if not (isinstance(out, tuple) and len(out) == 3):
                raise TypeError("fit: with `extra`, `loss_fn` must return (loss, {name: term}, new_extra).")
            loss, terms, new_extra = out
        else:
            out = loss_fn(model, batch, key)
            (loss, terms), new_extra = (out if isinstance(out, tuple) else (out, {})), None
        return loss, dict(terms), new_extra

    return _Run(model, update, full_loss, feed, placement, _raw_key(key), extra, ema_decay)


def make_train_step(static, update: AbstractTrainStep, loss_fn, feed, placement: DataParallel, names, ema_decay=None):
    """The compiled step ``(state, inputs) -> (state, values)`` of `fit`.

    ``loss_fn(model, batch, key, extra) -> (loss, {name: term}, new_extra)``; ``values``
    stacks the loss and the terms in the order of `names`. The step computes the new model,
    optimiser state, extra state and EMA, checks the loss, terms, the step's named checks, the
    new parameters and the new extra state for finiteness, and keeps the new values only if all
    are finite (an elementwise select, not a `lax.cond`: see `_keep_if`).

    Every non-array part (the model's static fields, the step, the loss) is closed over, so
    the state and inputs are pure array pytrees and plain `jax.jit` applies. The state's buffers
    are donated (updated in place: about 5% of a small model's step); whatever outlives a step —
    a checkpoint being written, what callbacks see — is a copy. That is what
    `eqx.filter_jit` would compile too, without its per-call partitioning of the arguments, which
    on small models costs as much as the step itself.
    """

    @functools.partial(jax.jit, donate_argnums=0)
    def train_step(state: TrainState, inputs):
        step_key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
        data_key, loss_key = jax.random.split(step_key)
        batch = placement.constrain_batch(feed.batch(inputs, state.step, data_key))
        out = update(loss_fn, eqx.combine(state.params, static), state.opt_state, batch, loss_key, state.extra)
        values = jnp.stack([out.loss, *(out.terms[name] for name in names[1:])]).astype(jnp.float32)
        params = eqx.filter(out.model, eqx.is_array)
        # Finiteness of each culprit, in the order of the labels: named terms first (a bad term
        # explains the total), then the loss, the step's checks, the parameters, the extra.
        finite = jnp.stack(
            [
                *jnp.isfinite(values[1:]),
                jnp.isfinite(values[0]),
                *(_all_finite(tree) for tree in (out.checks or {}).values()),
                _all_finite(params),
                _all_finite(out.extra),
            ]
        )
        healthy = jnp.all(finite) & (state.bad_step < 0)
        ema = state.ema
        if ema_decay is not None:
            new = eqx.filter(params, eqx.is_inexact_array)
            ema = jax.tree.map(lambda e, p: (ema_decay * e + (1 - ema_decay) * p).astype(e.dtype), ema, new)
        first_bad = ~healthy & (state.bad_step < 0)
        new_state = TrainState(
            params=_keep_if(healthy, params, state.params),
            opt_state=_keep_if(healthy, out.opt_state, state.opt_state),
            extra=_keep_if(healthy, out.extra, state.extra),
            ema=_keep_if(healthy, ema, state.ema),
            step=state.step + healthy.astype(jnp.int32),
            key=state.key,
            bad_step=jnp.where(first_bad, state.step, state.bad_step),
            bad_term=jnp.where(first_bad, jnp.argmin(finite), state.bad_term).astype(jnp.int32),
            bad_values=jnp.where(first_bad, values, state.bad_values),
        )
        return new_state, values

    return train_step


def scanned_steps(train_step, length: int):
    """``length`` consecutive calls of `train_step` as one compiled call (a `jax.lax.scan` over
    the state, the inputs held fixed); returns the final state and the last step's values."""

    @functools.partial(jax.jit, donate_argnums=0)
    def train_steps(state: TrainState, inputs):
        state, values = jax.lax.scan(lambda carry, _: train_step(carry, inputs), state, None, length=length)
        return state, values[-1]

    return train_steps


def _all_finite(tree) -> jax.Array:
    flags = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(flags)) if flags else jnp.array(True)


def _keep_if(healthy, new, old):
    # An elementwise select rather than `lax.cond`: it fuses into the update's own loop, and it
    # keeps control flow out of the step's program.
    return jax.tree.map(lambda n, o: jnp.where(healthy, n, o), new, old)


class _Loop:
    """The steps of one `fit` call: log points, checkpoints, Ctrl-C."""

    def __init__(self, run: _Run, store, log, identity, steps, checkpoint_every, log_every, callbacks, progress, steps_per_call=1):
        self.job, self.store, self.log, self.identity = run, store, log, identity
        self.steps, self.checkpoint_every, self.log_every = steps, checkpoint_every, log_every
        self.steps_per_call = steps_per_call
        self.calls = scanned_steps(run.step, steps_per_call) if steps_per_call > 1 else None
        self.callbacks, self.progress = tuple(callbacks), progress
        self.history: list[dict] = []
        # The records before a resume, for callbacks that decide from the history.
        self.earlier = list(log.kept) if log is not None else []
        self.last_saved: int | None = None

    def train(self, state: TrainState, start: int, resumed_from: int | None):
        self.last_saved = resumed_from
        job, steps = self.job, self.steps
        feed, synchronous = job.feed, job.placement.synchronous_steps
        feed.start(start)
        # The step donates its state: start from a copy, so that the caller's model, key and
        # extra state (which the initial state may alias) stay valid.
        state = jax.tree.map(jnp.copy, state)
        bar = tqdm(total=steps, initial=start, disable=not self.progress, unit="step", dynamic_ncols=True, mininterval=0.5)
        self.started = time.perf_counter()
        self.clock, self.clock_step = self.started, start
        stop_reason = None
        try:
            step = start
            while step < steps:
                many = self._runs_as_one_call(step)
                state, values = (self.calls if many else job.step)(state, feed.device_inputs(step))
                if synchronous:
                    jax.block_until_ready((state, values))  # see DataParallel.synchronous_steps
                done = step = step + (self.steps_per_call if many else 1)
                if done % self.log_every == 0 or done == steps:
                    stop_reason = self._log_point(state, values, done, bar)
                if self.store is not None and (done % self.checkpoint_every == 0 or done == steps or stop_reason):
                    self._raise_if_bad(state)
                    self._save(state, done, stop_reason)
                if stop_reason is not None:
                    break
        except KeyboardInterrupt:
            # Keep what was done: a resumed run picks up from here. (An interrupt that lands inside
            # the step call leaves `state` donated: then the last checkpoint is the resume point.)
            donated = any(leaf.is_deleted() for leaf in jax.tree.leaves(state))
            # Not in a multi-process job: the processes are interrupted at different steps, and
            # a collective save needs them all at one.
            alone = jax.process_count() == 1
            if alone and self.store is not None and not donated and int(state.bad_step) < 0 and int(state.step) != self.last_saved:
                self._save(state, int(state.step), None)
            raise
        finally:
            bar.close()
        return state, stop_reason

    def _runs_as_one_call(self, step: int) -> bool:
        """Whether the steps ``step … step + steps_per_call − 1`` run as one call: it starts at a
        multiple of `steps_per_call` (a rule of the step alone, so a resumed run makes the same
        calls), ends by `steps`, and nothing the host does falls inside."""
        n = self.steps_per_call
        if n == 1 or step % n or step + n > self.steps:
            return False
        # The log and checkpoint periods are multiples of n (checked by fit), so only the data
        # source can have a boundary inside.
        return self.job.feed.same_inputs(step, step + n)

    def _log_point(self, state: TrainState, values, done: int, bar) -> str | None:
        bad_step, values = jax.device_get((state.bad_step, values))  # one sync per log point
        if bad_step >= 0:
            self._raise_if_bad(state)
        now = time.perf_counter()
        record = {"step": done, **dict(zip(self.job.names, map(float, values)))}
        record["steps_per_s"] = (done - self.clock_step) / max(now - self.clock, 1e-12)
        record["wall_s"] = now - self.started
        self.clock, self.clock_step = now, done
        stop_reason = None
        if self.callbacks:
            # The step donates the state's buffers, so callbacks see copies they may keep (of
            # what they are shown: not the optimiser state).
            seen = jax.tree.map(jnp.copy, eqx.tree_at(lambda s: s.opt_state, state, None, is_leaf=lambda x: x is None))
            point = LogPoint(
                step=done, model=self.job.model(seen), ema_model=self.job.ema_model(seen), extra=seen.extra,
                record=record, history=tuple(self.earlier + self.history),
            )
            for callback in self.callbacks:
                added = callback(point)
                if added is not None and not isinstance(added, Mapping):
                    raise TypeError(f"fit: a callback must return a dict of metrics or None; {callback!r} returned {added!r}.")
                if added:
                    record.update({name: float(value) for name, value in added.items()})
            stop_reason = point.stop_reason
            if stop_reason is not None:
                record["stopped"] = stop_reason
        self.history.append(record)
        if self.log is not None:
            self.log.write(record)
        bar.set_postfix(loss=f"{record['loss']:.4g}", refresh=False)
        bar.update(done - bar.n)
        return stop_reason

    def _save(self, state: TrainState, step: int, stop_reason: str | None) -> None:
        metadata = {"data_position": step, "run": self.identity, "steps": self.steps, "stopped": stop_reason}
        # A copy: the step donates the state's buffers while an asynchronous save may still read them.
        self.store.save(step, [jnp.copy(leaf) for leaf in _checkpointed(state)], metadata)
        self.last_saved = step

    def _raise_if_bad(self, state: TrainState) -> None:
        bad_step = int(state.bad_step)
        if bad_step < 0:
            return
        labels, names = self.job.labels, self.job.names
        values = dict(zip(names, map(float, np.asarray(state.bad_values))))
        raise NonFiniteError(bad_step + 1, labels[int(state.bad_term)], values, self.last_saved)


def _check_same_initial_state(state: TrainState) -> None:
    # The state is replicated from each process's own copy; copies that differ (a model
    # initialised from a per-process key) would leave the replicas disagreeing under one program.
    values = distributed.same_on_every_process(fingerprint(_checkpointed(state)))
    if values is not None:
        raise ValueError(
            "fit: the model, optimiser state, extra state and key must be the same on every process of a "
            f"multi-process job (initialise them from the same key); their CRC-32 per process is {values}."
        )


def _checkpointed(state: TrainState) -> list:
    """The arrays a checkpoint holds: everything needed to continue, nothing derived."""
    return jax.tree.leaves((state.params, state.opt_state, state.extra, state.ema, state.step, state.key))


def _resume(store: CheckpointStore, state: TrainState, identity: dict, steps: int, out_dir) -> tuple:
    """Check that `out_dir` holds this run, then restore its newest good checkpoint.

    Returns ``(state, start step, stop reason)``; the stop reason is that of a run a callback
    ended (a resumed call then returns at once).
    """
    for step in reversed(store.steps()):
        metadata = store.metadata(step)
        if metadata is None:
            continue  # unreadable: restore_latest moves it aside
        if "run" not in metadata:
            logger.warning("fit: the checkpoints in %s predate run identities; resuming without checking them.", out_dir)
            break
        found = differences(metadata["run"], identity)
        previous = metadata.get("steps")
        if previous is not None and steps < previous:
            found["steps"] = (previous, steps)
        if found:
            raise RunMismatchError(out_dir, found)
        if previous is not None and steps > previous:
            logger.warning("fit: extending the run in %s from %d to %d steps.", out_dir, previous, steps)
        break
    found = store.restore_latest(_checkpointed(state))
    if found is None:
        raise RuntimeError(
            f"fit: none of the checkpoints {store.steps()} in {store.directory} could be loaded (all damaged, "
            "or written by a different model/optimiser). Delete them or choose another `out_dir`."
        )
    leaves, metadata = found
    parts = (state.params, state.opt_state, state.extra, state.ema, state.step, state.key)
    params, opt_state, extra, ema, step, key = jax.tree.unflatten(jax.tree.structure(parts), leaves)
    state = eqx.tree_at(
        lambda s: (s.params, s.opt_state, s.extra, s.ema, s.step, s.key),
        state,
        (params, opt_state, extra, ema, step, key),
        is_leaf=lambda x: x is None,
    )
    return state, int(metadata["data_position"]), metadata.get("stopped")


def _check_step_output(shape, model, opt_state, extra) -> None:
    for name, value in {"loss": shape.loss, **shape.terms}.items():
        if value.shape != ():
            raise ValueError(f"fit: the step's {name!r} must be a scalar, got shape {value.shape}.")

    def abstract(tree):
        tree = eqx.filter(eqx.filter_eval_shape(lambda t: t, tree), lambda x: isinstance(x, jax.ShapeDtypeStruct))
        return jax.tree.structure(tree), [(leaf.shape, leaf.dtype) for leaf in jax.tree.leaves(tree)]

    for what, old, new in (("model", model, shape.model), ("opt_state", opt_state, shape.opt_state), ("extra", extra, shape.extra)):
        if abstract(old) != abstract(new):
            raise ValueError(
                f"fit: the step must return a {what} with the structure, shapes and dtypes it was given "
                f"(a compiled step's state is fixed); got {abstract(new)} for {abstract(old)}."
            )


def _check_arguments(model, optimiser, steps, checkpoint_every, log_every, ema_decay, callbacks) -> None:
    _check_positive_int(steps, "steps", allow_zero=True)
    _check_positive_int(checkpoint_every, "checkpoint_every")
    _check_positive_int(log_every, "log_every")
    if not isinstance(model, eqx.Module):
        raise TypeError(f"fit: `model` must be an equinox.Module, got {type(model).__name__}.")
    if not isinstance(optimiser, AbstractTrainStep) and not (hasattr(optimiser, "init") and hasattr(optimiser, "update")):
        raise TypeError(
            "fit: `optimiser` must be an optax.GradientTransformation or a jaxpde.training.AbstractTrainStep, "
            f"got {type(optimiser).__name__}."
        )
    if ema_decay is not None and not (isinstance(ema_decay, (float, int)) and 0.0 < ema_decay < 1.0):
        raise ValueError(f"fit: `ema_decay` must be a number in (0, 1) or None, got {ema_decay!r}.")
    if not all(callable(callback) for callback in callbacks):
        raise TypeError(f"fit: every entry of `callbacks` must be callable(point), got {list(callbacks)!r}.")


def _check_steps_per_call(steps_per_call, log_every, checkpoint_every) -> None:
    _check_positive_int(steps_per_call, "steps_per_call")
    for name, period in (("log_every", log_every), ("checkpoint_every", checkpoint_every)):
        if period is not None and period % steps_per_call:
            raise ValueError(
                f"fit: `{name}` ({period}) must be a multiple of `steps_per_call` ({steps_per_call}): the host logs and "
                "checkpoints between calls, not inside one."
            )


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
