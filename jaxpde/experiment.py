"""What an experiment is: the contract between an experiment module, the CLI and the report.

An experiment is a module ``experiments/NAME.py`` (installed as ``jaxpde_experiments.NAME``)
whose first docstring line describes it (``jaxpde list`` shows that line without importing the
module) and which defines:

- ``Config``: a frozen dataclass, every field with a default. ``jaxpde run NAME --set key=value``
  overrides fields, parsed by the field's annotation (int, float, str, bool, ``Literal``,
  ``tuple[...]``). ``__post_init__`` validates the values and raises `ValueError` naming the
  key, so a bad value exits with status 2 *before* any work is done. Two optional class
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

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["Experiment", "RESULT_KEYS", "RUN_INDEPENDENT_KEYS", "EXTENDABLE_KEY"]

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
