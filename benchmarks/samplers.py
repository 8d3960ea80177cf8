"""Diffusion samplers as diffrax solvers: error vs NFE on every grid, against plain diffrax.

The benchmark problem (fixed, so figures compare across runs and papers' setups): the VP-SDE
with linear β from 0.1 to 20 (`VPLinear`), sampled from t = 1 to t = 1e-3; data the
equal-weight mixture of 8 isotropic Gaussians with means 4(cos 2πk/8, sin 2πk/8) and std 0.3
(`eight_gaussians`); 4096 starting points x₁ ~ N(0, I); error = mean L2 distance of the end
points to a Dopri8 solve of the same probability-flow ODE at rtol = atol = 1e-10 (per sample),
float64.

For every sampler (DDIM, DPM-Solver-2/3, DPM-Solver++ 2M/3M, UniPC bh1/bh2, DEIS-2/3, EDM's
Heun; DPM-Solver++ 2M/3M, UniPC-bh2 and DEIS-3 also with a first-order last step, "lof", DPM-Solver's
``lower_order_final``) and plain diffrax (Euler, Heun, Tsit5) on the same grids, at NFE
budgets 5, 10, 20, 50 (each takes the most steps that fit; the NFE actually spent is
recorded), on every grid: uniform t, uniform log-SNR, time-quadratic, Karras (ρ = 7) and
learned (a `LearnedGrid` optimised through the sampler from the time-quadratic grid, on 256
other starting points, then evaluated on the 4096; at NFE 10 for every sampler, at 5 and 20
for `LEARNED_MORE`). Two models:

- ``mixture``: the exact noised-mixture ε (ground truth, no training);
- ``trained``: a small MLP ε-model (3 × 128 SiLU, sinusoidal time features) trained with
  `DenoisingScoreMatching` through `jaxpde.training.fit` (float32, then cast to float64 to
  sample); its reference is its own Dopri8 solve. Its learned grids are the ones learned on
  the exact mixture (transfer, no re-learning).

Wall time: one batch of 4096 samples, median of `TIMING_REPEATS` calls after compilation (the
grids of one sampler and NFE run as one vmapped call; the figure is that call's time / the
number of grids). The record is rewritten after every entry, so a cut run leaves a valid,
partial JSON (``"complete": false``). On a shared CPU run it in the background:

    OPENBLAS_NUM_THREADS=1 nohup python benchmarks/samplers.py > /tmp/samplers.log 2>&1 &

Options: ``[--points 4096] [--learn-iterations 40] [--learned-nfes 10] [--learned-more-nfes 5 20]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, machine  # noqa: E402

from jaxpde.samplers import Denoiser, VPLinear, eight_gaussians  # noqa: E402
from jaxpde.samplers._ddim import DDIM  # noqa: E402
from jaxpde.samplers._deis import DEIS  # noqa: E402
from jaxpde.samplers._dpm_solver import DPMSolver2, DPMSolver3, DPMSolverPP2M, DPMSolverPP3M  # noqa: E402
from jaxpde.samplers._edm import EDMHeun  # noqa: E402
from jaxpde.samplers._grids import Karras, TimeQuadratic, UniformLogSNR, UniformTime  # noqa: E402
from jaxpde.samplers._learned_schedule import learn_schedule, mean_l2_error, reference_endpoints  # noqa: E402
from jaxpde.samplers._losses import DenoisingScoreMatching  # noqa: E402
from jaxpde.samplers._sample import evaluations, solve, steps_for_nfe  # noqa: E402
from jaxpde.samplers._solvers import DiffusionTerm  # noqa: E402
from jaxpde.samplers._unipc import UniPC  # noqa: E402
from jaxpde.training import fit  # noqa: E402

T_START, T_END = 1.0, 1e-3
NFES = (5, 10, 20, 50)
SOLVERS = {
    "DDIM": DDIM(),
    "DPM-Solver-2": DPMSolver2(),
    "DPM-Solver-3": DPMSolver3(),
    "DPM-Solver++(2M)": DPMSolverPP2M(),
    "DPM-Solver++(3M)": DPMSolverPP3M(),
    "UniPC-bh1": UniPC(predictor_order=2, variant="bh1"),
    "UniPC-bh2": UniPC(predictor_order=2, variant="bh2"),
    "DEIS-2": DEIS(2),
    "DEIS-3": DEIS(3),
    # Lower order on the last step (DPM-Solver's and UniPC's `lower_order_final`).
    "DPM-Solver++(2M) lof": DPMSolverPP2M(final_order=1),
    "DPM-Solver++(3M) lof": DPMSolverPP3M(final_order=1),
    "UniPC-bh2 lof": UniPC(predictor_order=2, variant="bh2", final_order=1),
    "DEIS-3 lof": DEIS(3, final_order=1),
    "EDM-Heun": EDMHeun(),
    "diffrax Euler": diffrax.Euler(),
    "diffrax Heun": diffrax.Heun(),
    "diffrax Tsit5": diffrax.Tsit5(),
}
# Besides NFE 10 (every sampler), learned grids at the other NFE for these.
LEARNED_MORE = ("DPM-Solver++(2M) lof", "UniPC-bh2 lof", "DEIS-3", "diffrax Euler")
TIMING_REPEATS = 2
FIXED_GRIDS = {"uniform_t": UniformTime(), "log_snr": UniformLogSNR(), "time_quadratic": TimeQuadratic(), "karras": Karras()}


class MLP(eqx.Module):
    """ε-model for one 2-D sample: [x, sin/cos features of log-SNR] -> 3 × 128 SiLU -> 2."""

    layers: list
    frequencies: jax.Array

    def __init__(self, key, width=128, depth=3, features=16):
        keys = jax.random.split(key, depth + 1)
        sizes = [2 + 2 * features] + [width] * depth + [2]
        self.layers = [eqx.nn.Linear(a, b, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys)]
        self.frequencies = jnp.exp(jnp.linspace(0.0, 4.0, features))

    def __call__(self, x, t):
        # Time enters through t itself (on [1e-3, 1]), at several frequencies.
        phase = jax.lax.stop_gradient(self.frequencies) * t
        h = jnp.concatenate([x, jnp.sin(phase), jnp.cos(phase)])
        for layer in self.layers[:-1]:
            h = jax.nn.silu(layer(h))
        return self.layers[-1](h)


def write_partial(name: str, result: dict) -> Path:
    """``results/NAME.json`` with the machine, rewritten after every entry (a cut run leaves a valid record)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), **result}
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a file
    return path


