"""Callbacks: code that runs at `fit`'s log points (validation, early stopping, plots).

A callback is any callable ``callback(point) -> {name: value} | None``, called at every log
point, in order, with a `LogPoint`. What it returns is added to the point's metrics record
(so a later callback sees it, and it lands in ``metrics.jsonl``); ``point.stop(reason)`` ends
training after this log point, with a checkpoint, and a resumed run then stops at once too.

Callbacks do not change the parameters, so they never break exact resume. A callback that
decides something (early stopping) should decide from ``point.history``, the run's earlier
records — restored from ``metrics.jsonl`` on resume — rather than from its own attributes,
which a killed process loses; then a resumed run decides exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import equinox as eqx

PyTree = Any


@dataclass
class LogPoint:
    """What a callback sees at a log point.

    - `step`: updates applied so far.
    - `model`, `ema_model`: the current model and its parameter average (``None`` without EMA).
    - `extra`: the current extra state.
    - `record`: this log point's metrics so far (loss, terms, earlier callbacks' metrics).
    - `history`: the run's earlier records, oldest first (including those before a resume).
    """

    step: int
    model: eqx.Module
    ema_model: eqx.Module | None
    extra: PyTree
    record: Mapping[str, float]
    history: Sequence[Mapping[str, float]]
    stop_reason: str | None = field(default=None)

    def stop(self, reason: str) -> None:
        """Ask `fit` to end training after this log point."""
        self.stop_reason = str(reason)


Callback = Callable[[LogPoint], "Mapping[str, float] | None"]


class Evaluate:
    """Add ``name = fn(model)`` (e.g. the loss on a validation set) to every log point's record.

    `fn` maps a model to a scalar or to a dict of scalars (then each is recorded as
    ``name/key``); it is compiled once. With ``use_ema=True`` it is given the EMA model.
    `every` restricts the evaluation to log points whose step is a multiple of it.
    """

    def __init__(self, fn: Callable[[eqx.Module], Any], name: str = "val_loss", *, use_ema: bool = False, every: int = 1):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"Evaluate: `every` must be an integer >= 1, got {every!r}.")
        self.fn, self.name, self.use_ema, self.every = eqx.filter_jit(fn), name, use_ema, every

    def __call__(self, point: LogPoint):
        if point.step % self.every:
            return None
        model = point.ema_model if self.use_ema else point.model
        if model is None:
            raise ValueError("Evaluate: `use_ema=True` needs `fit(..., ema_decay=...)`.")
        value = self.fn(model)
        if isinstance(value, Mapping):
            return {f"{self.name}/{key}": float(item) for key, item in value.items()}
        return {self.name: float(value)}


class EarlyStopping:
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` log points.

    Decided from the record history alone, so a resumed run stops at the same step as an
    uninterrupted one. `mode` is ``"min"`` (a loss) or ``"max"`` (an accuracy). Log points that
    lack `monitor` (an `Evaluate` with ``every > 1``) are skipped.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, *, min_delta: float = 0.0, mode: str = "min"):
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping: `patience` must be an integer >= 1, got {patience!r}.")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: `mode` must be 'min' or 'max', got {mode!r}.")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, float(min_delta), mode

    def __call__(self, point: LogPoint):
        sign = 1.0 if self.mode == "min" else -1.0
        values = [sign * r[self.monitor] for r in (*point.history, point.record) if self.monitor in r]
        values = [v for v in values if not math.isnan(v)]
        if len(values) <= self.patience:
            return None
        best_before = min(values[: -self.patience])
        if min(values[-self.patience :]) >= best_before - self.min_delta:
            point.stop(f"{self.monitor} has not improved for {self.patience} log points (best {sign * best_before:.6g})")
        return None
