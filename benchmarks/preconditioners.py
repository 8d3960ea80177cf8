"""Preconditioned CG: every jaxpde preconditioner against pyamg's smoothed-aggregation AMG, same matrices.

Work: CG to ``‖b − Au‖₂ ≤ 10⁻⁶‖b‖₂`` (float64 for the iteration counts), on

* Darcy 12/3 (`jaxpde.data.DarcySystemConfig`: the FNO-paper thresholded coefficient, 5-point
  harmonic-mean operator, ``f = 1``) at 64², 128² and 256², one held-out system per size;
* lognormal (high-contrast) diffusion (`LognormalDiffusionConfig`, ``a = exp(2 ĝ)``, contrast
  ~10⁵) at 128²;
* NeuralIF's synthetic ``A = M Mᵀ + 10⁻⁴ I`` (`SyntheticSPDConfig`) at ``n = 2000`` with
  ``ρ = 2.2·10⁻³`` (``A`` ~1% dense, as the paper's ``n = 10⁴``, where IC(0)'s level-scheduled
  factorisation and the graph networks take minutes per system on 2 cores); ``n = 10⁴`` for no
  preconditioner, Jacobi and AMG only.

Preconditioners: none, Jacobi, SSOR (ω = 1), IC(0), Chebyshev (degree 4), geometric multigrid
V(1,1), every learned one in this checkout (trained at 64² on random 12/3 coefficients — loaded
from the `precond_darcy` experiment's ``OUT/models`` with ``--models OUT/models``, else trained
here with ``--steps``; never retrained per size), and pyamg's smoothed aggregation AMG as a
scipy-side CG preconditioner (``pyamg.smoothed_aggregation_solver(A).solve(b, accel="cg")``).
Grid-only preconditioners (GMG, the spectral and CNN ones) report that they cannot take the
synthetic matrices.

A preconditioner whose solve takes over 20 s on one problem is skipped on the later, larger
ones (DCDM's CNN inside flexible CG: ~30 s at 64² on this CPU), and the results say so. Timed
after compilation, medians of 3 (one call when a solve takes over a second): setup
(building ``M`` from ``A``: factorisation, hierarchy, network inference), solve (total − setup),
total. jaxpde on XLA's CPU threads, NumPy/SciPy single-threaded (see
`benchmarks/elliptic_vs_scipy.py`). float32: the Darcy 256² system again with the classical
preconditioners, whose result says whether float32 CG reaches 10⁻⁶.

Run: ``python benchmarks/preconditioners.py [--models DIR | --steps N]`` (writes
``results/preconditioners.json``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax.numpy as jnp  # noqa: E402

from benchmarks.common import write_result  # noqa: E402
from experiments.precond_darcy import (  # noqa: E402
    LEARNED,
    classical_preconditioners,
    evaluate,
    learned_trainers,
    load_models,
    too_slow,
    train_learned,
)
from jaxpde.data._linear_systems import DarcySystemConfig, LognormalDiffusionConfig, SyntheticSPDConfig  # noqa: E402

RTOL = 1e-6
SEED = 0
TRAIN_SIZE = 64
SLOW_S = 20.0  # a preconditioner whose solve takes longer on one problem is not run on the later ones


def _log(*args):
    print(*args, flush=True)


def held_out_keys(count: int = 1):
    test_stream = jax.random.fold_in(jax.random.key(SEED), 1)
    return [jax.random.fold_in(test_stream, i) for i in range(count)]


def problems() -> dict:
    """name -> (config, preconditioner subset or None for all)."""
    cheap = ("none", "jacobi")
    return {
        "darcy_64": (DarcySystemConfig(size=64, seed=SEED), None),
        "darcy_128": (DarcySystemConfig(size=128, seed=SEED), None),
        "darcy_256": (DarcySystemConfig(size=256, seed=SEED), None),
        "lognormal_128": (LognormalDiffusionConfig(size=128, gamma=2.0, seed=SEED), None),
        "synthetic_2000": (SyntheticSPDConfig(size=2000, density=2.2e-3, seed=SEED), None),
        "synthetic_10000": (SyntheticSPDConfig(size=10_000, seed=SEED), cheap),
    }


def describe(config) -> dict:
    sample = config.sample(held_out_keys()[0])
    operator = config.operator(sample)
    matrix = (operator.to_sparse() if hasattr(operator, "to_sparse") else operator).to_scipy()
    return {"config": {"family": type(config).__name__, **config.to_dict()}, "unknowns": matrix.shape[0],
            "nnz": int(matrix.nnz), "density": matrix.nnz / matrix.shape[0] ** 2}


def stands(figures: dict, amg: dict) -> str:
    return (f"{figures['iterations']:.0f} it ({figures['iterations'] / amg['iterations']:.1f}× AMG's), total "
            f"{figures['total_s']:.3g} s ({figures['total_s'] / amg['total_s']:.2f}× AMG's)")


def summary_rows(results: dict) -> list[list[str]]:
    rows = []
    for problem, label in (("darcy_256", "Darcy 12/3 256²"), ("lognormal_128", "lognormal Darcy 128²"),
                           ("synthetic_2000", "NeuralIF synthetic n=2000")):
        figures = results[problem]["preconditioners"]
        amg = figures.get("amg")
        if not isinstance(amg, dict):
            continue
        ok = {k: v for k, v in figures.items() if isinstance(v, dict) and k != "amg"}
        learned = {k: v for k, v in ok.items() if k in LEARNED}
        shown = [k for k in ("gmg", "ic0", "jacobi") if k in ok]
        if learned:
            shown.append(min(learned, key=lambda k: learned[k]["iterations"]))
        for name in shown:
            tag = f"best learned ({name})" if name in LEARNED else name
            rows.append([f"PCG {tag}, {label}, rtol 1e-6, float64", stands(ok[name], amg),
                         f"pyamg SA-AMG {amg['iterations']:.0f} it, {amg['total_s']:.3g} s (setup included)"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=None, help="folder of learned models saved by precond_darcy")
    parser.add_argument("--steps", type=int, default=100, help="training steps per learned model without --models")
    parser.add_argument("--only", default="", help="comma-separated problems to run (default: all)")
    parser.add_argument("--no-record", action="store_true", help="print, do not write results/preconditioners.json")
    parser.add_argument("--merge", action="store_true",
                        help="replace only the problems run (with --only) in the existing results file, noting it")
    args = parser.parse_args()

    classical, missing_classical = classical_preconditioners()
    trainers, missing_learned = learned_trainers()
    start = time.perf_counter()
    with jax.enable_x64(False):  # the models are float32, as trained; cast per problem
        if args.models is not None:
            models = load_models(trainers, args.models, TRAIN_SIZE, 4)
            training = {"source": str(args.models), "loaded": sorted(models)}
        else:
            models, training = train_learned(trainers, TRAIN_SIZE, args.steps, 4, SEED, None, 3e-3, _log)
    training_s = time.perf_counter() - start
    everything = {**classical, **models}

    results = {}
    skip: dict[str, str] = {}
    chosen = [p for p in args.only.split(",") if p] or list(problems())
    for name, (config, subset) in problems().items():
        if name not in chosen:
            continue
        _log(f"{name}:")
        preconditioners = everything if subset is None else {k: everything[k] for k in subset}
        results[name] = {
            **describe(config),
            "preconditioners": evaluate(preconditioners, config, held_out_keys(), RTOL, jnp.float64, log=_log,
                                        skip=skip),
        }
        skip.update(too_slow(results[name]["preconditioners"], name, SLOW_S))
    if "darcy_256" in chosen:
        _log("darcy_256, float32:")
        subset = {k: classical[k] for k in ("none", "jacobi", "ic0", "gmg") if k in classical}
        results["darcy_256_float32"] = {
            "note": "float32 operator and vectors, the same system; CG's result says whether 1e-6 was reached",
            "preconditioners": evaluate(subset, problems()["darcy_256"][0], held_out_keys(), RTOL, jnp.float32,
                                        amg=False, log=_log),
        }
    if args.no_record:
        return
    reruns = []
    if args.merge:
        import json

        from benchmarks.common import RESULTS

        previous = json.loads((RESULTS / "preconditioners.json").read_text())
        reruns = previous.get("reruns", []) + [{"problems": sorted(results), "date": time.strftime("%Y-%m-%d %H:%M:%S")}]
        results = {**previous["problems"], **results}
    write_result(
        "preconditioners",
        {
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "work": "CG to ||b - Au|| <= 1e-6 ||b|| (float64) on Darcy 12/3 64²-256², lognormal Darcy 128², "
            "NeuralIF synthetic A = M Mᵀ + 1e-4 I; one held-out system each, every preconditioner on the same one",
            "learned": training,
            "training_or_loading_s": training_s,
            "missing_in_this_checkout": missing_classical + missing_learned,
            "reruns": reruns,
            "summary": summary_rows(results) if "darcy_256" in results else [],
            "problems": results,
        },
    )


if __name__ == "__main__":
    main()