def train_model(schedule, mixture, steps: int, seed: int = 0):
    mixture32 = eight_gaussians(dtype=jnp.float32)
    with jax.enable_x64(False):
        model = MLP(jax.random.key(seed))
        loss = DenoisingScoreMatching(schedule, "eps")
        start = time.perf_counter()
        result = fit(
            model, optax.adamw(optax.cosine_decay_schedule(2e-3, steps), weight_decay=1e-4), loss,
            lambda key: mixture32.sample(key, 512), steps=steps, key=jax.random.key(seed + 1),
            progress=False, log_every=max(1, steps // 10), ema_decay=0.999,
        )
        seconds = time.perf_counter() - start
    trained = result.ema_model if result.ema_model is not None else result.model
    trained = jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, trained)
    history = [float(h.get("loss", np.nan)) for h in result.history if "loss" in h]
    return trained, {"steps": steps, "train_s": seconds, "final_loss": history[-1] if history else None}


@eqx.filter_jit
def _solve_grids(term, solver, ts_stack, x):
    return jax.vmap(lambda ts: solve(term, solver, ts, x).ys[-1])(ts_stack)


def run_model(denoiser, x, reference, results, label, learned_grids, write, learn=None):
    """Every sampler at every NFE on every grid, the learned one included, for one model.

    `learn(name, solver, steps)` returns a learned grid (and its training record), or None; the
    mixture learns, the trained model reuses the mixture's grids (``learned_grids``). The grids
    of one (sampler, NFE) run as one vmapped call; `write` records after every entry.
    """
    schedule = denoiser.schedule
    term = DiffusionTerm(denoiser, event_shape=x.shape[1:])
    for name, solver in SOLVERS.items():
        results.setdefault(name, {})
        for nfe in NFES:
            try:
                steps = steps_for_nfe(solver, nfe)
            except ValueError as error:
                results[name][str(nfe)] = {"skipped": str(error)}
                continue
            entry = {"nfe": evaluations(solver, steps), "steps": steps}
            if learn is not None and (name, nfe) not in learned_grids and steps >= 2:
                learned = learn(name, solver, nfe, steps)
                if learned is not None:
                    learned_grids[(name, nfe)], entry["learning"] = learned
            grids = {g: rule(schedule, steps, T_START, T_END, x.dtype) for g, rule in FIXED_GRIDS.items()}
            if (name, nfe) in learned_grids:
                grids["learned"] = learned_grids[(name, nfe)](schedule, steps, T_START, T_END, x.dtype)
                entry["learned_grid"] = [float(t) for t in grids["learned"]]
            ts_stack = jnp.stack(list(grids.values()))
            start = time.perf_counter()
            ys = jax.block_until_ready(_solve_grids(term, solver, ts_stack, x))
            first = time.perf_counter() - start
            times = []
            for _ in range(TIMING_REPEATS):
                start = time.perf_counter()
                jax.block_until_ready(_solve_grids(term, solver, ts_stack, x))
                times.append(time.perf_counter() - start)
            entry["error"] = {g: float(mean_l2_error(y, reference)) for g, y in zip(grids, ys)}
            entry["seconds_per_batch"] = statistics.median(times) / len(grids)
            entry["first_call_s"] = first
            results[name][str(nfe)] = entry
            print(f"[{label}] {name:22s} NFE {nfe:3d} ({entry['nfe']}): "
                  + " ".join(f"{g} {e:.4f}" for g, e in entry["error"].items()), flush=True)
            write()


