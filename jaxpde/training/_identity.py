"""What a run *is*, so that a resume never silently continues a different run.

Every checkpoint carries the run's identity: a flat dict of everything that determines the
trajectory of the parameters —

* ``run_config.*``: the caller's own description (the experiment's config), JSON-normalised;
* ``data.*``: the data source (its kind, its batch shapes and dtypes, and for an `ArrayLoader`
  the sample count, batch size, shuffling and seed);
* ``model.*``: the model's class and the path, shape and dtype of each of its arrays;
* ``optimiser_state.*``: the same for the optimiser (or custom step) state;
* ``extra.*``, ``ema_decay``, ``key``: the extra state's structure, the EMA decay and the seed.

On resume the identity of the new call is compared key by key with the checkpoint's;
any difference raises `RunMismatchError` listing each key as ``old → new``. The step count is
the one exception: a larger `steps` extends a run, a smaller one is a different run.
"""

from __future__ import annotations

import json
from typing import Any

import jax
import numpy as np

PyTree = Any


class RunMismatchError(ValueError):
    """The run folder holds checkpoints of a different run.

    ``differences`` maps each differing key to ``(old, new)`` (``None`` where a key is absent).
    """

    def __init__(self, directory, differences: dict[str, tuple[Any, Any]]):
        self.directory, self.differences = directory, differences
        shown = [f"{key}: {old!r} → {new!r}" for key, (old, new) in list(differences.items())[:12]]
        if len(differences) > 12:
            shown.append(f"… and {len(differences) - 12} more")
        super().__init__(
            f"fit: {directory} holds checkpoints of a different run; refusing to resume it. Differences (old → new):\n  "
            + "\n  ".join(shown)
            + "\nUse another `out_dir`, or delete the old run. (Only a larger `steps` continues a run.)"
        )


def describe_arrays(tree: PyTree, prefix: str) -> dict[str, str]:
    """``{prefix + path: "dtype[shape]"}`` for every array leaf of `tree`."""
    described = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
            described[prefix + jax.tree_util.keystr(path)] = f"{np.dtype(leaf.dtype).name}{list(leaf.shape)}"
    return described


def flatten_config(config: Any, prefix: str) -> dict[str, Any]:
    """A JSON-normalised copy of `config` with nested mappings flattened to dotted keys."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise TypeError(f"fit: `run_config` must be a dict (JSON-serialisable values), got {type(config).__name__}.")
    # A round trip through JSON makes what is compared equal to what the checkpoint stores
    # (tuples become lists, numpy scalars numbers, unknown objects their str).
    normalised = json.loads(json.dumps(config, default=str, sort_keys=True))
    flat: dict[str, Any] = {}

    def walk(value, key):
        if isinstance(value, dict) and value:
            for name, item in value.items():
                walk(item, f"{key}.{name}")
        else:
            flat[key] = value

    walk(normalised, prefix)
    return flat


def run_identity(
    *,
    run_config: dict | None,
    data: dict[str, Any],
    batch: PyTree,
    model: PyTree,
    model_type: str,
    opt_state: PyTree,
    extra: PyTree,
    ema_decay: float | None,
    key: jax.Array,
) -> dict[str, Any]:
    """The flat identity dict of a run (see the module docstring)."""
    config = dict(run_config or {})
    # The step count is compared by fit's own rule (a larger one extends the run).
    config.pop("steps", None)
    identity = {
        **flatten_config(config, "run_config"),
        **{f"data.{name}": value for name, value in data.items()},
        **describe_arrays(batch, "data.batch"),
        "model.type": model_type,
        **describe_arrays(model, "model"),
        **describe_arrays(opt_state, "optimiser_state"),
        **describe_arrays(extra, "extra"),
        "ema_decay": ema_decay,
        "key": [int(k) for k in np.asarray(jax.device_get(key)).reshape(-1)],
    }
    return json.loads(json.dumps(identity))


def differences(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (old, new)}`` for every key whose value differs (absent keys read as ``None``)."""
    keys = list(old) + [key for key in new if key not in old]
    return {key: (old.get(key), new.get(key)) for key in keys if old.get(key) != new.get(key)}
