r"""The on-disk dataset cache: one entry per config fingerprint, config stored beside the arrays.

Layout of the cache folder (default ``$JAXPDE_CACHE``, else ``~/.cache/jaxpde``)::

    <name>-<fingerprint[:20]>.npz        the arrays (train.*, test.*, coordinates.*) and the config
    <name>-<fingerprint[:20]>.json       the same config, human-readable, with the versions it was made with
    <name>-<fingerprint[:20]>.partial/   finished chunks of a generation in progress (removed at the end)

An entry is *valid* only if its archive reads back completely (every member's CRC checks), its
contents match the SHA-256 stored with them (`jaxpde.data._files.content_hash`: values edited or
set to NaN and re-saved with valid CRCs are caught here), the config embedded in it equals the
requested one field by field (with the same dataset name, `FORMAT_VERSION` and batch width),
every array has the expected number of samples, and every sample is finite. Anything else — a
missing file, a truncated or corrupted archive, an edited one, a hash-prefix collision, a
non-finite sample — is treated as absent, with a warning that says why: the dataset is
regenerated and the entry rewritten. Both files are written
atomically (`jaxpde.data._files`), the JSON first, so the archive's presence marks a complete
entry.

In a multi-process job every process calls `read_entry` and `write_entry` together (as
`load_dataset` does). Reading is agreed: if the entry is not valid on every process, every
process treats it as absent, so all of them generate (a collective) or none does. Writing is
done by process 0; once it is done, any process that does not see the file (a cache folder
that is not shared between hosts) writes its own, identical copy.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import warnings
from importlib import metadata
from pathlib import Path

import jax
import numpy as np

from .. import distributed
from ._config import DatasetConfig
from ._files import UNREADABLE, atomic_save_npz, atomic_write_bytes, content_hash, load_npz

__all__ = ["CacheEntry", "cache_entry", "default_cache_dir", "read_entry", "write_entry"]

_CONFIG_KEY = "config"
_SPLITS = ("train", "test", "coordinates")


def default_cache_dir() -> Path:
    """``$JAXPDE_CACHE`` if set, else ``~/.cache/jaxpde``."""
    env = os.environ.get("JAXPDE_CACHE")
    return Path(env).expanduser() if env else Path("~/.cache/jaxpde").expanduser()


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """The paths of one dataset's cache entry."""

    arrays: Path
    config: Path
    partial: Path


def cache_entry(config: DatasetConfig, cache_dir: str | Path | None = None) -> CacheEntry:
    """Where `config`'s dataset lives in `cache_dir` (default `default_cache_dir`)."""
    folder = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
    stem = f"{config.name}-{config.fingerprint()[:20]}"
    return CacheEntry(folder / f"{stem}.npz", folder / f"{stem}.json", folder / f"{stem}.partial")


def _versions() -> dict[str, str]:
    out = {}
    for package in ("jaxpde", "jax", "jaxlib", "numpy", "scipy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


def write_entry(entry: CacheEntry, config: DatasetConfig, splits: dict[str, dict[str, np.ndarray]]) -> None:
    """Store `splits` (``{"train": {...}, "test": {...}, "coordinates": {...}}``) and the config.

    In a multi-process job, process 0 writes and the others wait for it (see the module docstring).
    """
    if jax.process_count() == 1:
        _write_entry(entry, config, splits)
        return
    if distributed.is_primary():
        _write_entry(entry, config, splits)
    distributed.barrier(f"jaxpde.data.write_entry {entry.arrays.name}")
    if not distributed.is_primary() and not entry.arrays.exists():
        _write_entry(entry, config, splits)
    # Every process returns once every copy exists, so a following `read_entry` agrees.
    distributed.barrier(f"jaxpde.data.write_entry {entry.arrays.name} copies")


def _write_entry(entry: CacheEntry, config: DatasetConfig, splits: dict[str, dict[str, np.ndarray]]) -> None:
    identity = config.identity()
    arrays = {f"{split}.{name}": np.asarray(value) for split in _SPLITS for name, value in splits[split].items()}
    arrays[_CONFIG_KEY] = np.asarray(json.dumps(identity, sort_keys=True))
    record = {
        **identity,
        "fingerprint": config.fingerprint(),
        "content_sha256": content_hash(arrays),
        "versions": _versions(),
    }
    atomic_write_bytes(entry.config, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    atomic_save_npz(entry.arrays, arrays)


def read_entry(entry: CacheEntry, config: DatasetConfig) -> dict[str, dict[str, np.ndarray]] | None:
    """The stored splits if the entry is valid (see the module docstring), else ``None``.

    A file that exists but is not a valid entry for `config` triggers a warning that says why
    (it will be regenerated). In a multi-process job, ``None`` on every process unless the entry
    is valid on all of them.
    """
    splits = _read_entry(entry, config)
    if jax.process_count() > 1 and not distributed.all_agree(splits is not None):
        if splits is not None:
            warnings.warn(
                f"jaxpde.data: cached file {entry.arrays} is missing or invalid on another process of the job; "
                "every process regenerates it.",
                stacklevel=3,
            )
        return None
    return splits


def _read_entry(entry: CacheEntry, config: DatasetConfig) -> dict[str, dict[str, np.ndarray]] | None:
    if not entry.arrays.exists():
        return None
    try:
        stored = load_npz(entry.arrays)
        identity = json.loads(str(stored.pop(_CONFIG_KEY)))
    except UNREADABLE as error:
        warnings.warn(f"jaxpde.data: cached file {entry.arrays} is unreadable ({error}); regenerating.", stacklevel=4)
        return None
    if identity != config.identity():
        warnings.warn(
            f"jaxpde.data: cached file {entry.arrays} was made with a different config; regenerating.\n"
            f"  stored:    {identity}\n  requested: {config.identity()}",
            stacklevel=4,
        )
        return None
    splits: dict[str, dict[str, np.ndarray]] = {split: {} for split in _SPLITS}
    for key, value in stored.items():
        split, _, name = key.partition(".")
        if split not in splits or not name:
            warnings.warn(f"jaxpde.data: cached file {entry.arrays} has an unexpected member {key!r}; regenerating.")
            return None
        splits[split][name] = value
    sizes = config.num_samples
    for split in ("train", "test"):
        if not splits[split] or any(v.shape[:1] != (sizes[split],) for v in splits[split].values()):
            warnings.warn(f"jaxpde.data: cached file {entry.arrays} has wrong {split} sizes; regenerating.")
            return None
        for name, value in splits[split].items():
            value = np.asarray(value)
            if np.issubdtype(value.dtype, np.inexact) and not np.isfinite(value).all():
                bad = np.flatnonzero(~np.isfinite(value.reshape(len(value), -1)).all(axis=1))
                warnings.warn(
                    f"jaxpde.data: cached file {entry.arrays} holds non-finite values in {split} `{name}` "
                    f"(samples {bad[:10].tolist()}); regenerating.",
                    stacklevel=4,
                )
                return None
    return splits


def remove_partial(entry: CacheEntry) -> None:
    """Delete the chunk checkpoints of a finished generation.

    In a multi-process job every process removes its view of the folder (a shared one, or each
    host's own) between two barriers: none still writes a chunk into it, and none starts writing
    one before it is gone.
    """
    if jax.process_count() == 1:
        shutil.rmtree(entry.partial, ignore_errors=True)
        return
    distributed.barrier(f"jaxpde.data.remove_partial {entry.partial.name}")
    shutil.rmtree(entry.partial, ignore_errors=True)
    distributed.barrier(f"jaxpde.data.remove_partial {entry.partial.name} done")
