"""FNO-2D training and inference: jaxpde against neuraloperator 2.0 (PyTorch, CPU) and pdequinox (JAX).

Work: the FNO paper's Darcy model at 64² — modes 12, width 32, 4 Fourier layers, batch 20, Adam
(lr 1e-3), the relative L2 loss ``mean_b ‖û_b − u_b‖₂ / ‖u_b‖₂`` — on the same data on every
side: `jaxpde.data.DarcyConfig` at ``resolution = 64, subsample = 1`` (two-phase coefficient
12/3, ``f = 1``, zero Dirichlet pressure), generated once here (no download). Inputs are the
coefficient mapped to ±1, targets the pressure divided by its training-set standard deviation;
float32 everywhere.

The three models, built to be the same network:

- **jaxpde** `jaxpde.neural_operators.FNO(1, 1, modes=(12, 12), width=32, depth=4)`: coordinate
  channels (``j/(s − 1)``), lifting ``3 → 32``, four layers ``σ(𝒦v + Wv + b)`` (no σ after the
  last), projection ``32 → 128 → 1``. Its retained wavenumbers are ``|k_1| ≤ 11`` and
  ``0 ≤ k_2 ≤ 11``: 23 × 12 per channel pair.
- **neuraloperator** ``neuralop.models.FNO(n_modes=(23, 22), hidden_channels=32, n_layers=4,
  lifting_channel_ratio=0, projection_channel_ratio=4, use_channel_mlp=False,
  fno_skip="linear", positional_embedding="grid")``: neuraloperator counts the modes of the
  first axis in total around 0 (23: ``k_1 = −11 … 11``) and halves the last one for the real
  FFT (``22 // 2 + 1 = 12``), so this keeps exactly jaxpde's wavenumbers; its lifting is then one
  linear layer, its projection ``32 → 128 → 1``, no channel MLP in the blocks (the FNO paper's
  block). Two differences that cost no parameters: it applies σ twice in a block without the
  channel MLP (neuraloperator 2.0's ``FNOBlocks``), and its grid embedding is ``j/s``. The
  library's own defaults (``n_modes=(12, 12)``: 12 × 7 wavenumbers, a lifting MLP 3 → 64 → 32,
  a channel MLP in every block) are timed too, as ``neuraloperator_defaults`` — the
  configuration of the figure in the issue (0.69 s per step on one thread).
- **pdequinox** ``ClassicFNO(2, 3, 1, hidden_channels=32, num_modes=12, num_blocks=4)``, fed the
  two coordinate channels explicitly: its spectral layers keep ``k_1 = −12 … 11`` (24 × 12,
  4 % more weights than jaxpde's) and its projection is one linear layer ``32 → 1``.

Parameter counts are reported per side (real numbers; a complex weight counts twice).

Timing (after warm-up steps, which include XLA's compilation): training steps — forward,
backward, Adam update on one batch of 20, the same batches in the same order on every side —
interleaved in rounds (each round runs `--steps-per-round` steps of every side, the order
rotated round by round, so load changes on the shared machine touch every side alike); each
step is timed by wall clock and by process CPU time (every thread of the process), and the
figures are medians. The ratio uses **process CPU time**: with one thread per side, it is the
work done, and it is robust to other jobs on the machine (wall-time ratios are reported beside
it). Inference: the forward pass on a batch of 20 (``torch.inference_mode`` / a jitted
``vmap``), samples per second from the median. Every side also reports its test relative L2
on 20 held-out samples after the timed steps (the same number of updates on the same batches;
a check that each side trains, not an accuracy benchmark).

Threads: ``--threads 1`` (default) pins the process to one core (``os.sched_setaffinity``: with
XLA's thread flags alone a jitted loop still spreads over several XLA threads) and sets
``torch.set_num_threads(1)``, ``torch.set_num_interop_threads(1)``, XLA's
``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`` and one BLAS/OpenMP thread,
before JAX and torch start (`benchmarks/_versus_torch.py`). The measured process-CPU / wall ratio
of each side is recorded (the same on both sides when they share the core alike).

Run: ``python benchmarks/fno_vs_neuraloperator.py [--rounds 10] [--steps-per-round 3]
[--threads 1] [--no-record]`` (writes ``results/fno_vs_neuraloperator.json``; ~5 minutes on one
thread of a quiet machine).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._versus_torch import limit_threads, record, set_torch_threads, thread_record, threads_from_argv, versions  # noqa: E402

# Before JAX, NumPy and torch start: they read their thread settings once.
THREADS = threads_from_argv(sys.argv)
limit_threads(THREADS)
import statistics  # noqa: E402
import time  # noqa: E402

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from jaxpde.data import DarcyConfig  # noqa: E402

RESOLUTION, BATCH, MODES, WIDTH, DEPTH, LR = 64, 20, 12, 32, 4, 1e-3
N_TRAIN, N_TEST = 100, 20


# ----------------------------------------------------------------------------- data


def darcy_data(n_train: int = N_TRAIN, n_test: int = N_TEST) -> dict[str, np.ndarray]:
    """Coefficient → pressure pairs at 64² from `DarcyConfig`, normalised (see the docstring)."""
    config = DarcyConfig(resolution=RESOLUTION, subsample=1, n_train=n_train, n_test=n_test, seed=0)
    sample = jax.jit(jax.vmap(config.sample))
    keys = jax.random.split(jax.random.key(0), n_train + n_test)
    chunks = [sample(keys[i : i + BATCH]) for i in range(0, n_train + n_test, BATCH)]
    a = np.concatenate([np.asarray(c["coefficient"]) for c in chunks])
    u = np.concatenate([np.asarray(c["solution"]) for c in chunks])
    x = ((a - 0.5 * (config.high + config.low)) / (0.5 * (config.high - config.low)))[:, None].astype(np.float32)
    y = (u / u[:n_train].std())[:, None].astype(np.float32)
    return {"x_train": x[:n_train], "y_train": y[:n_train], "x_test": x[n_train:], "y_test": y[n_train:]}


def batch_indices(step: int, n_train: int) -> slice:
    start = (step * BATCH) % n_train
    return slice(start, start + BATCH)


def node_coordinates(n: int) -> np.ndarray:
    x = np.arange(n, dtype=np.float32) / (n - 1)
    return np.stack(np.meshgrid(x, x, indexing="ij"))


# ----------------------------------------------------------------------------- sides


class Side:
    """One library's model: ``step(i) -> loss`` (one Adam update on batch i, blocking),
    ``infer()`` (forward on a test batch, blocking), ``test_error()``, ``parameters``."""

    name: str
    parameters: int
    description: str

    def step(self, i: int) -> float: ...

    def infer(self) -> None: ...

    def test_error(self) -> float: ...


class TorchSide(Side):
    def __init__(self, data, name: str, defaults: bool = False):
        import torch
        from neuralop.models import FNO as TorchFNO

        self.torch, self.name = torch, name
        torch.manual_seed(0)
        if defaults:
            kwargs = dict(n_modes=(MODES, MODES))
            self.description = "neuralop.models.FNO(n_modes=(12, 12), hidden_channels=32, n_layers=4), library defaults otherwise"
        else:
            kwargs = dict(
                n_modes=(2 * MODES - 1, 2 * MODES - 2), lifting_channel_ratio=0, projection_channel_ratio=4,
                use_channel_mlp=False, fno_skip="linear", positional_embedding="grid",
            )
            self.description = (
                "neuralop.models.FNO(n_modes=(23, 22), hidden_channels=32, n_layers=4, lifting_channel_ratio=0, "
                "projection_channel_ratio=4, use_channel_mlp=False, fno_skip='linear', positional_embedding='grid')"
            )
        self.model = TorchFNO(in_channels=1, out_channels=1, hidden_channels=WIDTH, n_layers=DEPTH, **kwargs)
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.parameters = sum(p.numel() * (2 if p.is_complex() else 1) for p in self.model.parameters())
        self.x_train, self.y_train = (torch.from_numpy(data[k]) for k in ("x_train", "y_train"))
        self.x_test, self.y_test = (torch.from_numpy(data[k]) for k in ("x_test", "y_test"))
        self.retained = self._retained_modes()

    def _retained_modes(self) -> list[int]:
        conv = self.model.fno_blocks.convs[0]
        return list(conv.weight.shape[2:])

    def loss(self, prediction, target):
        dims = tuple(range(1, target.ndim))
        diff = self.torch.linalg.vector_norm(prediction - target, dim=dims)
        return (diff / self.torch.linalg.vector_norm(target, dim=dims)).mean()

    def step(self, i):
        index = batch_indices(i, len(self.x_train))
        self.model.train()
        self.optimiser.zero_grad(set_to_none=True)
        loss = self.loss(self.model(self.x_train[index]), self.y_train[index])
        loss.backward()
        self.optimiser.step()
        return float(loss.item())

    def infer(self):
        self.model.eval()
        with self.torch.inference_mode():
            self.model(self.x_test[:BATCH])

    def test_error(self):
        self.model.eval()
        with self.torch.inference_mode():
            return float(self.loss(self.model(self.x_test), self.y_test))


def relative_l2(prediction, target):
    axes = tuple(range(1, target.ndim))
    return jnp.mean(jnp.sqrt(jnp.sum((prediction - target) ** 2, axis=axes) / jnp.sum(target**2, axis=axes)))


class JaxSide(Side):
    """An equinox model mapping one sample, trained by a jitted optax Adam step."""

    def __init__(self, data, name: str, model, description: str, extra_channels: np.ndarray | None = None):
        self.name, self.description = name, description
        self.parameters = sum(
            leaf.size * (2 if jnp.iscomplexobj(leaf) else 1) for leaf in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
        )

        def inputs(x):
            x = jnp.asarray(x)
            if extra_channels is None:
                return x
            grid = jnp.broadcast_to(jnp.asarray(extra_channels), (x.shape[0], *extra_channels.shape))
            return jnp.concatenate([x, grid], axis=1)

        self.x_train, self.y_train = inputs(data["x_train"]), jnp.asarray(data["y_train"])
        self.x_test, self.y_test = inputs(data["x_test"]), jnp.asarray(data["y_test"])
        optimiser = optax.adam(LR)
        params, static = eqx.partition(model, eqx.is_inexact_array)
        self.state = (params, optimiser.init(params))

        def loss_fn(params, x, y):
            return relative_l2(jax.vmap(eqx.combine(params, static))(x), y)

        @jax.jit
        def step(state, x, y):
            params, opt_state = state
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            updates, opt_state = optimiser.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        self._step = step
        self._forward = jax.jit(lambda params, x: jax.vmap(eqx.combine(params, static))(x))
        self._error = jax.jit(lambda params, x, y: relative_l2(jax.vmap(eqx.combine(params, static))(x), y))

    def step(self, i):
        index = batch_indices(i, self.x_train.shape[0])
        self.state, loss = self._step(self.state, self.x_train[index], self.y_train[index])
        return float(loss)  # blocks

    def infer(self):
        jax.block_until_ready(self._forward(self.state[0], self.x_test[:BATCH]))

    def test_error(self):
        return float(self._error(self.state[0], self.x_test, self.y_test))


def jaxpde_side(data) -> JaxSide:
    from jaxpde.neural_operators import FNO

    model = FNO(1, 1, modes=(MODES, MODES), width=WIDTH, depth=DEPTH, key=jax.random.key(0))
    description = "jaxpde.neural_operators.FNO(1, 1, modes=(12, 12), width=32, depth=4) (coordinates='nodes', projection 128)"
    return JaxSide(data, "jaxpde", model, description)


def pdequinox_side(data) -> JaxSide:
    import pdequinox

    model = pdequinox.arch.ClassicFNO(2, 3, 1, hidden_channels=WIDTH, num_modes=MODES, num_blocks=DEPTH, key=jax.random.key(0))
    description = "pdequinox.arch.ClassicFNO(2, 3, 1, hidden_channels=32, num_modes=12, num_blocks=4), coordinates j/(s-1) as input channels 2-3"
    return JaxSide(data, "pdequinox", model, description, extra_channels=node_coordinates(RESOLUTION))


# ----------------------------------------------------------------------------- timing


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def time_training(sides: dict[str, Side], rounds: int, per_round: int, warmup: int) -> dict:
    """Warm-up steps (XLA compiles here), then interleaved rounds of timed steps."""
    out = {name: {"warmup_wall_s": [], "wall_s": [], "cpu_s": [], "losses": []} for name in sides}
    step = {name: 0 for name in sides}
    for name, side in sides.items():
        for _ in range(warmup):
            loss_box = []
            out[name]["warmup_wall_s"].append(timed(lambda: loss_box.append(side.step(step[name])))[0])
            out[name]["losses"].append(loss_box[0])
            step[name] += 1
        print(f"  {name:26s} warm-up {', '.join(f'{t:.2f}' for t in out[name]['warmup_wall_s'])} s", flush=True)
    names = list(sides)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            side = sides[name]
            for _ in range(per_round):
                loss_box = []
                wall, cpu = timed(lambda: loss_box.append(side.step(step[name])))
                out[name]["wall_s"].append(wall)
                out[name]["cpu_s"].append(cpu)
                out[name]["losses"].append(loss_box[0])
                step[name] += 1
        print(
            f"  round {r + 1}/{rounds}: "
            + ", ".join(f"{n} {statistics.median(out[n]['cpu_s']):.3f}" for n in names)
            + " CPU s/step (medians so far)  load " + " ".join(f"{v:.1f}" for v in os.getloadavg()),
            flush=True,
        )
    for name in names:
        figures = out[name]
        figures["steps_total"] = step[name]
        figures["wall_s_median"] = statistics.median(figures["wall_s"])
        figures["cpu_s_median"] = statistics.median(figures["cpu_s"])
        figures["cpu_per_wall"] = sum(figures["cpu_s"]) / sum(figures["wall_s"])
    return out


def time_inference(sides: dict[str, Side], rounds: int) -> dict:
    out = {name: {"wall_s": [], "cpu_s": []} for name in sides}
    for side in sides.values():
        side.infer()
        side.infer()
    names = list(sides)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            wall, cpu = timed(sides[name].infer)
            out[name]["wall_s"].append(wall)
            out[name]["cpu_s"].append(cpu)
    for name in names:
        figures = out[name]
        figures["wall_s_median"] = statistics.median(figures["wall_s"])
        figures["cpu_s_median"] = statistics.median(figures["cpu_s"])
        figures["samples_per_s_wall"] = BATCH / figures["wall_s_median"]
        figures["samples_per_s_cpu"] = BATCH / figures["cpu_s_median"]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="threads per side (read before JAX starts)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps-per-round", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--inference-rounds", type=int, default=15)
    parser.add_argument("--no-defaults", action="store_true", help="skip neuraloperator with its default options")
    parser.add_argument("--no-record", action="store_true", help="print the figures; leave results/ untouched")
    args = parser.parse_args()

    import torch

    set_torch_threads(torch, THREADS)
    load_start = os.getloadavg()
    started = time.perf_counter()
    print("data: DarcyConfig 64², generating", flush=True)
    data = darcy_data()
    data_s = time.perf_counter() - started

    sides: dict[str, Side] = {
        "jaxpde": jaxpde_side(data),
        "neuraloperator": TorchSide(data, "neuraloperator"),
        "pdequinox": pdequinox_side(data),
    }
    if not args.no_defaults:
        sides["neuraloperator_defaults"] = TorchSide(data, "neuraloperator_defaults", defaults=True)
    for name, side in sides.items():
        print(f"  {name:26s} {side.parameters:>9,d} parameters", flush=True)

    print("training steps", flush=True)
    training = time_training(sides, args.rounds, args.steps_per_round, args.warmup)
    print("inference", flush=True)
    inference = time_inference(sides, args.inference_rounds)
    errors = {name: side.test_error() for name, side in sides.items()}

    def ratio(kind, key, name, against="neuraloperator"):
        return kind[name][key] / kind[against][key]

    results = {
        "work": {
            "data": f"jaxpde.data.DarcyConfig(resolution={RESOLUTION}, subsample=1): {N_TRAIN} training + {N_TEST} test "
            "samples, coefficient mapped to ±1, pressure / its training std; float32",
            "model": f"FNO-2D, modes {MODES} (jaxpde's wavenumbers |k1| <= 11, 0 <= k2 <= 11), width {WIDTH}, {DEPTH} "
            "Fourier layers, projection 128",
            "batch": BATCH,
            "optimiser": f"Adam lr {LR}",
            "loss": "relative L2, mean over the batch",
            "timed_steps_per_side": args.rounds * args.steps_per_round,
            "warmup_steps_per_side": args.warmup,
        },
        "threads": thread_record(torch, THREADS, load_start),
        "library_versions": versions(("torch", "neuraloperator", "tensorly", "tensorly-torch", "pdequinox", "equinox", "jax", "jaxlib", "optax")),
        "models": {
            name: {"description": side.description, "parameters": side.parameters,
                   **({"neuraloperator_weight_modes": side.retained} if isinstance(side, TorchSide) else {})}
            for name, side in sides.items()
        },
        "data_generation_s": data_s,
        "training": training,
        "inference": inference,
        "test_relative_l2_after_timed_steps": errors,
        "ratios": {
            "training_step_cpu_jaxpde_vs_neuraloperator": ratio(training, "cpu_s_median", "jaxpde"),
            "training_step_wall_jaxpde_vs_neuraloperator": ratio(training, "wall_s_median", "jaxpde"),
            "training_step_cpu_jaxpde_vs_pdequinox": ratio(training, "cpu_s_median", "jaxpde", "pdequinox"),
            "training_step_wall_jaxpde_vs_pdequinox": ratio(training, "wall_s_median", "jaxpde", "pdequinox"),
            "inference_cpu_jaxpde_vs_neuraloperator": ratio(inference, "cpu_s_median", "jaxpde"),
            "inference_cpu_jaxpde_vs_pdequinox": ratio(inference, "cpu_s_median", "jaxpde", "pdequinox"),
            **(
                {"training_step_cpu_jaxpde_vs_neuraloperator_defaults": ratio(training, "cpu_s_median", "jaxpde", "neuraloperator_defaults")}
                if "neuraloperator_defaults" in sides else {}
            ),
        },
        "target": "training step time jaxpde / neuraloperator <= 0.5 (process CPU time, one thread per side)",
        "total_s": time.perf_counter() - started,
    }
    results["meets_target"] = bool(results["ratios"]["training_step_cpu_jaxpde_vs_neuraloperator"] <= 0.5)
    results["notes"] = (
        "Ratios are jaxpde / other (below 1: jaxpde faster), from medians of per-step process CPU time (all threads "
        "of the process; one thread per side), wall-time ratios beside them. The machine is shared (load averages "
        "recorded); steps of all sides are interleaved round by round."
    )
    results["summary"] = summary_rows(results)
    record("fno_vs_neuraloperator", results, write=not args.no_record)


def summary_rows(results: dict) -> list[list[str]]:
    """Rows for benchmarks/report.py: [work, jaxpde figure, compared with / target]."""
    t, i, r, m = results["training"], results["inference"], results["ratios"], results["models"]
    threads = results["threads"]["per_side"]
    rows = [
        [
            f"FNO-2D training step (64², modes 12, width 32, 4 layers, batch 20, Adam, rel. L2), {threads} thread",
            f"{t['jaxpde']['cpu_s_median']:.3g} s ({m['jaxpde']['parameters']:,} parameters)",
            f"neuraloperator {t['neuraloperator']['cpu_s_median']:.3g} s (ratio {r['training_step_cpu_jaxpde_vs_neuraloperator']:.2f}, "
            f"target ≤ 0.5; {m['neuraloperator']['parameters']:,} parameters); pdequinox {t['pdequinox']['cpu_s_median']:.3g} s "
            f"(ratio {r['training_step_cpu_jaxpde_vs_pdequinox']:.2f}); process CPU time, medians",
        ],
        [
            f"FNO-2D inference (64², batch 20), {threads} thread",
            f"{i['jaxpde']['samples_per_s_cpu']:.3g} samples/s",
            f"neuraloperator {i['neuraloperator']['samples_per_s_cpu']:.3g} samples/s, pdequinox "
            f"{i['pdequinox']['samples_per_s_cpu']:.3g} samples/s",
        ],
    ]
    return rows


if __name__ == "__main__":
    main()
