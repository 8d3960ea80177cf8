"""What an experiment is: the contract between an experiment module, the CLI and the report.

An experiment is a module ``experiments/NAME.py`` (installed as ``jaxpde_experiments.NAME``)
whose first docstring line describes it (``jaxpde list`` shows that line without importing the
module) and which defines:

- ``Config``: a frozen dataclass, every field with a default. ``jaxpde run NAME --set key=value``
  overrides fields, parsed by the field's annotation (int, float, str, bool, ``Literal``,
  ``tuple[...]``). ``__post_init__`` validates the values and raises `ValueError` naming the
  key, so a bad value exits with status 2 *before* any work is done; the common checks are the
  ``check_*`` functions below, so every experiment words its messages alike. Two optional class
  attributes refine how a run folder is reused (see `jaxpde.cli`):

  * ``RUN_INDEPENDENT_KEYS``: keys that do not change the outcome (a progress bar, a cache
    location, the checkpoint period) and may differ between a run and its resumption;
  * the key ``steps``, if present, may grow between a run and its resumption: that extends
    the run. Any other changed key is refused.

- ``run(config, out_dir) -> dict``: does the work, checkpointing into ``out_dir`` through
  `jaxpde.training.fit` so that ``jaxpde resume out_dir`` continues exactly, and returns its
  results: JSON-serialisable figures plus the keys in `RESULT_KEYS`. Keys starting with ``_``
  are private to the experiment and are not written.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "EXTENDABLE_KEY",
    "Experiment",
    "RESULT_KEYS",
    "RUN_INDEPENDENT_KEYS",
    "check_batch_size",
    "check_open_interval",
    "check_positive_integers",
    "check_positive_numbers",
]

#: Result keys with a meaning outside the experiment.
RESULT_KEYS = {
    "table": "rows (tuples of strings, the first a header) that `jaxpde run` prints",
    "summary": "rows [work, jaxpde figure, compared with / target] for the README's results table "
    "(benchmarks/report.py reads them from experiments/results/NAME.json)",
    "wall_s": "added by the CLI: the run's wall-clock seconds",
}

#: The one key that may change between a run and its resumption (only upwards).
EXTENDABLE_KEY = "steps"

#: Keys never part of a run's identity, whatever the experiment says.
RUN_INDEPENDENT_KEYS = ("progress",)


@runtime_checkable
class Experiment(Protocol):
    """The module-level names of an experiment (a module satisfies this protocol)."""

    Config: type

    def run(self, config: Any, out_dir: Path) -> dict: ...


# --------------------------------------------------------------------------------------------
# Config validation: the checks every experiment's ``__post_init__`` makes, one spelling of each
# message. Each raises `ValueError` naming the key, the expectation and the value given.
# --------------------------------------------------------------------------------------------


def check_positive_integers(config: Any, *keys: str, minimum: int = 1) -> None:
    """Every ``config.<key>`` is an integer ``>= minimum`` (a bool is not an integer here)."""
    for key in keys:
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise ValueError(f"`{key}` must be {expected}, got {value!r}.")


def check_positive_numbers(config: Any, *keys: str, allow_zero: bool = False) -> None:
    """Every ``config.<key>`` is a finite number ``> 0`` (``>= 0`` with `allow_zero`)."""
    for key in keys:
        value = getattr(config, key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not (ok and (value >= 0 if allow_zero else value > 0)):
            expected = "non-negative and finite" if allow_zero else "positive and finite"
            raise ValueError(f"`{key}` must be {expected}, got {value!r}.")


def check_open_interval(config: Any, key: str, low: float, high: float, *, closed_high: bool = False) -> None:
    """``low < config.<key> < high`` (``<= high`` with `closed_high`)."""
    value = getattr(config, key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and low < value and (value <= high if closed_high else value < high)):
        raise ValueError(f"`{key}` must lie in ({low}, {high}{']' if closed_high else ')'}, got {value!r}.")


def check_batch_size(config: Any, batch: str = "batch_size", pool: str = "n_train") -> None:
    """``config.<batch>`` does not exceed ``config.<pool>``, the number of samples it is drawn from."""
    if getattr(config, batch) > getattr(config, pool):
        raise ValueError(f"`{batch}` ({getattr(config, batch)}) must not exceed `{pool}` ({getattr(config, pool)}).")
