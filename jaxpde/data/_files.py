"""Atomic array files: a reader never sees a half-written file.

Every file is written to a temporary name in the destination folder, flushed to disk, and only
then renamed onto its final name with `os.replace` — atomic on POSIX and Windows within one
file system. A generation that is interrupted (Ctrl-C, a killed job, a full disk) leaves at most
a stray temporary file, whose name never matches a final one, and never a truncated final file.

Archives are NumPy ``.npz`` files (zip): reading verifies each member's CRC-32, so a file that
was corrupted after it was written fails to load instead of yielding wrong numbers.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_write_bytes", "atomic_save_npz", "load_npz", "UNREADABLE"]

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


def atomic_save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """``numpy.savez`` of `arrays` to `path` (which should end in ``.npz``), atomically.

    Uncompressed: PDE fields are dense floats that barely compress, and loading stays a copy.
    """
    return _atomic(Path(path), lambda file: np.savez(file, **arrays))


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every member of an ``.npz`` file, read fully (so CRC errors surface here), without pickle."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}
