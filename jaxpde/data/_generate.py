r"""Chunked, vmapped, resumable sample generation with a progress bar.

``generate_samples(sample_fn, key, n)`` evaluates ``sample_fn(fold_in(key, i))`` for
``i = 0, …, n-1``.

**Batches.** Every sample is computed by one compiled program, ``jax.jit(jax.vmap(sample_fn))``
over `batch_size` keys, and batch ``b`` always holds exactly the samples
``b·batch_size, …, (b+1)·batch_size − 1`` — the last batch is filled with the *following*
samples' keys (computed and dropped), not with repeats. So sample ``i`` is the output of the
same program on the same inputs whatever the chunk size and whatever `num_samples`: the values
are bit-for-bit independent of both by determinism alone, without assuming anything about how
XLA rounds. (It does round differently for different batch widths: the Darcy CG solve vmapped
over ≤ 4 samples differs from ≥ 5 by ~1e-7 relative, measured, and a batch of one compiles to
an unbatched program — hence one fixed width per dataset, `DatasetConfig.batch_size`, and a
width of one run as two.) A sample evaluated *outside* this program, e.g. ``sample_fn(key)``
by hand, agrees with the stored one to rounding, not bit for bit.

**Chunks.** Batches are grouped into chunks of `chunk_size` samples (rounded up to a multiple
of `batch_size`): the unit of the progress bar and of checkpointing. With a `checkpoint_dir`,
every finished chunk is written there atomically, with a SHA-256 of its contents
(``chunk<size>-<index>.npz``); a rerun after an interruption loads the finished chunks whose
contents verify and computes only the rest. Chunks written with a different chunk size are not
reused (their index ranges differ).

**Non-finite samples** are an error: a NaN or Inf in a generated chunk raises a `ValueError`
naming the samples, instead of being stored (a diverged solve is a bug in the config, not
data), and a checkpointed chunk holding one is recomputed.

Progress is a `tqdm` bar counting samples, with the rate (samples/s) and the ETA.

**Several processes.** In a multi-process job (`jaxpde.distributed`) every process calls
`generate_samples` with the same arguments; chunk ``c`` is computed by process ``c mod P``
(checkpointed under its own name, so a rerun with another process count reuses it on a shared
folder), and an all-gather of the chunks' bytes gives every process the whole set. Sample ``i``
is still the output of batch ``i // batch_size``'s program on its keys, so the result is bit for
bit the one-process result. The progress bar is process 0's share; a non-finite sample is
reported by every process once the chunks are gathered.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray
from tqdm.auto import tqdm

from .. import distributed
from ._files import UNREADABLE, atomic_save_npz, load_npz

__all__ = ["generate_samples", "sample_key"]

SampleFn = Callable[[PRNGKeyArray], dict[str, Array]]


def sample_key(key: PRNGKeyArray, index: int) -> PRNGKeyArray:
    """The key of sample `index`: ``jax.random.fold_in(key, index)``."""
    return jax.random.fold_in(key, index)


@functools.lru_cache(maxsize=16)
def _compiled_chunk(sample_fn: SampleFn):
    # One jit wrapper per sample function, shared by every call (e.g. the train and the test
    # split), so a chunk shape compiles once. `sample_fn` must be hashable — bound methods of
    # frozen dataclasses and plain functions are.
    @jax.jit
    def run(key, indices):
        return jax.vmap(lambda i: sample_fn(sample_key(key, i)))(indices)

    return run


def _output_structure(sample_fn: SampleFn, key: PRNGKeyArray) -> dict[str, jax.ShapeDtypeStruct]:
    structure = jax.eval_shape(sample_fn, key)
    if not isinstance(structure, dict) or not structure:
        raise TypeError(
            "generate_samples: `sample_fn(key)` must return a non-empty dict of arrays, got "
            f"{type(structure).__name__}."
        )
    return structure


def _non_finite(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per array, the indices (along axis 0) of samples holding a NaN or Inf."""
    out = {}
    for name, value in arrays.items():
        value = np.asarray(value)
        if np.issubdtype(value.dtype, np.inexact) and value.size:
            bad = ~np.isfinite(value.reshape(len(value), -1)).all(axis=1)
            if bad.any():
                out[name] = np.flatnonzero(bad)
    return out


