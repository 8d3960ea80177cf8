"""Several processes, one job: start-up with a deadline, and the few collectives jaxpde needs.

A multi-process JAX job runs the same script in every process (one per host on a TPU pod
slice or a SLURM GPU cluster; several on one machine for testing, see `jaxpde.launch`).
Each process calls `initialize` before anything else touches JAX; afterwards `jax.devices()`
lists every device of every process, and `jaxpde.training.fit` and
`jaxpde.data.load_dataset` run across all of them.

`initialize` takes its arguments, in order of precedence, from

1. its own arguments;
2. the environment `jaxpde.launch` sets: ``JAXPDE_COORDINATOR_ADDRESS`` (``host:port``),
   ``JAXPDE_NUM_PROCESSES``, ``JAXPDE_PROCESS_ID`` and ``JAXPDE_INIT_TIMEOUT`` (seconds);
3. JAX's cluster detection (Cloud TPU, SLURM, Open MPI, …): ``jax.distributed.initialize()``
   with no arguments. Where nothing is detected the call does nothing and the script runs as
   one process, unchanged.

**A missing peer is an error, not a hang.** JAX's own start-up waits for every process to
register with the coordinator and, past its deadline, aborts inside C++ with a message
blaming "another task" — or, with the default deadline, waits five minutes first. `initialize`
watches the start-up from a thread: a process that has not met all its peers within
`timeout` seconds prints which one it is, how many it expected and where, and exits with
status `EXIT_TIMEOUT`.

**A failing process leaves at once.** Once the job runs, an uncaught exception in one
process would otherwise wait at JAX's exit barrier (up to five minutes) for peers that are
themselves blocked in a collective waiting for it. `initialize` makes such a process print
its traceback and exit with status 1 straight away, so its peers' collectives fail and a
launcher (`jaxpde.launch`, ``srun``) stops the job.

On CPU the collectives run over gloo (TCP), which `initialize` selects.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Sequence

import jax
import numpy as np

__all__ = [
    "EXIT_TIMEOUT",
    "initialize",
    "is_primary",
    "all_agree",
    "allgather_bytes",
    "barrier",
    "same_on_every_process",
]

ENV_ADDRESS = "JAXPDE_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAXPDE_NUM_PROCESSES"
ENV_PROCESS_ID = "JAXPDE_PROCESS_ID"
ENV_TIMEOUT = "JAXPDE_INIT_TIMEOUT"

EXIT_TIMEOUT = 75  # EX_TEMPFAIL: the job may well succeed when every process starts
# JAX's own start-up deadline is set this much beyond ours, so that ours fires first.
_JAX_DEADLINE_MARGIN_S = 60


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout: float | None = None,
    local_device_ids: int | Sequence[int] | None = None,
) -> bool:
    """Join the job's other processes; returns whether this is a multi-process job.

    **Arguments** (each ``None`` reads the launcher's environment, then JAX's cluster
    detection; see the module docstring):

    - `coordinator_address`: ``host:port`` of process 0's coordination service.
    - `num_processes`: processes in the job, ``>= 1``.
    - `process_id`: this process's index, ``0 <= process_id < num_processes``.
    - `timeout`: seconds to wait for every process to register (default
      ``$JAXPDE_INIT_TIMEOUT`` or 300). Past it the process exits with `EXIT_TIMEOUT` and a
      message naming itself, the expected process count and the coordinator.
    - `local_device_ids`: passed to `jax.distributed.initialize` (which local accelerators
      this process uses).

    Call it before any other JAX call. Calling it again is a no-op.
    """
    if jax.distributed.is_initialized():
        return jax.process_count() > 1
    environ = os.environ
    coordinator_address = coordinator_address or environ.get(ENV_ADDRESS) or None
    num_processes = _int_or_none(num_processes, ENV_NUM_PROCESSES, "num_processes")
    process_id = _int_or_none(process_id, ENV_PROCESS_ID, "process_id")
    if timeout is None:
        timeout = float(environ.get(ENV_TIMEOUT, 300))
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"initialize: `timeout` must be a positive number of seconds, got {timeout!r}.")
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"initialize: `num_processes` must be >= 1, got {num_processes}.")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"initialize: `process_id` must be in [0, {num_processes}), got {process_id}.")
    if num_processes == 1:
        return False  # nothing to join
    # Gloo is JAX's CPU default today; naming it keeps CPU collectives working if that changes.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    explicit = coordinator_address is not None or num_processes is not None or process_id is not None
    who = "this process" if process_id is None else f"process {process_id}"
    expected = "all processes" if num_processes is None else f"all {num_processes} processes"
    where = coordinator_address or "the address the cluster environment names"
    done = threading.Event()

    def watchdog():
        if done.wait(timeout):
            return
        sys.stderr.write(
            f"jaxpde.distributed.initialize: {who} could not meet {expected} at the coordinator {where} "
            f"within {timeout:g} s: a process failed to start (or crashed), the address or port is wrong, "
            f"or a firewall blocks it. Exiting with status {EXIT_TIMEOUT}.\n"
        )
        sys.stderr.flush()
        os._exit(EXIT_TIMEOUT)

    threading.Thread(target=watchdog, name="jaxpde-initialize-watchdog", daemon=True).start()
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
            local_device_ids=local_device_ids,
            initialization_timeout=int(timeout) + _JAX_DEADLINE_MARGIN_S,
        )
    except ValueError as error:
        if explicit or "coordinator_address" not in str(error):
            raise
        return False  # no launcher and no cluster detected: one process
    finally:
        done.set()
    multi = jax.process_count() > 1
    if multi:
        _exit_at_once_on_uncaught_exceptions()
    return multi


def _int_or_none(value, variable: str, name: str) -> int | None:
    if value is not None:
        return int(value)
    text = os.environ.get(variable)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"initialize: ${variable} (`{name}`) must be an integer, got {text!r}.") from None


def _exit_at_once_on_uncaught_exceptions() -> None:
    previous = sys.excepthook

    def hook(kind, value, tb):
        try:
            previous(kind, value, tb)
        except Exception:  # a broken hook must not keep the process alive
            traceback.print_exception(kind, value, tb)
        sys.stdout.flush()
        sys.stderr.flush()
        # Skip JAX's exit barrier: the peers are blocked in a collective waiting for this
        # process, and would hold it there until the barrier's deadline.
        os._exit(1)

    sys.excepthook = hook


def is_primary() -> bool:
    """Whether this is process 0, the one that writes the files every process agrees on."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process has reached the barrier `name` (no-op in one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def allgather_bytes(data: np.ndarray) -> np.ndarray:
    """Every process's `data` (a NumPy array of one shape and dtype on every process), stacked
    along a new leading axis in process order, bit for bit.

    The bytes travel as ``uint8``, so no dtype is converted on the way (float64 with x64 off,
    say). In one process: ``data[None]``.
    """
    data = np.ascontiguousarray(data)
    if jax.process_count() == 1:
        return data[None]
    from jax.experimental import multihost_utils

    raw = data.reshape(-1).view(np.uint8)
    gathered = np.asarray(multihost_utils.process_allgather(raw, tiled=False))
    return gathered.view(data.dtype).reshape(jax.process_count(), *data.shape)


def all_agree(flag: bool) -> bool:
    """Whether `flag` is true on every process (a collective: every process must call it)."""
    if jax.process_count() == 1:
        return bool(flag)
    return bool(allgather_bytes(np.asarray([bool(flag)], np.uint8)).all())


def same_on_every_process(value: int) -> list[int] | None:
    """``None`` if the integer `value` (a checksum, a count) is the same on every process,
    else the list of every process's value. A collective."""
    if jax.process_count() == 1:
        return None
    values = allgather_bytes(np.asarray([value], np.int64))[:, 0].tolist()
    return None if len(set(values)) == 1 else values
