"""What every benchmark shares: timing by medians, and result files that say where they ran.

A benchmark runs jaxpde and the library a user would otherwise pick on the same work, in one
process, and writes ``benchmarks/results/NAME.json`` through `write_result`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    """The machine and library versions, recorded with every result."""
    import jax

    versions = {}
    for package in ("jax", "jaxlib", "equinox", "optax", "diffrax", "lineax", "optimistix", "numpy", "scipy", "exponax", "jaxpde"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax_backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "python": platform.python_version(),
        "versions": versions,
    }


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over `repeats` calls, after `warmup` untimed calls.

    ``fn`` must block until its work is done (``jax.block_until_ready`` on JAX outputs).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def first_call_seconds(fn: Callable[[], object]) -> float:
    """Wall time of one call: compile plus run when ``fn`` is fresh."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def write_result(name: str, result: dict) -> Path:
    """Write ``results/NAME.json`` with the machine description added, and print it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), **result}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    print(json.dumps(result, indent=2, default=float))
    return path
