"""The Laplacian of an MLP by `jaxpde.autodiff.laplacian`: Taylor mode vs forward-over-reverse.

Work: ``u: R^d -> R``, a tanh MLP (width 128, 3 hidden layers, float32), its Laplacian at a batch
of 4096 points, ``jax.jit(jax.vmap(laplacian(u, method)))``, for d = 2, 5, 10. Methods:

- ``forward``: nested `jax.jvp` along each axis — the package default, chosen by this benchmark;
- ``taylor``: d second-order jets (Taylor mode, `jax.experimental.jet`);
- ``forward_over_reverse``: the trace of ``jacfwd(jacrev(u))``, what ``jnp.trace(jax.hessian(u))``
  computes and what most PINN code writes.

All three run in one process with the same XLA thread count (whatever the machine gives the
process; recorded). Repeats are interleaved — one call of every method per round, the order
rotated each round — so noise on the shared cores hits all methods alike; the figure is the
median over rounds. The three results agree to float32 round-off (checked, reported).

    python benchmarks/autodiff_laplacian.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

from jaxpde import autodiff  # noqa: E402

WIDTH, DEPTH, BATCH = 128, 3, 4096
DIMS = (2, 5, 10)
METHODS = ("forward", "taylor", "forward_over_reverse")


def mlp(key, d):
    sizes = [d] + [WIDTH] * DEPTH + [1]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (fan_in, fan_out)) / jnp.sqrt(fan_in), jnp.zeros(fan_out)))

    def u(x):
        h = x
        for w, b in params[:-1]:
            h = jnp.tanh(h @ w + b)
        w, b = params[-1]
        return (h @ w + b)[0]

    return u


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    results, summary = {}, []
    for d in DIMS:
        u = mlp(jax.random.key(d), d)
        x = jax.random.uniform(jax.random.key(100 + d), (BATCH, d), minval=-1.0, maxval=1.0)
        fns = {m: jax.jit(jax.vmap(autodiff.laplacian(u, method=m))) for m in METHODS}
        compile_s, values = {}, {}
        for m, fn in fns.items():
            start = time.perf_counter()
            values[m] = np.asarray(jax.block_until_ready(fn(x)))
            compile_s[m] = time.perf_counter() - start
        scale = float(np.max(np.abs(values["forward_over_reverse"])))
        agreement = {
            m: float(np.max(np.abs(values[m] - values["forward_over_reverse"])) / scale) for m in METHODS
        }
        times = {m: [] for m in METHODS}
        for r in range(args.rounds):
            order = METHODS[r % len(METHODS):] + METHODS[: r % len(METHODS)]
            for m in order:
                start = time.perf_counter()
                jax.block_until_ready(fns[m](x))
                times[m].append(time.perf_counter() - start)
        medians = {m: statistics.median(t) for m, t in times.items()}
        ratios = {m: medians[m] / medians["forward"] for m in METHODS}
        results[f"d{d}"] = {
            "median_seconds": medians,
            "all_seconds": times,
            "first_call_seconds": compile_s,
            "max_relative_difference_to_forward_over_reverse": agreement,
            "time_relative_to_forward": ratios,
            "fastest": min(medians, key=medians.get),
        }
        summary.append(
            [
                f"Laplacian of a tanh MLP ({DEPTH}x{WIDTH}), d = {d}, {BATCH} points, float32",
                f"default, nested forward mode: {medians['forward'] * 1e3:.1f} ms",
                f"forward-over-reverse {medians['forward_over_reverse'] * 1e3:.1f} ms "
                f"({ratios['forward_over_reverse']:.2f}x); Taylor mode (jet) {medians['taylor'] * 1e3:.1f} ms "
                f"({ratios['taylor']:.2f}x)",
            ]
        )
    write_result(
        "autodiff_laplacian",
        {
            "work": {"width": WIDTH, "hidden_layers": DEPTH, "activation": "tanh", "batch": BATCH, "dims": DIMS,
                     "dtype": "float32", "rounds": args.rounds},
            "threads": {"cpu_count": os.cpu_count(), "XLA_FLAGS": os.environ.get("XLA_FLAGS")},
            "results": results,
            "summary": summary,
        },
    )


if __name__ == "__main__":
    main()
