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
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

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
    """Store `splits` (``{"train": {...}, "test": {...}, "coordinates": {...}}``) and the config."""
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
    (it will be regenerated).
    """
    if not entry.arrays.exists():
        return None
    try:
        stored = load_npz(entry.arrays)
        identity = json.loads(str(stored.pop(_CONFIG_KEY)))
    except UNREADABLE as error:
        warnings.warn(f"jaxpde.data: cached file {entry.arrays} is unreadable ({error}); regenerating.", stacklevel=3)
        return None
    if identity != config.identity():
        warnings.warn(
            f"jaxpde.data: cached file {entry.arrays} was made with a different config; regenerating.\n"
            f"  stored:    {identity}\n  requested: {config.identity()}",
            stacklevel=3,
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
                    stacklevel=3,
                )
                return None
    return splits


def remove_partial(entry: CacheEntry) -> None:
    """Delete the chunk checkpoints of a finished generation."""
    shutil.rmtree(entry.partial, ignore_errors=True)
