"""Data parallelism with `jax.sharding`: one mesh axis over every device, batches split along
it, parameters and optimiser state replicated.

Nothing here is specific to one host. In a multi-process job (after
`jaxpde.distributed.initialize`) `jax.devices()` lists every device of every process and the
mesh spans them all; the step is one global program, the same as on one process, and the
compiler (GSPMD) inserts the all-reduce of the gradients. Where the batch comes from decides
what each process supplies:

* made *inside* the step (a sampler, an `ArrayLoader`'s gather): nothing — each device computes
  its own rows of the global batch (JAX's random bits are partitionable), so the batch is the
  one a single process with as many devices would draw;
* handed in from the host (an iterable): each process passes its *own* slice of the global
  batch (a multiple of its local device count), and `DataParallel.put_batch` assembles the
  global array with `jax.make_array_from_process_local_data`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

PyTree = Any
DATA_AXIS = "data"


class DataParallel:
    """Placement of a training run on `devices` (default: all devices of the job)."""

    def __init__(self, devices: Sequence[jax.Device] | None = None):
        devices = list(jax.devices() if devices is None else devices)
        if not devices:
            raise ValueError("DataParallel: `devices` is empty.")
        if jax.process_count() > 1 and not any(d.process_index == jax.process_index() for d in devices):
            raise ValueError(
                f"DataParallel: in a job of {jax.process_count()} processes every process must own some of `devices`; "
                f"process {jax.process_index()} owns none of {devices}. Pass `devices=None` (every device of the job)."
            )
        self.devices = devices
        self.mesh = Mesh(np.asarray(devices), (DATA_AXIS,))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.batch_sharding = NamedSharding(self.mesh, PartitionSpec(DATA_AXIS))

    @property
    def num_devices(self) -> int:
        return len(self.devices)

    @property
    def synchronous_steps(self) -> bool:
        """Whether the training loop must wait for each step before dispatching the next.

        True for data parallelism over several *CPU* devices. XLA:CPU runs a collective
        (the gradient all-reduce) on a thread that blocks until every device's participant has
        arrived, and a step dispatched while the previous one is still running is executed, when
        its inputs become ready, on the shared intra-op thread pool — as large as the machine's
        core count. With fewer pool threads than devices, three participants can hold every
        thread while the fourth waits for one: the rendezvous times out after 40 s and the
        process aborts ("Expected 4 threads to join the rendezvous, but only 3 of them
        arrived"). A bare ``jax.jit`` + optax loop does the same on a 2-core machine (5 of 5
        runs of 2000 steps), and never when each step is awaited (0 of 5). Waiting keeps each
        step's inputs ready at dispatch, so its participants start on their own threads. The
        price, the overlap of host dispatch with device work, matters only on CPU, where
        several devices are a testing device. GPUs and TPUs run collectives on streams, not
        host threads, and keep asynchronous dispatch.
        """
        return self.num_devices > 1 and any(device.platform == "cpu" for device in self.devices)

    def put_replicated(self, tree: PyTree) -> PyTree:
        """Copy every array of `tree` to every device."""
        return jax.tree.map(lambda x: jax.device_put(x, self.replicated) if _is_array(x) else x, tree)

    def check_batch(self, batch: PyTree) -> None:
        """Data parallelism splits every batch array's leading axis evenly across the devices."""
        if self.num_devices == 1:
            return
        for leaf in jax.tree.leaves(batch):
            n = np.shape(leaf)[0] if np.ndim(leaf) else None
            if n is None or n % self.num_devices:
                raise ValueError(
                    f"fit: data parallelism over {self.num_devices} devices needs every batch array's leading "
                    f"axis to be a multiple of {self.num_devices}; got an array of shape {np.shape(leaf)}. "
                    f"Choose a batch size divisible by {self.num_devices} or pass `devices=1`."
                )

    def put_batch(self, batch: PyTree) -> PyTree:
        """Split each array of a batch along its leading axis across the devices.

        In a multi-process job `batch` is this process's slice of the global batch.
        """
        if jax.process_count() > 1:
            local = sum(device.process_index == jax.process_index() for device in self.devices)
            for leaf in jax.tree.leaves(batch):
                n = np.shape(leaf)[0] if np.ndim(leaf) else None
                if n is None or n % local:
                    raise ValueError(
                        f"fit: in a multi-process job each process passes its own slice of the batch, split over its "
                        f"{local} devices, so every array's leading axis must be a multiple of {local}; got an array "
                        f"of shape {np.shape(leaf)} on process {jax.process_index()}."
                    )
            return jax.tree.map(
                lambda x: jax.make_array_from_process_local_data(self.batch_sharding, np.asarray(x)), batch
            )
        self.check_batch(batch)
        return jax.tree.map(lambda x: jax.device_put(x, self.batch_sharding), batch)

    def constrain_batch(self, batch: PyTree) -> PyTree:
        """Inside jit: ask the compiler to keep a batch made on the device split across devices."""
        if self.num_devices == 1:
            return batch
        return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, self.batch_sharding), batch)


def _is_array(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic))
