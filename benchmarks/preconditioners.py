"""Preconditioned CG: every jaxpde preconditioner against pyamg's smoothed-aggregation AMG, same matrices.

Work: CG to ``‖b − Au‖₂ ≤ 10⁻⁶‖b‖₂`` (float64 for the iteration counts), on

* Darcy 12/3 (`jaxpde.data.DarcySystemConfig`: the FNO-paper thresholded coefficient, 5-point
  harmonic-mean operator, ``f = 1``) at 64², 128² and 256², one held-out system per size;
* lognormal (high-contrast) diffusion (`LognormalDiffusionConfig`, ``a = exp(2 ĝ)``, contrast
  ~10⁵) at 64², 128² and 256²;
* NeuralIF's synthetic ``A = M Mᵀ + 10⁻⁴ I`` (`SyntheticSPDConfig`) at ``n = 2000`` with
  ``ρ = 2.2·10⁻³`` (``A`` ~1% dense, as the paper's ``n = 10⁴``, where IC(0)'s level-scheduled
  factorisation and the graph networks take minutes per system on 2 cores); ``n = 10⁴`` for no
  preconditioner, Jacobi and AMG only.

Preconditioners: none, Jacobi, SSOR (ω = 1), IC(0), Chebyshev (degree 4), geometric multigrid
V(1,1), every learned one in this checkout — NeuralIF, LearnedSPAI, SpectralPreconditioner,
LearnedMultigrid, DCDM and a Fourier neural operator in `NeuralOperatorPreconditioner` — trained
at 64² on random 12/3 coefficients (loaded from the `precond_darcy` experiment's ``OUT/models``
with ``--models OUT/models``, else trained here with ``--steps``; never retrained per size), plus
a learned multigrid trained at 64² on lognormal coefficients (``learned_multigrid_lognormal``,
``--lognormal-steps``), and pyamg's smoothed aggregation AMG as a scipy-side CG preconditioner
(``pyamg.smoothed_aggregation_solver(A).solve(b, accel="cg")``). Grid-only preconditioners (GMG,
the spectral and CNN ones) report that they cannot take the synthetic matrices. DCDM runs at 64²
only: its CNN refuses other grids, and one flexible-CG solve takes ~35 s at 64² on a CPU.

Timed after compilation, medians of 3 (one call when a solve takes over a second): setup
(building ``M`` from ``A``: factorisation, hierarchy, network inference), solve (total − setup),
total. **Threads:** XLA and BLAS single-threaded on both sides (``XLA_FLAGS``,
``OPENBLAS_NUM_THREADS`` and friends default to one thread here, set before JAX and NumPy
start): a multithreaded BLAS on a small shared CPU inflated pyamg's times several-fold in an
earlier run. The load average is recorded before and after each problem (the machine is
shared): ratios within one run are the figures. float32: the Darcy 256² system again with the
classical preconditioners, whose result says whether float32 CG reaches 10⁻⁶.

The results file is rewritten after every problem (``"complete": false`` until the end).

Run: ``python benchmarks/preconditioners.py [--models DIR | --steps N]`` (writes
``results/preconditioners.json``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# One thread for BLAS (pyamg, scipy) and one for XLA, before either starts (they read these once):
# the same thread count on both sides, and no thread contention on a shared machine.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax.numpy as jnp  # noqa: E402

import equinox as eqx  # noqa: E402

from benchmarks.common import RESULTS, machine, write_result  # noqa: E402
from experiments.precond_darcy import (  # noqa: E402
    LEARNED,
    ONLY_AT_TRAIN_SIZE,
    classical_preconditioners,
    conditions,
    evaluate,
    learned_trainers,
    load_models,
    too_slow,
    train_learned,
    training_records,
)
from jaxpde.data._linear_systems import DarcySystemConfig, LognormalDiffusionConfig, SyntheticSPDConfig  # noqa: E402
from jaxpde.preconditioners import DarcySystems  # noqa: E402

RTOL = 1e-6
SEED = 0
TRAIN_SIZE = 64
SLOW_S = 300.0  # a preconditioner whose solve takes longer on one problem is not run on the later ones


def _log(*args):
    print(*args, flush=True)


def held_out_keys(count: int = 1):
    test_stream = jax.random.fold_in(jax.random.key(SEED), 1)
    return [jax.random.fold_in(test_stream, i) for i in range(count)]


def problems() -> dict:
    """name -> (config, preconditioner subset or None for all)."""
    cheap = ("none", "jacobi")
    # In order of importance (the targets are at 256²), so a run cut short keeps those.
    return {
        "darcy_256": (DarcySystemConfig(size=256, seed=SEED), None),
        "lognormal_256": (LognormalDiffusionConfig(size=256, gamma=2.0, seed=SEED), None),
        "darcy_64": (DarcySystemConfig(size=64, seed=SEED), None),
        "synthetic_2000": (SyntheticSPDConfig(size=2000, density=2.2e-3, seed=SEED), None),
        "darcy_128": (DarcySystemConfig(size=128, seed=SEED), None),
        "lognormal_64": (LognormalDiffusionConfig(size=64, gamma=2.0, seed=SEED), None),
        "lognormal_128": (LognormalDiffusionConfig(size=128, gamma=2.0, seed=SEED), None),
        "synthetic_10000": (SyntheticSPDConfig(size=10_000, seed=SEED), cheap),
    }


#: Learned preconditioners tested only where they were trained (name -> problem).
TRAIN_PROBLEM = {name: "darcy_64" for name in ONLY_AT_TRAIN_SIZE}


class LognormalSystems(DarcySystems):
    """`DarcySystems` drawing the lognormal coefficients ``a = exp(γ ĝ)`` of `LognormalDiffusionConfig`
    instead of 12/3 ones: the training sampler of the high-contrast learned multigrid."""

    gamma: float = eqx.field(static=True, default=2.0)

    def coefficient(self, key):
        return LognormalDiffusionConfig(size=self.size, gamma=self.gamma).sample(key)["coefficient"]


def describe(config) -> dict:
    sample = config.sample(held_out_keys()[0])
    operator = config.operator(sample)
    matrix = (operator.to_sparse() if hasattr(operator, "to_sparse") else operator).to_scipy()
    return {"config": {"family": type(config).__name__, **config.to_dict()}, "unknowns": matrix.shape[0],
            "nnz": int(matrix.nnz), "density": matrix.nnz / matrix.shape[0] ** 2}


def stands(figures: dict, amg: dict) -> str:
    return (f"{figures['iterations']:.0f} it ({figures['iterations'] / amg['iterations']:.1f}× AMG's), total "
            f"{figures['total_s']:.3g} s ({figures['total_s'] / amg['total_s']:.2f}× AMG's)")


def _measured(results: dict, problem: str) -> dict:
    figures = results.get(problem, {}).get("preconditioners", {})
    return {k: v for k, v in figures.items() if isinstance(v, dict)}


def _best_learned(figures: dict, names=None) -> str | None:
    """The learned preconditioner with the fewest iterations among those that converged."""
    learned = [k for k in figures if k in (names or LEARNED) and figures[k]["results"] == ["successful"]]
    return min(learned, key=lambda k: (figures[k]["iterations"], figures[k]["total_s"])) if learned else None


def summary_rows(results: dict) -> list[list[str]]:
    rows = []
    for problem, label in (("darcy_256", "Darcy 12/3 256²"), ("lognormal_256", "lognormal Darcy 256²"),
                           ("synthetic_2000", "NeuralIF synthetic n=2000")):
        figures = _measured(results, problem)
        amg = figures.pop("amg", None)
        if amg is None:
            continue
        shown = [k for k in ("gmg", "ic0", "jacobi") if k in figures]
        best = _best_learned(figures)
        if best:
            shown.append(best)
        for name in ("learned_multigrid", "learned_multigrid_lognormal"):  # the learned ones aiming at AMG
            if problem != "synthetic_2000" and name in figures and name != best:
                shown.append(name)
        for name in shown:
            tag = f"best learned ({name})" if name == best else name
            rows.append([f"PCG {tag}, {label}, rtol 1e-6, float64", stands(figures[name], amg),
                         f"pyamg SA-AMG {amg['iterations']:.0f} it, {amg['total_s']:.3g} s (setup included)"])
    return rows


def targets(results: dict) -> dict:
    """The issue's targets at 256², each with the figures it is judged on and whether it is met."""
    out: dict = {}
    darcy = _measured(results, "darcy_256")
    gmg, amg, ic0, jacobi = (darcy.get(k) for k in ("gmg", "amg", "ic0", "jacobi"))
    if gmg and amg:
        out["gmg_at_most_15_iterations_and_total_time_at_most_amg"] = {
            "gmg_iterations": gmg["iterations"], "gmg_total_s": gmg["total_s"], "amg_iterations": amg["iterations"],
            "amg_total_s": amg["total_s"], "met": gmg["iterations"] <= 15 and gmg["total_s"] <= amg["total_s"]}
    # The learned ones trained on 12/3 at 64² (the lognormal-trained multigrid is not in this race).
    best = _best_learned(darcy, [k for k in LEARNED if k in darcy])
    if best and ic0 and jacobi:
        figure = darcy[best]
        out["best_learned_at_most_ic0_and_0.35_jacobi_iterations_total_time_below_jacobi"] = {
            "best": best, "iterations": figure["iterations"], "total_s": figure["total_s"],
            "ic0_iterations": ic0["iterations"], "jacobi_iterations": jacobi["iterations"],
            "jacobi_total_s": jacobi["total_s"], "ratio_to_jacobi_iterations": figure["iterations"] / jacobi["iterations"],
            "amg_iterations": amg["iterations"] if amg else None, "amg_total_s": amg["total_s"] if amg else None,
            "met": (figure["iterations"] <= ic0["iterations"] and figure["iterations"] <= 0.35 * jacobi["iterations"]
                    and figure["total_s"] < jacobi["total_s"])}
    multigrid = {}
    for problem in (p for p in results if p.startswith("lognormal")):
        figures = _measured(results, problem)
        if "gmg" not in figures:
            continue
        row = {"gmg": figures["gmg"]["iterations"], "amg": figures.get("amg", {}).get("iterations")}
        for name in ("learned_multigrid", "learned_multigrid_lognormal"):
            if name in figures:
                row[name] = figures[name]["iterations"]
                row[f"{name}_met"] = figures[name]["iterations"] <= figures["gmg"]["iterations"]
        multigrid[problem] = row
    if multigrid:
        out["learned_multigrid_at_most_gmg_iterations_on_lognormal"] = multigrid
    return out


