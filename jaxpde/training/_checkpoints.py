"""Checkpoints that are never half-loaded: orbax for the writing, a fingerprint for the reading.

orbax's `CheckpointManager` writes each checkpoint into a temporary directory and renames it
into place when complete, so a process killed mid-save leaves only a temporary directory,
which is never listed as a step (and is cleaned up on the next start). That protects against
*interrupted* writes. It does not protect against a checkpoint damaged after the fact (a
truncated file on a full disk, a copy that lost a file): orbax may then fail to read it, or
read it "successfully" with wrong numbers. So every checkpoint also stores a CRC-32 of its
array bytes, and `restore_latest` walks back from the newest step until one both loads and
matches its fingerprint.

A checkpoint holds the leaves of a pytree as a flat, numbered dict (robust to the empty
nodes and named tuples of optax states) plus JSON metadata; the caller keeps the tree
structure, which a resumed run rebuilds from its own model and optimiser.

In a multi-process job every process creates the store on the same (shared) folder and calls
`save` and `restore` at the same steps: orbax writes collectively — each array's shards by the
processes that hold them, the metadata and the final rename by process 0 after every process
has finished — so a checkpoint is complete for all processes or absent for all.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from .. import distributed

logger = logging.getLogger(__name__)


def fingerprint(leaves: list) -> int:
    """CRC-32 of the dtype, shape and bytes of every leaf, in order."""
    crc = 0
    for leaf in leaves:
        array = np.ascontiguousarray(jax.device_get(leaf))
        crc = zlib.crc32(f"{array.dtype}{array.shape}".encode(), crc)
        crc = zlib.crc32(array.view(np.uint8).reshape(-1), crc)
    return crc


class CheckpointStore:
    """Numbered checkpoints of a list of arrays in ``directory``, the newest `keep` retained.

    **Arguments:**

    - `directory`: where the step directories go (created if missing).
    - `keep`: how many checkpoints to retain; at least 2, so that a damaged newest checkpoint
      always leaves an older one to fall back on.
    - `asynchronous`: write in a background thread (the arrays are copied off the device
      first, so training may continue and even donate its buffers).
    """

    def __init__(self, directory: str | Path, keep: int = 3, asynchronous: bool = True):
        if not isinstance(keep, int) or keep < 2:
            raise ValueError(f"CheckpointStore: `keep` must be an integer >= 2 (a fallback is needed), got {keep!r}.")
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            create=True,
            cleanup_tmp_directories=True,
            enable_async_checkpointing=asynchronous,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def steps(self) -> list[int]:
        """Committed checkpoint steps, oldest first."""
        return sorted(self._manager.all_steps())

    def save(self, step: int, leaves: list, metadata: dict[str, Any]) -> None:
        metadata = {**metadata, "step": int(step), "fingerprint": fingerprint(leaves), "num_leaves": len(leaves)}
        arrays = {f"{i:05d}": leaf for i, leaf in enumerate(leaves)}
        self._manager.save(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(metadata)),
            force=True,
        )

    def wait(self) -> None:
        """Block until every asynchronous save has been committed."""
        self._manager.wait_until_finished()

    def metadata(self, step: int) -> dict | None:
        """The JSON metadata of checkpoint `step` alone (no arrays read), or ``None`` if unreadable."""
        try:
            restored = self._manager.restore(int(step), args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
            return dict(restored["meta"])
        except Exception as error:  # a damaged checkpoint: the caller falls back to another
            logger.warning("cannot read the metadata of checkpoint %s in %s: %s", step, self.directory, error)
            return None

    def restore(self, step: int, template: list) -> tuple[list, dict]:
        """Load checkpoint `step` onto the shapes, dtypes and shardings of `template`.

        Raises `CorruptCheckpointError` if it cannot be read or fails its fingerprint.
        """
        abstract = {f"{i:05d}": _abstract(leaf) for i, leaf in enumerate(template)}
        try:
            restored = self._manager.restore(
                int(step),
                args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()),
            )
        except Exception as error:  # orbax raises many kinds of errors for damaged files
            raise CorruptCheckpointError(f"checkpoint {step} in {self.directory} could not be read: {error}") from error
        metadata = dict(restored["meta"])
        leaves = [restored["state"][f"{i:05d}"] for i in range(len(template))]
        if metadata.get("num_leaves") != len(template):
            raise CorruptCheckpointError(
                f"checkpoint {step} holds {metadata.get('num_leaves')} arrays, the run expects {len(template)}: "
                "was it written by a different model or optimiser?"
            )
        if fingerprint(leaves) != metadata.get("fingerprint"):
            raise CorruptCheckpointError(f"checkpoint {step} in {self.directory} fails its fingerprint check")
        return leaves, metadata

    def restore_latest(self, template: list) -> tuple[list, dict] | None:
        """The newest checkpoint that loads and verifies, or ``None`` if there is none.

        Damaged checkpoints newer than the one returned are moved aside to ``damaged-STEP``
        (kept for inspection, never listed again), so the resumed run can write those steps anew.
        """
        damaged = []
        found = None
        for step in reversed(self.steps()):
            try:
                found = self.restore(step, template)
                break
            except CorruptCheckpointError as error:
                logger.warning("skipping damaged checkpoint: %s", error)
                damaged.append(step)
        if found is not None and damaged:
            # In a multi-process job the folder is shared: process 0 moves, the others wait.
            if distributed.is_primary():
                for step in damaged:
                    (self.directory / str(step)).rename(self.directory / f"damaged-{step}")
            distributed.barrier("jaxpde.training.CheckpointStore.restore_latest")
            self._manager.reload()
        return found

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


class CorruptCheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not match its fingerprint."""


def _abstract(leaf):
    sharding = getattr(leaf, "sharding", None)
    return jax.ShapeDtypeStruct(np.shape(leaf), leaf.dtype, sharding=sharding)