def learner(denoiser, x_train, reference_train, learned_nfes, iterations, only):
    """The mixture's grid learner: a `LearnedGrid` from the time-quadratic grid, by Adam through the sampler."""

    def learn(name, solver, nfe, steps):
        wanted = learned_nfes.get(nfe)
        if wanted is None or (wanted != "all" and name not in wanted) or (only is not None and name not in only):
            return None
        start = time.perf_counter()
        grid, history = learn_schedule(
            denoiser, solver, x_train, reference_train, steps, init=TimeQuadratic(),
            t_start=T_START, t_end=T_END, optimiser=optax.adam(0.05), iterations=iterations,
        )
        return grid, {"learn_s": time.perf_counter() - start, "train_loss_initial": history["initial_loss"],
                      "train_loss_final": history["final_loss"], "iterations": iterations}

    return learn


def best(results, nfe, grids):
    options = [
        (entry["error"][g], name, g)
        for name, by_nfe in results.items()
        for key, entry in by_nfe.items()
        if key == str(nfe) and "error" in entry
        for g in grids
        if g in entry["error"]
    ]
    return min(options) if options else (float("nan"), "-", "-")


def summary_rows(mixture_results, trained_results, complete):
    fixed_best = best(mixture_results, 10, list(FIXED_GRIDS))
    learned_best = best(mixture_results, 10, ["learned"])
    diffrax_only = {k: v for k, v in mixture_results.items() if k.startswith("diffrax")}
    plain, plain_learned = best(diffrax_only, 10, list(FIXED_GRIDS)), best(diffrax_only, 10, ["learned"])
    nan = {"log_snr": np.nan, "time_quadratic": np.nan}
    pp2m = mixture_results.get("DPM-Solver++(2M)", {}).get("10", {}).get("error", nan)
    rows = [
        ["8-Gaussian VP-SDE, 10 NFE, best sampler on a fixed grid",
         f"{fixed_best[0]:.4f} ({fixed_best[1]}, {fixed_best[2]})", "target <= 0.02; DPM-Solver++(2M) 0.036 (time-quadratic)"],
        ["8-Gaussian VP-SDE, 10 NFE, learned schedule",
         f"{learned_best[0]:.4f} ({learned_best[1]})", "target <= 0.0105 (Euler at 100 NFE); stretch 0.0034 (Heun at 100 NFE)"],
        ["8-Gaussian VP-SDE, 10 NFE, DPM-Solver++(2M) uniform log-SNR / time-quadratic",
         f"{pp2m.get('log_snr', np.nan):.3f} / {pp2m.get('time_quadratic', np.nan):.3f}", "independent implementation 0.179 / 0.036"],
        ["8-Gaussian VP-SDE, 10 NFE, plain diffrax best on a fixed grid (learned grid)",
         f"{plain[0]:.3f} ({plain[1]}, {plain[2]}); learned {plain_learned[0]:.3f} ({plain_learned[1]})", "anchor 0.125 (Euler)"],
    ]
    if trained_results:
        t_fixed, t_learned = best(trained_results, 10, list(FIXED_GRIDS)), best(trained_results, 10, ["learned"])
        t_plain = best({k: v for k, v in trained_results.items() if k.startswith("diffrax")}, 10, list(FIXED_GRIDS))
        rows.append(["trained 2-D MLP (DSM) on the 8 Gaussians, 10 NFE: best fixed grid / transferred learned grid",
                     f"{t_fixed[0]:.4f} ({t_fixed[1]}, {t_fixed[2]}) / {t_learned[0]:.4f} ({t_learned[1]})",
                     f"plain diffrax {t_plain[0]:.3f} ({t_plain[1]}, {t_plain[2]}); error vs the model's own Dopri8 solve"])
    if not complete:
        rows.append(["samplers benchmark: scope of this record", "partial (run cut before the end)",
                     "see `work` and the entries present"])
    return rows


