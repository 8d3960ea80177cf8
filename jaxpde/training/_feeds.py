"""How batches reach the jit-compiled training step, so that a run can resume exactly.

A training run draws one batch per step. For resume to be bit-exact the batch of step ``s``
must be a function of ``s`` (and the run's seed) alone, whatever happened before. Three kinds
of data source satisfy that:

* a **sampler**, any callable ``sampler(key) -> batch`` (PINN collocation points, random
  fields): it runs *inside* the compiled step on the key of that step;
* an `ArrayLoader` over in-memory arrays: shuffled once per epoch from ``(seed, epoch)``,
  the batch of step ``s`` gathered on the device from a permutation held there;
* any **re-iterable** (a list, a `torch` DataLoader with a fixed generator, a generator
  *function* wrapped with `functools.partial`…): on resume it is iterated afresh and the
  batches already consumed are skipped. A one-shot iterator cannot be rewound, so resuming
  with one is refused.

In a multi-process job (`jaxpde.distributed`) the step is one program over every process's
devices. A sampler and an `ArrayLoader` then need nothing per process: the batch is built
inside the step and each device computes its own rows of it — the batch of step ``s`` is the
one a single process would draw, whatever the number of processes, so a run matches its
single-process counterpart and resumes under any process count. Every process holds the
loader's arrays (checked: they must be equal on every process). An iterable yields each
process's own slice of the global batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any


class ArrayLoader:
    """Mini-batches of a pytree of arrays whose leaves share a leading (sample) axis.

    The order of epoch ``e`` is a permutation drawn from ``numpy.random.default_rng((seed, e))``,
    so the batch of any step can be recomputed after a restart. Incomplete final batches are
    dropped: every step sees exactly `batch_size` samples (one compiled shape).

    **Arguments:**

    - `arrays`: a pytree of arrays, each with the same leading dimension ``n``.
    - `batch_size`: samples per step, ``1 <= batch_size <= n``.
    - `shuffle`: reshuffle every epoch (default) or walk the data in order.
    - `seed`: seed of the epoch permutations.
    """

    def __init__(self, arrays: PyTree, batch_size: int, *, shuffle: bool = True, seed: int = 0):
        leaves = jax.tree.leaves(arrays)
        if not leaves:
            raise ValueError("ArrayLoader: `arrays` holds no arrays.")
        sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
        if None in sizes or len(sizes) != 1:
            shapes = [np.shape(leaf) for leaf in leaves]
            raise ValueError(f"ArrayLoader: every array needs the same leading (sample) axis, got shapes {shapes}.")
        (n,) = sizes
        if not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= n:
            raise ValueError(f"ArrayLoader: `batch_size` must be an integer in [1, {n}], got {batch_size!r}.")
        self.arrays = arrays
        self.num_samples = int(n)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)

    @property
    def steps_per_epoch(self) -> int:
        return self.num_samples // self.batch_size

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Sample indices of epoch `epoch`, in the order they are visited."""
        if not self.shuffle:
            return np.arange(self.num_samples, dtype=np.int32)
        rng = np.random.default_rng((self.seed, epoch))
        return rng.permutation(self.num_samples).astype(np.int32)

    def batch_at(self, step: int) -> PyTree:
        """The batch of training step `step` (on the host; the engine gathers on the device)."""
        epoch, position = divmod(step, self.steps_per_epoch)
        index = self.epoch_order(epoch)[position * self.batch_size : (position + 1) * self.batch_size]
        return jax.tree.map(lambda a: np.asarray(a)[index], self.arrays)


class Feed:
    """The engine's view of a data source: what the host passes to the step, and how the step
    turns it into a batch.

    ``device_inputs(step)`` runs on the host before step ``step`` and returns a pytree of
    arrays for the compiled step (it may return the same arrays for many steps: no transfer);
    ``batch(inputs, step, key)`` runs inside the compiled step.
    """

    resumable: bool = True

    def device_inputs(self, step: int) -> PyTree:
        raise NotImplementedError

    def batch(self, inputs: PyTree, step: jax.Array, key: jax.Array) -> PyTree:
        raise NotImplementedError

    def example_inputs(self) -> PyTree:
        """Inputs of the first step, for tracing shapes without consuming data."""
        return self.device_inputs(0)

    def start(self, step: int) -> None:
        """Position the source so that the next `device_inputs` call is for `step`."""

    def same_inputs(self, start: int, stop: int) -> bool:
        """Whether `device_inputs` gives the same arrays for the steps ``start … stop − 1``, so
        that they can run as one compiled call (`fit`'s ``steps_per_call``). Unknown: no."""
        return False

    def describe(self) -> dict:
        """What identifies this source in a run's identity (beyond its batch shapes)."""
        return {"type": type(self).__name__}