def train_lognormal_multigrid(trainers: dict, steps: int) -> tuple[dict, dict]:
    """The learned multigrid trained at 64² on lognormal coefficients (the high-contrast family)."""
    if "learned_multigrid" not in trainers or steps <= 0:
        return {}, {}
    start = time.perf_counter()
    model = trainers["learned_multigrid"](LognormalSystems(size=TRAIN_SIZE, batch=4), steps,
                                          jax.random.fold_in(jax.random.key(SEED), 100))
    info = {"train_s": time.perf_counter() - start, "steps": steps, "train_size": TRAIN_SIZE, "batch": 4,
            "family": "LognormalDiffusionConfig(gamma=2.0) coefficients"}
    _log(f"  trained learned_multigrid_lognormal: {steps} steps at {TRAIN_SIZE}² in {info['train_s']:.1f} s")
    return {"learned_multigrid_lognormal": model}, {"learned_multigrid_lognormal": info}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=None, help="folder of learned models saved by precond_darcy")
    parser.add_argument("--steps", type=int, default=100, help="training steps per learned model without --models")
    parser.add_argument("--lognormal-steps", type=int, default=300,
                        help="training steps of the lognormal-trained learned multigrid (0: none)")
    parser.add_argument("--wait-s", type=float, default=0.0,
                        help="with --models: wait up to this long, before the learned ones of each problem, for the "
                             "models still being trained into the folder by another process")
    parser.add_argument("--only", default="", help="comma-separated problems to run (default: all)")
    parser.add_argument("--no-record", action="store_true", help="print, do not write results/preconditioners.json")
    parser.add_argument("--merge", action="store_true",
                        help="replace only the problems run (with --only) in the existing results file, noting it")
    args = parser.parse_args()

    started = conditions()
    classical, missing_classical = classical_preconditioners()
    trainers, missing_learned = learned_trainers()
    expected = [*trainers, "learned_multigrid_lognormal"] if "learned_multigrid" in trainers else list(trainers)
    start = time.perf_counter()
    models: dict = {}
    training: dict = {}

    def load(deadline: float) -> None:
        """Load the models in --models not loaded yet (waiting until `deadline` for the expected ones)."""
        while True:
            with jax.enable_x64(False):  # the models are float32, as trained; cast per problem
                new = {k: v for k, v in load_models(trainers, args.models, TRAIN_SIZE, 4).items() if k not in models}
            models.update(new)
            training.update({"source": str(args.models), **training_records(args.models, new)})
            if new:
                _log(f"  loaded {sorted(new)}")
            if all(k in models for k in expected) or time.perf_counter() >= deadline:
                return
            time.sleep(30)

    if args.models is not None:
        load(0.0)
    else:
        with jax.enable_x64(False):
            models, training = train_learned(trainers, TRAIN_SIZE, args.steps, 4, SEED, None, 3e-3, _log)
            extra, extra_training = train_lognormal_multigrid(trainers, args.lognormal_steps)
        models.update(extra)
        training.update(extra_training)
    training_s = time.perf_counter() - start

    previous: dict = {}
    reruns: list = []
    if args.merge:
        import json

        previous = json.loads((RESULTS / "preconditioners.json").read_text())
        reruns = previous.get("reruns", [])

    def record(results: dict, complete: bool) -> dict:
        merged = {**previous.get("problems", {}), **results}
        runs = reruns + ([{"problems": sorted(results), "date": time.strftime("%Y-%m-%d %H:%M:%S")}] if previous else [])
        return {
            "complete": complete,
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "conditions": {"start": started, "end": conditions() if complete else None,
                           "note": "2 CPU cores shared with other engineers' jobs: absolute times vary with the load "
                                   "recorded per problem; ratios within this run are the figures"},
            "work": "CG to ||b - Au|| <= 1e-6 ||b|| (float64) on Darcy 12/3 64²-256², lognormal Darcy 64²-256², "
            "NeuralIF synthetic A = M Mᵀ + 1e-4 I; one held-out system each, every preconditioner on the same one",
            "dcdm": "evaluated at 64² only (darcy_64): its CNN refuses other grids, and one flexible-CG solve takes "
                    "~35 s at 64² on this CPU",
            "learned": training,
            "training_or_loading_s": training_s,
            "missing_in_this_checkout": missing_classical + missing_learned,
            "reruns": runs,
            "targets": targets(merged),
            "summary": summary_rows(merged) if "darcy_256" in merged else [],
            "problems": merged,
        }

    results = {}
    skip: dict[str, str] = {}
    chosen = [p for p in args.only.split(",") if p] or list(problems())
    for name, (config, subset) in problems().items():
        if name not in chosen:
            continue
        _log(f"{name}:")
        here = {**skip, **{k: f"not run: {ONLY_AT_TRAIN_SIZE[k]}" for k, p in TRAIN_PROBLEM.items() if p != name}}
        before = conditions()
        # The classical ones and AMG first, then the learned ones (loaded by then if being trained elsewhere).
        chosen_classical = {k: v for k, v in classical.items() if subset is None or k in subset}
        figures = evaluate(chosen_classical, config, held_out_keys(), RTOL, jnp.float64, log=_log, skip=here)
        if args.models is not None:
            load(time.perf_counter() + args.wait_s)
        chosen_learned = {k: v for k, v in models.items() if subset is None or k in subset}
        if chosen_learned:
            figures.update(evaluate(chosen_learned, config, held_out_keys(), RTOL, jnp.float64, log=_log, skip=here,
                                    amg=False))
        results[name] = {
            **describe(config),
            "preconditioners": figures,
            "load_average_before_after": [before["load_average_1_5_15_min"], list(os.getloadavg())],
        }
        skip.update(too_slow(results[name]["preconditioners"], name, SLOW_S))
        if not args.no_record:
            _write_partial(record(results, complete=False))
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
    write_result("preconditioners", record(results, complete=True))


def _write_partial(result: dict) -> None:
    """The results so far, in the final file's format (``"complete": false``), without printing them."""
    import json

    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": "preconditioners", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), **result}
    (RESULTS / "preconditioners.json").write_text(json.dumps(payload, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