def generate_samples(
    sample_fn: SampleFn,
    key: PRNGKeyArray,
    num_samples: int,
    *,
    chunk_size: int = 32,
    batch_size: int | None = None,
    progress: bool = True,
    desc: str | None = None,
    checkpoint_dir: str | Path | None = None,
) -> dict[str, np.ndarray]:
    """Evaluate ``sample_fn(fold_in(key, i))`` for ``i < num_samples``, in vmapped compiled batches.

    **Arguments:**

    - `sample_fn`: ``key -> dict[str, Array]``, one sample; pure and traceable (it is vmapped
      and jit-compiled). Must be hashable (a function or a bound method of a frozen config).
    - `key`: the base PRNG key.
    - `num_samples`: ``>= 0``.
    - `chunk_size`: samples per chunk (progress and checkpoint unit), ``>= 1``; rounded up to a
      multiple of `batch_size`. Never changes the values.
    - `batch_size`: the width of the compiled vmapped program, ``>= 1`` (default: `chunk_size`).
      The values may depend on it at the rounding level (see the module docstring);
      `load_dataset` passes the dataset's fixed `DatasetConfig.batch_size`.
    - `progress`: show a tqdm bar (samples, samples/s, ETA).
    - `desc`: the bar's label.
    - `checkpoint_dir`: if given, finished chunks are saved there and reused on a rerun. The
      folder must belong to this `sample_fn`, `key` and `batch_size` alone (files are trusted
      by name, shape and content hash); `load_dataset` uses one per config fingerprint and split.

    **Returns:** a dict of NumPy arrays, each of shape ``(num_samples, *sample_shape)``.
    """
    if not isinstance(num_samples, (int, np.integer)) or num_samples < 0:
        raise ValueError(f"generate_samples: `num_samples` must be an integer >= 0, got {num_samples!r}.")
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"generate_samples: `chunk_size` must be an integer >= 1, got {chunk_size!r}.")
    batch_size = chunk_size if batch_size is None else batch_size
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"generate_samples: `batch_size` must be an integer >= 1, got {batch_size!r}.")
    structure = _output_structure(sample_fn, key)
    out = {name: np.empty((num_samples, *s.shape), dtype=s.dtype) for name, s in structure.items()}
    if num_samples == 0:
        return out
    batch_size = int(batch_size)
    chunk_size = batch_size * math.ceil(int(chunk_size) / batch_size)
    # XLA compiles a vmap over one sample as an unbatched program, whose FFTs and reductions
    # round differently (measured: 3e-7 relative on Burgers) — so a width of one runs as two.
    width = max(batch_size, 2)
    num_chunks = math.ceil(num_samples / chunk_size)
    run = _compiled_chunk(sample_fn)
    checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)

    def chunk_path(index: int) -> Path:
        return checkpoint_dir / f"chunk{chunk_size}-{index:06d}.npz"

    def bounds(index: int) -> tuple[int, int]:
        return index * chunk_size, min((index + 1) * chunk_size, num_samples)

    # Chunk `c` is computed by process `c mod P`: the job's processes share the work, and
    # whichever computes a chunk, its samples are the same program's outputs.
    processes, me = jax.process_count(), jax.process_index()
    mine = range(me, num_chunks, processes)
    done = _load_finished_chunks(out, mine, chunk_path, bounds) if checkpoint_dir is not None else set()
    initial = sum(stop - start for start, stop in map(bounds, done))
    total = sum(stop - start for start, stop in map(bounds, mine))
    label = desc if processes == 1 else f"{desc or 'samples'} (process 0 of {processes}: its share)"
    with tqdm(
        total=total,
        initial=initial,
        desc=label,
        unit="sample",
        disable=not progress or me != 0,
        dynamic_ncols=True,
        mininterval=0.5,
    ) as bar:
        for index in mine:
            if index in done:
                continue
            start, stop = bounds(index)
            chunk = _compute_chunk(run, key, start, stop, batch_size, width, out)
            bad = _non_finite(chunk)
            if bad and processes == 1:
                _raise_non_finite(bad, start, desc)
            for name in out:
                out[name][start:stop] = chunk[name]
            if checkpoint_dir is not None and not bad:
                atomic_save_npz(chunk_path(index), chunk)
            bar.update(stop - start)
    if processes > 1:
        _gather_chunks(out, num_chunks, chunk_size, bounds)
        # Every process checks the assembled samples, so all raise together (none is left
        # waiting for the others in a collective).
        bad = _non_finite(out)
        if bad:
            _raise_non_finite(bad, 0, desc)
    return out


