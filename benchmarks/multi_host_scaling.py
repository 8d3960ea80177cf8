"""Data-parallel `fit` over four CPU devices as 1 process × 4, 2 × 2 and 4 × 1 (gloo collectives).

The same small MLP run three ways on this machine: one process with four devices (the
gradient all-reduce stays inside one process), and two and four processes started by
`jaxpde.launch` (the all-reduce crosses processes over gloo's TCP transport). For each it
records

- the training rate: the median ``steps_per_s`` of `fit`'s log points after the first (which
  holds the compilation);
- the communication: the median time of the all-reduce the compiler inserts into every step —
  one all-reduce whose operands are the gradient of each parameter array and the loss
  (checked in the step's compiled HLO), timed alone on the same mesh — and its share of a
  step; and, for comparison, the same numbers reduced as one flat buffer. Gloo reduces the
  operands of a cross-process all-reduce one after another, one TCP round trip each, so the
  operand count matters more than the bytes on a small model.

One run per layout. On a machine with fewer cores than devices the processes also compete for
the cores, so the figures bound what a real cluster (one host per process) would show from
below; the measured all-reduce time is the part that is communication.

    python benchmarks/multi_host_scaling.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

LAYOUTS = ((1, 4), (2, 2), (4, 1))  # (processes, devices per process)
STEPS, LOG_EVERY, BATCH, WIDTH, DEPTH = 600, 50, 256, 64, 3
ALLREDUCE_REPEATS = 100


def worker() -> None:
    """One process of a layout: train, time the all-reduce, print a RESULT line (process 0)."""
    from jaxpde import distributed

    distributed.initialize()
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from jaxpde.training import fit

    def sampler(key):
        x = jax.random.uniform(key, (BATCH, 2), minval=-1.0, maxval=1.0)
        return x, jnp.sin(3 * x[:, :1]) * jnp.cos(2 * x[:, 1:])

    def loss(model, batch, key):
        x, y = batch
        return jnp.mean((jax.vmap(model)(x) - y) ** 2)

    model = eqx.nn.MLP(2, 1, WIDTH, DEPTH, activation=jnp.tanh, key=jax.random.key(0))
    result = fit(model, optax.adam(1e-3), loss, sampler, steps=STEPS, key=jax.random.key(1), log_every=LOG_EVERY, progress=False)
    rates = [record["steps_per_s"] for record in result.history[1:]]

    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    parameters = sum(leaf.size for leaf in leaves)
    mesh = Mesh(np.asarray(jax.devices()), ("data",))
    split, replicated = NamedSharding(mesh, PartitionSpec("data")), NamedSharding(mesh, PartitionSpec())

    def partials(shape):
        # One row of partial sums per device; the all-reduce sums them onto every device.
        local = np.ones((jax.local_device_count(), *shape), np.float32)
        return jax.make_array_from_process_local_data(split, local)

    # What the compiler puts in the step (one all-reduce whose operands are the gradient of
    # each parameter array and the loss), and the same numbers as one flat buffer.
    tree = [partials(leaf.shape) for leaf in leaves] + [partials(())]
    flat = partials((parameters + 1,))
    timed = {}
    for name, argument in (("tree", tree), ("flat", flat)):
        allreduce = jax.jit(lambda t: jax.tree.map(lambda x: x.sum(0), t), out_shardings=replicated)
        jax.block_until_ready(allreduce(argument))
        times = []
        for _ in range(ALLREDUCE_REPEATS):
            start = time.perf_counter()
            jax.block_until_ready(allreduce(argument))
            times.append(time.perf_counter() - start)
        timed[name] = statistics.median(times)
    if jax.process_index() == 0:
        step_s = 1.0 / statistics.median(rates)
        print("RESULT " + json.dumps({
            "processes": jax.process_count(),
            "devices_per_process": jax.local_device_count(),
            "steps_per_s_median": statistics.median(rates),
            "steps_per_s_log_points": rates,
            "allreduce_ms_median": 1e3 * timed["tree"],
            "allreduce_share_of_step": timed["tree"] / step_s,
            "allreduce_one_buffer_ms_median": 1e3 * timed["flat"],
            "allreduce_operands": len(tree),
            "parameters": int(parameters),
        }), flush=True)


def run_layout(processes: int, devices: int) -> dict:
    script = str(Path(__file__).resolve())
    if processes == 1:
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
        command = [sys.executable, script, "--worker"]
    else:
        env = dict(os.environ)
        command = [sys.executable, "-m", "jaxpde.launch", "-n", str(processes), "--cpu-devices", str(devices), script, "--worker"]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"layout {processes}×{devices} failed:\n{done.stdout}\n{done.stderr}")
    line = next(line for line in done.stdout.splitlines() if "RESULT " in line)
    return {**json.loads(line.split("RESULT ", 1)[1]), "wall_s": time.perf_counter() - started}


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from common import write_result

    load_before = os.getloadavg()
    layouts = [run_layout(processes, devices) for processes, devices in LAYOUTS]
    shown = " / ".join(f"{r['steps_per_s_median']:.0f}" for r in layouts)
    communication = " / ".join(
        f"{r['allreduce_ms_median']:.1f} ms ({100 * r['allreduce_share_of_step']:.0f}%)" for r in layouts
    )
    write_result(
        "multi_host_scaling",
        {
            "work": f"fit, MLP 2-{WIDTH}x{DEPTH}-1 tanh, Adam, sampler batch {BATCH} split over 4 CPU devices, {STEPS} steps",
            "layouts": layouts,
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "note": (
                "one run per layout; processes started by jaxpde.launch on 127.0.0.1, gloo collectives; the "
                "all-reduce timed is the step's own (one operand per parameter array, plus the loss), alone on the "
                "same mesh; allreduce_one_buffer_ms the same numbers as one buffer"
            ),
            "summary": [
                [
                    "data-parallel fit over 4 CPU devices: 1 process × 4 / 2 × 2 / 4 × 1",
                    f"{shown} steps/s",
                    f"gradient all-reduce {communication} of a step",
                ]
            ],
        },
    )


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker()
    else:
        main()
