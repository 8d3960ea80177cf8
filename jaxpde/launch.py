"""Start a multi-process JAX job on this machine: ``python -m jaxpde.launch -n 2 script.py …``.

The script is the one a cluster would run: it calls `jaxpde.distributed.initialize` first,
which here reads the coordinator address, process count and index from the environment the
launcher sets, and on a cluster (SLURM, a TPU slice) finds them itself. So the same script runs
unchanged under ``srun`` or on every worker of a TPU slice, and here::

    python -m jaxpde.launch -n 2 --cpu-devices 2 train.py --steps 1000
    python -m jaxpde.launch -n 4 -m experiments.my_run

Each process gets

- ``JAXPDE_COORDINATOR_ADDRESS=127.0.0.1:PORT`` (a free port), ``JAXPDE_NUM_PROCESSES``,
  ``JAXPDE_PROCESS_ID`` and ``JAXPDE_INIT_TIMEOUT``;
- ``JAX_PLATFORMS=cpu`` and ``--xla_force_host_platform_device_count=K`` in ``XLA_FLAGS``
  (`--cpu-devices`, default 1): several processes on one machine share its CPU; a single
  accelerator cannot be split between them.

Output lines are prefixed with ``[i]``, the process index. The launcher waits for every
process; if one exits with a non-zero status, the others are killed at once and the launcher
exits with that status: their collectives can no longer complete, and whatever jaxpde writes
(checkpoints, metrics, dataset files) is committed atomically, so a kill leaves nothing
half-written. Ctrl-C (or SIGTERM to the launcher) is passed on to every process, which gets
`--grace` seconds to finish before it is killed. (JAX catches SIGTERM for its preemption
notice and carries on, hence the grace period.)
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from .distributed import ENV_ADDRESS, ENV_NUM_PROCESSES, ENV_PROCESS_ID, ENV_TIMEOUT

__all__ = ["launch", "main", "free_port", "process_environment"]

_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def process_environment(
    base: dict[str, str], process_id: int, num_processes: int, address: str, cpu_devices: int, timeout: float
) -> dict[str, str]:
    """The environment of process `process_id` (see the module docstring)."""
    flags = [flag for flag in base.get("XLA_FLAGS", "").split() if not flag.startswith(_DEVICE_COUNT_FLAG)]
    flags.append(f"{_DEVICE_COUNT_FLAG}={cpu_devices}")
    return {
        **base,
        ENV_ADDRESS: address,
        ENV_NUM_PROCESSES: str(num_processes),
        ENV_PROCESS_ID: str(process_id),
        ENV_TIMEOUT: f"{timeout:g}",
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": " ".join(flags),
        "PYTHONUNBUFFERED": "1",  # the prefixed lines arrive as they are printed
    }


def launch(
    command: Sequence[str],
    num_processes: int,
    *,
    cpu_devices: int = 1,
    timeout: float = 300.0,
    port: int | None = None,
    grace: float = 5.0,
    prefix: bool = True,
) -> int:
    """Run ``python *command`` as `num_processes` processes of one job; returns the exit status.

    0 if every process succeeded, else the status of the first to fail (128 + N for a
    process killed by signal N). See the module docstring for the environment.
    """
    if not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"launch: `num_processes` must be an integer >= 1, got {num_processes!r}.")
    if not isinstance(cpu_devices, int) or cpu_devices < 1:
        raise ValueError(f"launch: `cpu_devices` must be an integer >= 1, got {cpu_devices!r}.")
    if not command:
        raise ValueError("launch: `command` is empty; give a script (and its arguments) or -m module.")
    address = f"127.0.0.1:{port or free_port()}"
    output = sys.stdout
    write_lock = threading.Lock()
    processes, readers = [], []
    for index in range(num_processes):
        environment = process_environment(dict(os.environ), index, num_processes, address, cpu_devices, timeout)
        process = subprocess.Popen(
            [sys.executable, *command],
            env=environment,
            stdout=subprocess.PIPE if prefix else None,
            stderr=subprocess.STDOUT if prefix else None,
            start_new_session=True,  # a signal to the launcher's group does not reach them twice
        )
        processes.append(process)
        if prefix:
            reader = threading.Thread(target=_relay, args=(process.stdout, f"[{index}] ", output, write_lock), daemon=True)
            reader.start()
            readers.append(reader)

    def stop_all(signum, frame):
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, stop_all)
    status = 0
    try:
        running = set(range(num_processes))
        while running:
            for index in sorted(running):
                code = processes[index].poll()
                if code is None:
                    continue
                running.discard(index)
                if code != 0 and status == 0:
                    status = code if code > 0 else 128 - code
                    with write_lock:
                        print(
                            f"jaxpde.launch: process {index} of {num_processes} exited with status "
                            f"{_describe(code)}; stopping the other processes.",
                            file=sys.stderr,
                            flush=True,
                        )
                    _stop(processes, 0.0, first=signal.SIGKILL)
            time.sleep(0.05)
    except KeyboardInterrupt:
        _stop(processes, grace, first=signal.SIGINT)
        status = 130
    except _Terminated:
        _stop(processes, grace, first=signal.SIGTERM)
        status = 143
    finally:
        signal.signal(signal.SIGTERM, previous)
        for reader in readers:
            reader.join(timeout=2.0)
    return status


class _Terminated(Exception):
    """SIGTERM reached the launcher."""


def _relay(stream, prefix: str, output, lock) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace")
        with lock:
            output.write(prefix + line if line.endswith("\n") else prefix + line + "\n")
            output.flush()
    stream.close()


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"{128 - code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"{128 - code} (killed by signal {-code})"
    return str(code)


def _stop(processes, grace: float, first=signal.SIGTERM) -> None:
    alive = [p for p in processes if p.poll() is None]
    for process in alive:
        process.send_signal(first)
    deadline = time.monotonic() + grace
    for process in alive:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jaxpde.launch",
        description="Run a script as N processes of one JAX job on this machine (CPU devices, gloo collectives).",
    )
    parser.add_argument("-n", "--num-processes", type=int, required=True, help="processes to start")
    parser.add_argument("--cpu-devices", type=int, default=1, help="CPU devices per process (default 1)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for every process at start-up")
    parser.add_argument("--port", type=int, default=None, help="coordinator port (default: a free one)")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds between SIGTERM and SIGKILL when stopping")
    parser.add_argument("--no-prefix", action="store_true", help="do not prefix output lines with [process]")
    parser.add_argument("-m", dest="module", default=None, help="run a module (as python -m) instead of a script")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="script.py and its arguments")
    args = parser.parse_args(argv)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if args.module is not None:
        command = ["-m", args.module, *command]
    if not command:
        parser.error("give the script to run (or -m module)")
    try:
        return launch(
            command, args.num_processes, cpu_devices=args.cpu_devices, timeout=args.timeout, port=args.port,
            grace=args.grace, prefix=not args.no_prefix,
        )
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    sys.exit(main())