def _load_finished_chunks(out, indices, chunk_path, bounds) -> set[int]:
    """Copy into `out` the checkpointed chunks among `indices` whose contents verify."""
    done = set()
    for index in indices:
        path = chunk_path(index)
        if not path.exists():
            continue
        start, stop = bounds(index)
        try:
            saved = load_npz(path)
            if set(saved) != set(out) or any(saved[k].shape != out[k][start:stop].shape for k in out):
                raise ValueError("layout mismatch")
            if _non_finite(saved):
                raise ValueError("non-finite values")
        except UNREADABLE:
            continue  # a damaged, edited or non-finite checkpoint is recomputed
        for name in out:
            out[name][start:stop] = saved[name]
        done.add(index)
    return done


def _compute_chunk(run, key, start: int, stop: int, batch_size: int, width: int, out) -> dict[str, np.ndarray]:
    parts = []
    for first in range(start, stop, batch_size):
        # Batch `first // batch_size` is always the same `width` consecutive keys (the tail past
        # `num_samples` is computed and dropped), so every sample is the output of one program
        # on one input, whatever the chunk size, split size or number of processes.
        indices = np.arange(first, first + width, dtype=np.uint32)
        values = jax.device_get(run(key, jnp.asarray(indices)))
        parts.append({name: np.asarray(values[name])[: min(batch_size, stop - first)] for name in out})
    return {name: np.concatenate([part[name] for part in parts]) for name in out}


def _raise_non_finite(bad: dict[str, np.ndarray], start: int, desc: str | None) -> None:
    where = "; ".join(f"`{name}` of samples {(start + i).tolist()}" for name, i in bad.items())
    raise ValueError(
        f"generate_samples: non-finite values (NaN/Inf) in {where}"
        f"{f' ({desc})' if desc else ''}; a diverged or unstable solve is not stored."
    )


# Bytes each process contributes to one all-gather: bounds the memory of the collective.
_GATHER_BYTES = 1 << 26


def _gather_chunks(out: dict[str, np.ndarray], num_chunks: int, chunk_size: int, bounds) -> None:
    """Fill in `out` the chunks the other processes computed (chunk ``c`` is process ``c mod P``'s).

    Process ``p`` packs the bytes of its chunks ``p, p + P, …`` — every array's samples, padded
    to `chunk_size` — into rows of one ``uint8`` buffer; an all-gather of rows (a few at a time)
    gives every process every chunk, bit for bit whatever the dtypes.
    """
    processes, me = jax.process_count(), jax.process_index()
    names = sorted(out)
    sample_bytes = [out[name].dtype.itemsize * math.prod(out[name].shape[1:]) for name in names]
    row_bytes = chunk_size * sum(sample_bytes)
    rows = math.ceil(num_chunks / processes)
    per_gather = max(1, _GATHER_BYTES // max(row_bytes, 1))
    for first_row in range(0, rows, per_gather):
        count = min(per_gather, rows - first_row)
        local = np.zeros((count, row_bytes), np.uint8)
        for r in range(count):
            index = (first_row + r) * processes + me
            if index < num_chunks:
                local[r] = _pack(out, names, sample_bytes, chunk_size, *bounds(index))
        gathered = distributed.allgather_bytes(local)  # (processes, count, row_bytes)
        for process in range(processes):
            if process == me:
                continue
            for r in range(count):
                index = (first_row + r) * processes + process
                if index < num_chunks:
                    _unpack(gathered[process, r], out, names, sample_bytes, chunk_size, *bounds(index))


def _pack(out, names, sample_bytes, chunk_size, start, stop) -> np.ndarray:
    row = np.zeros(chunk_size * sum(sample_bytes), np.uint8)
    offset = 0
    for name, size in zip(names, sample_bytes):
        data = np.ascontiguousarray(out[name][start:stop]).reshape(-1).view(np.uint8)
        row[offset : offset + data.size] = data
        offset += chunk_size * size
    return row


def _unpack(row, out, names, sample_bytes, chunk_size, start, stop) -> None:
    offset = 0
    for name, size in zip(names, sample_bytes):
        array = out[name]
        data = row[offset : offset + (stop - start) * size]
        out[name][start:stop] = data.view(array.dtype).reshape(stop - start, *array.shape[1:])
        offset += chunk_size * size