class SamplerFeed(Feed):
    """A batch is ``sampler(key)``, computed on the device inside the step."""

    def __init__(self, sampler: Callable[[jax.Array], PyTree]):
        self.sampler = sampler

    def device_inputs(self, step):
        return None

    def same_inputs(self, start, stop):
        return True

    def describe(self):
        return {"type": "sampler", "sampler": getattr(self.sampler, "__qualname__", type(self.sampler).__name__)}

    def batch(self, inputs, step, key):
        return self.sampler(key)


class ArrayFeed(Feed):
    """`ArrayLoader` data held on the device; the epoch permutation is uploaded once per epoch
    and each step slices its indices out of it, so a step costs no host-to-device transfer."""

    def __init__(self, loader: ArrayLoader, put: Callable[[PyTree], PyTree]):
        self.loader = loader
        if jax.process_count() > 1:
            _check_same_on_every_process(loader.arrays)
        self.arrays = put(jax.tree.map(jnp.asarray, loader.arrays))
        self._put = put
        self._epoch = None
        self._order = None

    def device_inputs(self, step):
        epoch = step // self.loader.steps_per_epoch
        if epoch != self._epoch:
            self._epoch, self._order = epoch, self._put(jnp.asarray(self.loader.epoch_order(epoch)))
        return (self.arrays, self._order)

    def same_inputs(self, start, stop):
        # One epoch's permutation serves all its steps.
        per_epoch = self.loader.steps_per_epoch
        return start // per_epoch == (stop - 1) // per_epoch

    def describe(self):
        loader = self.loader
        return {
            "type": "ArrayLoader", "num_samples": loader.num_samples, "batch_size": loader.batch_size,
            "shuffle": loader.shuffle, "seed": loader.seed,
        }

    def batch(self, inputs, step, key):
        arrays, order = inputs
        size = self.loader.batch_size
        offset = (step % self.loader.steps_per_epoch) * size
        index = jax.lax.dynamic_slice_in_dim(order, offset, size)
        return jax.tree.map(lambda a: a[index], arrays)


def _check_same_on_every_process(arrays: PyTree) -> None:
    # Replicating differing arrays would give each process's devices its own data under one
    # program: silently wrong gradients. A checksum per process catches it at the start.
    from .. import distributed
    from ._checkpoints import fingerprint

    values = distributed.same_on_every_process(fingerprint(jax.tree.leaves(arrays)))
    if values is not None:
        raise ValueError(
            "fit: an ArrayLoader's arrays must be the same on every process of a multi-process job (each device "
            f"gathers its rows of the batch from them); their CRC-32 per process is {values}. Load the same data "
            "everywhere, or pass each process's own batches as an iterable."
        )


class IterableFeed(Feed):
    """Host batches from an iterable, one per step; resume re-iterates and skips."""

    def __init__(self, iterable: Iterable, put: Callable[[PyTree], PyTree]):
        self.iterable = iterable
        self.resumable = iter(iterable) is not iterable
        self._put = put
        self._iterator: Iterator | None = None
        self._peeked = None

    def example_inputs(self):
        if self._peeked is None:
            if self._iterator is None:
                self._iterator = iter(self.iterable)
            self._peeked = self._next(0)
        return self._peeked

    def start(self, step):
        if step == 0:
            return
        if not self.resumable:
            raise ValueError(
                "fit: cannot resume from a one-shot iterator (it cannot be rewound to the checkpoint's "
                "position). Pass a re-iterable (e.g. a list or an object with __iter__), an ArrayLoader, "
                "or a sampler function of a key."
            )
        self._iterator = itertools.islice(iter(self.iterable), step, None)
        self._peeked = None

    def device_inputs(self, step):
        if self._peeked is not None:
            batch, self._peeked = self._peeked, None
            return batch
        if self._iterator is None:
            self._iterator = iter(self.iterable)
        return self._next(step)

    def _next(self, step):
        try:
            batch = next(self._iterator)
        except StopIteration:
            raise ValueError(f"fit: the data iterable ran out of batches at step {step}.") from None
        return self._put(batch)

    def describe(self):
        return {"type": "iterable"}

    def batch(self, inputs, step, key):
        return inputs


def make_feed(data, put_replicated, put_batch) -> Feed:
    """Choose the feed for `data` (see the module docstring for what is accepted)."""
    if isinstance(data, ArrayLoader):
        return ArrayFeed(data, put_replicated)
    if isinstance(data, Feed):
        return data
    if callable(data) and not isinstance(data, Iterable):
        return SamplerFeed(data)
    if isinstance(data, Iterable):
        return IterableFeed(data, put_batch)
    raise TypeError(
        "fit: `data` must be a sampler function key -> batch, an ArrayLoader, or an iterable of batches; "
        f"got {type(data).__name__}."
    )

