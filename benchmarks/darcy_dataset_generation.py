"""Generation time of the FNO Darcy dataset: 1000 train + 200 test samples at 85².

Work: `jaxpde.data.DarcyConfig` solved on the 253² node grid (boundary included; "241² or
finer", and the coarsest grid from which every 3rd node gives exactly the FNO's 85² training
grid with both boundaries — 241 nodes would give 81²) and subsampled with r = 3.

1. **The dataset** (the headline): ``load_dataset`` with the default solver ``gmg`` —
   jaxpde's float32 CG preconditioned by a geometric-multigrid V-cycle
   (`jaxpde.numerics.multigrid.GeometricMultigrid`) to ``rtol = 1e-3``, then one sweep of
   iterative refinement with float-float residuals (`jaxpde.numerics.refinement`; no float64),
   vmapped over chunks of 16 samples and jit-compiled, the path that also runs on a GPU/TPU —
   timed from scratch in this process (compilation included: a user waits for it too), with
   ``cache=False`` so nothing is read from disk.
2. **Against scipy**: the same pipeline with ``solver="direct"`` — float64 SuperLU
   (`scipy.sparse.linalg.spsolve`) on the host through `jax.pure_callback`, what a CPU user
   would otherwise write, ``gmg`` without refinement (``refinement=0``: one solve to working
   precision, the previous default) and the former default ``cg`` (Jacobi-PCG, refined). The
   direct solve is of the flux-form matrix the iterative solvers apply (diagonal summed in
   float64; see `jaxpde.data.DarcyConfig`). The shared cores are
   noisy, so the solvers are compared on steady rates measured in alternation (gmg chunk,
   direct chunk, cg chunk, …; each compiled beforehand) on the same seeds, and the ratios of
   the medians are reported (wall clock and process CPU time), with the agreement of the
   solutions.
3. Optionally the paper's own 421² → 85² (r = 5) setting, steady rate on a few samples.

    python benchmarks/darcy_dataset_generation.py                   # 1000 + 200
    python benchmarks/darcy_dataset_generation.py --samples 120     # a smaller count; per-sample rate

`--samples N` splits N as 5 : 1 into train and test, like 1000 : 200.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

from jaxpde.data import DarcyConfig, load_dataset  # noqa: E402

CHUNK = 16


def split(samples: int) -> tuple[int, int]:
    n_test = samples // 6
    return samples - n_test, n_test


def timed_generation(config: DarcyConfig, progress: bool = False) -> tuple[float, object]:
    start = time.perf_counter()
    data = load_dataset(config, cache=False, chunk_size=CHUNK, progress=progress)
    return time.perf_counter() - start, data


def probe(config: DarcyConfig, samples: int, seed: int) -> DarcyConfig:
    return dataclasses.replace(config, n_train=samples, n_test=0, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1200, help="total samples (train:test = 5:1); default 1200")
    parser.add_argument("--resolution", type=int, default=253)
    parser.add_argument("--subsample", type=int, default=3)
    parser.add_argument("--compare-rounds", type=int, default=4, help="alternating gmg/direct/cg chunks (0: skip)")
    parser.add_argument("--paper-samples", type=int, default=16, help="samples timed at 421² (0: skip)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if args.samples < 2:
        parser.error("--samples must be at least 2")
    n_train, n_test = split(args.samples)
    threads = os.cpu_count()
    base = DarcyConfig(n_train=n_train, n_test=n_test, resolution=args.resolution, subsample=args.subsample)

    # 1. The dataset, from scratch.
    seconds, data = timed_generation(base, progress=not args.no_progress)
    s = data.train["solution"].shape[-1]
    label = f"Darcy dataset, {n_train}+{n_test} samples at {args.resolution}² → {s}²"
    dataset = {
        "solver": "gmg (float32 multigrid-PCG + 1 float-float refinement sweep, vmapped, jit)",
        "n_train": n_train,
        "n_test": n_test,
        "solve_grid": f"{args.resolution}x{args.resolution}",
        "stored_grid": f"{s}x{s}",
        "seconds_total_with_compilation": seconds,
        "seconds_per_sample": seconds / args.samples,
        "samples_per_second": args.samples / seconds,
    }
    print(f"dataset: {seconds:.1f} s for {args.samples} samples", flush=True)
    result = {
        "work": (
            f"FNO Darcy dataset (12/3 thresholded cosine-series GRF, f = 1, u = 0 on the boundary), "
            f"{n_train} train + {n_test} test, solved at {args.resolution}² nodes, every {args.subsample}rd node kept"
        ),
        "chunk_size": CHUNK,
        "cpu_threads_visible": threads,
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "load_average_1min_at_start_and_end": [os.getloadavg()[0]],
        "dataset": dataset,
    }
    summary = [[label + ", vmapped float32 multigrid-PCG", f"{seconds:.0f} s on {threads} CPU cores ({args.samples / seconds:.2f} samples/s, compilation included)", "—"]]

    # 2. Against the host direct solver (and the former Jacobi default), alternating, same seeds.
    if args.compare_rounds:
        configs = {name: dataclasses.replace(base, solver=name) for name in ("gmg", "direct", "cg")}
        configs["gmg_unrefined"] = dataclasses.replace(base, solver="gmg", refinement=0)
        for config in configs.values():  # compile each for this chunk shape before timing
            timed_generation(probe(config, CHUNK, seed=1000))
        rates = {name: [] for name in configs}
        cpu_rates = {name: [] for name in configs}
        differences = {"gmg": [], "gmg_unrefined": [], "cg": []}
        for round_ in range(args.compare_rounds):
            solutions = {}
            for name, config in configs.items():
                cpu = time.process_time()
                seconds_chunk, chunk = timed_generation(probe(config, CHUNK, seed=1 + round_))
                rates[name].append(CHUNK / seconds_chunk)
                cpu_rates[name].append(CHUNK / (time.process_time() - cpu))
                solutions[name] = chunk.train["solution"]
            reference = solutions["direct"].reshape(CHUNK, -1)
            for name in differences:
                diff = solutions[name].reshape(CHUNK, -1) - reference
                differences[name] += list(np.linalg.norm(diff, axis=1) / np.linalg.norm(reference, axis=1))
        median = {name: statistics.median(values) for name, values in rates.items()}
        cpu_median = {name: statistics.median(values) for name, values in cpu_rates.items()}
        result["solvers_vs_scipy_direct"] = {
            "samples_per_round": CHUNK,
            "rounds": args.compare_rounds,
            "samples_per_second": rates,
            "samples_per_cpu_second": cpu_rates,
            "median_samples_per_second": median,
            "gmg_time_over_direct_time": median["direct"] / median["gmg"],
            "gmg_cpu_time_over_direct_cpu_time": cpu_median["direct"] / cpu_median["gmg"],
            "gmg_unrefined_time_over_direct_time": median["direct"] / median["gmg_unrefined"],
            "cg_time_over_direct_time": median["direct"] / median["cg"],
            "cg_cpu_time_over_direct_cpu_time": cpu_median["direct"] / cpu_median["cg"],
            "relative_l2_vs_direct": {
                name: {"max": float(max(values)), "median": float(np.median(values))} for name, values in differences.items()
            },
        }
        summary.append(
            [
                f"Darcy {args.resolution}² per-sample solve rate, steady (alternating chunks of {CHUNK})",
                f"{median['gmg']:.2f} samples/s (float32 multigrid-PCG + float-float refinement)",
                (
                    f"scipy SuperLU float64 on the host, same pipeline: {median['direct']:.2f} samples/s; "
                    f"multigrid-PCG takes {median['direct'] / median['gmg']:.2f}× as long "
                    f"({cpu_median['direct'] / cpu_median['gmg']:.2f}× the CPU time), unrefined "
                    f"{median['direct'] / median['gmg_unrefined']:.2f}×, Jacobi-PCG "
                    f"{median['direct'] / median['cg']:.2f}×; multigrid solutions agree to "
                    f"{max(differences['gmg']):.1e} (rel. L2, max; unrefined "
                    f"{max(differences['gmg_unrefined']):.1e})"
                ),
            ]
        )

    # 3. The paper's resolution.
    if args.paper_samples:
        paper = DarcyConfig(n_train=args.paper_samples, n_test=0, resolution=421, subsample=5)
        first, _ = timed_generation(paper)
        steady_seconds, _ = timed_generation(probe(paper, args.paper_samples, seed=1))
        rate = args.paper_samples / steady_seconds
        result["paper_resolution_gmg"] = {
            "solve_grid": "421x421",
            "stored_grid": "85x85",
            "samples": args.paper_samples,
            "seconds_first_run_with_compilation": first,
            "steady_samples_per_second": rate,
            "estimated_seconds_for_1200": 1200 / rate,
        }
        summary.append(
            [
                "Darcy dataset at the paper's 421² → 85², vmapped float32 multigrid-PCG",
                f"{rate:.2f} samples/s steady ⇒ ≈ {1200 / rate / 60:.0f} min for 1000+200 (timed on {args.paper_samples} samples)",
                "—",
            ]
        )
    result["load_average_1min_at_start_and_end"].append(os.getloadavg()[0])
    result["note"] = (
        "The 2 CPU cores are shared with other jobs (see the load averages): absolute times vary by tens of "
        "percent between runs; the solver/direct ratios come from alternating runs."
    )
    result["summary"] = summary
    write_result("darcy_dataset_generation", result)


if __name__ == "__main__":
    main()
