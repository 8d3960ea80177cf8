"""What the benchmarks against PyTorch libraries share: the same cores and threads on both sides.

`limit_threads` must run before JAX, NumPy or torch is imported (they read their thread settings
once, at start): it pins the process to the last `threads` cores it may use, and sets one
BLAS/OpenMP thread count and XLA's single-threaded CPU flags. The pinning is what makes the
count hold for JAX: XLA's CPU runtime may run a program's independent operations on a pool of
threads whatever its intra-op flags say (several of its threads accumulate CPU time during one
jitted loop). `thread_record` describes what was set, for the results file; `record` writes
(or only prints) the results.
"""

from __future__ import annotations

import json
import os
from importlib import metadata


def threads_from_argv(argv: list[str]) -> int:
    """The value of ``--threads N`` / ``--threads=N`` in `argv` (1 if absent), read before argparse
    runs, since the settings must precede the imports."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return 1


def limit_threads(threads: int) -> None:
    """Pin the process to `threads` cores and set every library's thread count to `threads`."""
    available = sorted(os.sched_getaffinity(0))
    if not 1 <= threads <= len(available):
        raise ValueError(f"limit_threads: `threads` must be between 1 and {len(available)} (the usable cores), got {threads}.")
    os.sched_setaffinity(0, available[-threads:])
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" if threads == 1 else f"intra_op_parallelism_threads={threads}"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()


def set_torch_threads(torch, threads: int) -> None:
    """torch's intra- and inter-op pools to `threads` (call before torch runs anything)."""
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)


def thread_record(torch, threads: int, load_start) -> dict:
    """What the run was given: threads, affinity, flags, and the load average at start and now."""
    return {
        "per_side": threads,
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
        "load_average_start": list(load_start),
        "load_average_end": list(os.getloadavg()),
    }


def versions(packages) -> dict:
    """Installed versions of `packages` (``None`` for a missing one)."""
    out = {}
    for package in packages:
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def record(name: str, results: dict, write: bool) -> None:
    """``results/NAME.json`` through `benchmarks.common.write_result`, or only print the figures."""
    if write:
        from benchmarks.common import write_result

        write_result(name, results)
    else:
        print(json.dumps(results, indent=2, default=float))