def main():
    global NFES
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=4096)
    parser.add_argument("--train-points", type=int, default=256)
    parser.add_argument("--learn-iterations", type=int, default=40)
    parser.add_argument("--learned-nfes", type=int, nargs="*", default=[10], help="learn a grid for every sampler at these NFE")
    parser.add_argument("--learned-more-nfes", type=int, nargs="*", default=[5, 20],
                        help="and for the samplers in --learned-more at these")
    parser.add_argument("--learned-more", nargs="*", default=list(LEARNED_MORE))
    parser.add_argument("--train-steps", type=int, default=4000)
    parser.add_argument("--no-trained", action="store_true")
    parser.add_argument("--solvers", nargs="*", default=None, help="a subset of the samplers (a smoke run); not recorded")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--nfes", type=int, nargs="*", default=list(NFES))
    parser.add_argument("--learned-solvers", nargs="*", default=None, help="learn grids only for these samplers")
    args = parser.parse_args()
    NFES = tuple(args.nfes)
    if args.solvers:
        for name in list(SOLVERS):
            if name not in args.solvers:
                del SOLVERS[name]
    record = not (args.no_record or args.solvers)
    learned_nfes = {n: list(args.learned_more) for n in args.learned_more_nfes}
    learned_nfes.update({n: "all" for n in args.learned_nfes})

    schedule, mixture = VPLinear(), eight_gaussians(dtype=jnp.float64)
    x = jax.random.normal(jax.random.key(0), (args.points, 2), jnp.float64)
    x_train = jax.random.normal(jax.random.key(1), (args.train_points, 2), jnp.float64)
    exact = mixture.denoiser(schedule, "eps")
    start = time.perf_counter()
    reference = reference_endpoints(exact, x, T_START, T_END)
    reference_train = reference_endpoints(exact, x_train, T_START, T_END)
    reference_s = time.perf_counter() - start
    begun = time.perf_counter()

    out = {"work": {"schedule": "VPLinear(0.1, 20)", "t": [T_START, T_END], "points": args.points,
                    "data": "8 Gaussians, radius 4, std 0.3", "reference": "Dopri8 rtol=atol=1e-10 per sample, float64",
                    "nfes": NFES, "grids": [*FIXED_GRIDS, "learned"], "learn_iterations": args.learn_iterations,
                    "learned_at": {str(n): v for n, v in learned_nfes.items()}, "train_points": args.train_points,
                    "learned_init": "time_quadratic", "learned_samplers": args.learned_solvers or "all",
                    "trained_model": not args.no_trained,
                    "timing": f"seconds_per_batch: median of {TIMING_REPEATS} calls after the first (compiling) one, "
                              "of one vmapped call over the grids, divided by their number",
                    "samplers": {name: repr(solver) for name, solver in SOLVERS.items()}},
           "threads": {"cpu_count": os.cpu_count(), "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
                       "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
                       "load_average_at_start": os.getloadavg()},
           "reference_s": reference_s}
    mixture_results, trained_results = {}, {}
    out["mixture"] = mixture_results

    def write(complete=False):
        if not record:
            return
        out["complete"] = complete
        out["elapsed_s"] = time.perf_counter() - begun
        out["load_average_now"] = os.getloadavg()
        out["summary"] = summary_rows(mixture_results, trained_results, complete)
        out["all_best_at_nfe"] = {str(n): dict(zip(("error", "sampler", "grid"), best(mixture_results, n, [*FIXED_GRIDS, "learned"])))
                                  for n in NFES}
        out["mixture_10_nfe_table"] = [
            [name, by_nfe["10"].get("nfe")] + [round(by_nfe["10"]["error"].get(g, float("nan")), 5) for g in [*FIXED_GRIDS, "learned"]]
            for name, by_nfe in mixture_results.items() if "error" in by_nfe.get("10", {})
        ]
        write_partial("samplers", out)

    grids = {}
    learn = learner(exact, x_train, reference_train, learned_nfes, args.learn_iterations, args.learned_solvers)
    run_model(exact, x, reference, mixture_results, "mixture", grids, write, learn=learn)

    if not args.no_trained:
        model, training = train_model(schedule, mixture, args.train_steps)
        trained = Denoiser(model, schedule, "eps")
        trained_reference = reference_endpoints(trained, x, T_START, T_END)
        out["trained_model"] = {**training, "architecture": "MLP 3x128 SiLU, sin/cos(t) features, eps-prediction",
                                "loss": "DenoisingScoreMatching(VPLinear, eps), batch 512, AdamW cosine 2e-3, EMA 0.999",
                                "learned_grids": "the mixture's (transferred, not re-learned)",
                                "distance_of_trained_to_exact_endpoints": float(mean_l2_error(trained_reference, reference))}
        out["trained"] = trained_results
        run_model(trained, x, trained_reference, trained_results, "trained", grids, write)

    write(complete=True)
    for row in summary_rows(mixture_results, trained_results, True):
        print(" | ".join(row))


if __name__ == "__main__":
    main()
