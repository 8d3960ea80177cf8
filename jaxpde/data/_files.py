"""Atomic array files: a reader never sees a half-written file.

Every file is written to a temporary name in the destination folder, flushed to disk, and only
then renamed onto its final name with `os.replace` — atomic on POSIX and Windows within one
file system. A generation that is interrupted (Ctrl-C, a killed job, a full disk) leaves at most
a stray temporary file, whose name never matches a final one, and never a truncated final file.

Archives are NumPy ``.npz`` files (zip): reading verifies each member's CRC-32, so a file that
was corrupted after it was written fails to load instead of yielding wrong numbers. A CRC only
catches accidents, though: a file edited and re-saved (values changed, set to NaN) has valid
CRCs again. So every archive also stores a SHA-256 of its contents — the names, dtypes, shapes
and bytes of all members — in a member `HASH_KEY`, and reading recomputes it: an archive whose
contents do not match their hash, or that has none, does not load (`ValueError`, one of
`UNREADABLE`). This detects any change made without also recomputing the hash; it is an
integrity check, not a signature against a deliberate forger.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_write_bytes", "atomic_save_npz", "content_hash", "load_npz", "HASH_KEY", "UNREADABLE"]

HASH_KEY = "content_sha256"

# What a damaged or truncated archive raises on open or on reading a member.
UNREADABLE = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError)


def _atomic(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        # KeyboardInterrupt included: remove the partial temporary file, then re-raise.
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    return _atomic(Path(path), lambda file: file.write(data))


def content_hash(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 (hex) of the members' names, dtypes, shapes and bytes, in sorted name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{value.dtype.str}\0{value.shape}\0".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def atomic_save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """``numpy.savez`` of `arrays` and their `content_hash` to `path` (``.npz``), atomically.

    Uncompressed: PDE fields are dense floats that barely compress, and loading stays a copy.
    """
    if HASH_KEY in arrays:
        raise ValueError(f"atomic_save_npz: the member name {HASH_KEY!r} is reserved for the content hash.")
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    stored = {**arrays, HASH_KEY: np.asarray(content_hash(arrays))}
    return _atomic(Path(path), lambda file: np.savez(file, **stored))


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every member of an ``.npz`` file, read fully and checked against its content hash.

    Raises one of `UNREADABLE`: a CRC error or truncation from NumPy/zipfile, or a `ValueError`
    if the stored hash is missing or does not match the contents (the file was edited).
    """
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    if HASH_KEY not in arrays:
        raise ValueError(f"{path} has no content hash (`{HASH_KEY}`): not written by jaxpde, or by an older version")
    stored = str(arrays.pop(HASH_KEY))
    if content_hash(arrays) != stored:
        raise ValueError(f"the contents of {path} do not match their SHA-256 (edited after it was written)")
    return arrays
