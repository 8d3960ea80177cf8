"""DeepONet on the FNO paper's Burgers problem (u0 → u(·, 1), ν = 0.1): branch on sensor values, trunk on query points, tested at points it never saw.

Lu, Jin, Pang, Zhang & Karniadakis, "Learning nonlinear operators via DeepONet based on the
universal approximation theorem of operators", Nature Machine Intelligence 2021; the data are
those of the FNO paper (Li et al., ICLR 2021, §5.1; `jaxpde.data.BurgersConfig`, 1024 points),
whose FNO reaches **0.0018** at s = 1024 (see the fno-burgers experiment for ours). The
DeepONet (`jaxpde.neural_operators.DeepONet`) reads ``u0`` at ``m = resolution/subsample``
equispaced sensors; its trunk takes the periodic features ``(cos 2πky, sin 2πky)_{k=1..K}`` of
the query point ``y`` (the periodic trunk of Lu et al., "A comprehensive and fair comparison of
two neural operators", CMAME 2022), so the output is periodic by construction. Trained with
Adam on the relative L2 error at the sensor grid's points, it is **tested on the full
1024-point grid**: 7 of every 8 test points are points no training target was given at —
DeepONet's output is a function of ``y``, not a grid.

Unlike the FNO, the branch is tied to its sensors: a finer input must be sampled at them.

**CPU budget by default** (aimed at ≤ ~8 minutes on a quiet 2-core machine): 500 / 100 pairs,
128 sensors, latent 128, branch and trunk 128 wide, 4000 Adam steps of batch 20; ``--set
scale=full`` uses 1000 / 200 pairs and 10× the steps (not run on this machine). Checkpoints under
``OUT/deeponet``: ``jaxpde resume OUT`` continues exactly.

Recorded (CPU budget, `experiments/results/deeponet_burgers.json`, 2 shared cores at load
25–28): test relative L2 **0.0090** on the 128-point sensor grid and **0.0090** on the 1024-point
grid, 100 225 parameters; training 164 s (0.04 s/step), 32 s of CPU for the run (data cached
by fno-burgers: the same dataset), 5.5 min wall at that load; 7.5× the error of the FNO-1D of
fno-burgers (0.0012).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxpde.data import BurgersConfig, GaussianNormalizer, load_dataset, subsample
from jaxpde.experiment import check_batch_size, check_positive_integers, check_positive_numbers
from jaxpde.neural_operators import DeepONet
from jaxpde.training import ArrayLoader, fit
from jaxpde_experiments.fno_darcy import optimiser, parameter_count

PAPER_FNO_RELATIVE_L2 = 0.0018  # FNO-1D on the same problem at s = 1024 (Li et al., ICLR 2021)


@dataclass(frozen=True)
class Config:
    scale: Literal["cpu", "full"] = "cpu"
    seed: int = 0
    resolution: int = 1024
    subsample: int = 8
    n_train: int = 500
    n_test: int = 100
    latent: int = 128
    width: int = 128
    branch_depth: int = 2
    trunk_depth: int = 3
    harmonics: int = 4
    activation: Literal["tanh", "relu", "gelu", "silu"] = "gelu"
    steps: int = 4000
    batch_size: int = 20
    learning_rate: float = 1e-3
    decay_every: int = 1000
    weight_decay: float = 0.0
    checkpoint_every: int = 1000
    cache_dir: str = ""
    progress: bool = True

    RUN_INDEPENDENT_KEYS: ClassVar[tuple[str, ...]] = ("cache_dir", "checkpoint_every")

    def __post_init__(self):
        check_positive_integers(self, "resolution", "subsample", "n_train", "n_test", "latent", "width", "steps",
                                "batch_size", "decay_every", "checkpoint_every", "harmonics")
        check_positive_integers(self, "branch_depth", "trunk_depth", minimum=0)
        check_positive_numbers(self, "learning_rate")
        check_positive_numbers(self, "weight_decay", allow_zero=True)
        check_batch_size(self)
        if self.resolution % self.subsample:
            raise ValueError(f"`subsample` ({self.subsample}) must divide `resolution` ({self.resolution}): the "
                             "sensors are every subsample-th point of the periodic grid.")

    @property
    def sensors(self) -> int:
        return self.resolution // self.subsample


def full_scale(config: Config) -> Config:
    if config.scale != "full":
        return config
    return dataclasses.replace(config, n_train=1000, n_test=200, steps=10 * config.steps,
                               decay_every=10 * config.decay_every)


def build(config: Config, key) -> DeepONet:
    return DeepONet(config.sensors, 2 * config.harmonics, config.latent, branch_width=config.width,
                    branch_depth=config.branch_depth, trunk_width=config.width, trunk_depth=config.trunk_depth,
                    activation=config.activation, key=key)


def periodic_features(y, harmonics: int):
    """``(cos 2πky, sin 2πky)_{k=1..K}`` of points ``y (n,)`` in ``[0, 1)``: ``(n, 2K)``."""
    k = 2 * jnp.pi * jnp.arange(1, harmonics + 1)
    return jnp.concatenate([jnp.cos(y[:, None] * k), jnp.sin(y[:, None] * k)], axis=1)


def make_loss(decode, queries):
    def loss(model, batch, key):
        u0, u1 = batch
        prediction = decode(jax.vmap(lambda u: model(u, queries))(u0))
        error = jnp.linalg.norm((prediction - u1)[:, 0], axis=-1) / jnp.linalg.norm(u1[:, 0], axis=-1)
        return jnp.mean(error)

    return loss


@eqx.filter_jit
def _errors(model, decode, u0, u1, queries):
    prediction = decode(jax.vmap(lambda u: model(u, queries))(u0))
    return jnp.linalg.norm((prediction - u1)[:, 0], axis=-1) / jnp.linalg.norm(u1[:, 0], axis=-1)


def relative_errors(model, decode, u0, u1, queries, batch: int = 25) -> np.ndarray:
    return np.concatenate([np.asarray(_errors(model, decode, u0[i:i + batch], u1[i:i + batch], queries))
                           for i in range(0, len(u0), batch)])


def run(config: Config, out_dir: Path) -> dict:
    config = full_scale(config)
    out_dir = Path(out_dir)
    k_init, k_train = jax.random.split(jax.random.key(config.seed))
    load_start, start = os.getloadavg()[0], time.perf_counter()
    data = load_dataset(BurgersConfig(n_train=config.n_train, n_test=config.n_test, seed=config.seed,
                                      resolution=config.resolution),
                        cache_dir=config.cache_dir or None, progress=config.progress)
    u0 = {s: subsample(jnp.asarray(d["u0"])[:, None], config.subsample) for s, d in (("train", data.train), ("test", data.test))}
    u1_fine = {s: jnp.asarray(d["u1"])[:, None] for s, d in (("train", data.train), ("test", data.test))}
    u1_coarse = {s: subsample(v, config.subsample) for s, v in u1_fine.items()}
    x_norm, y_norm = GaussianNormalizer.fit(u0["train"]), GaussianNormalizer.fit(u1_coarse["train"])
    data_s = time.perf_counter() - start
    sensor_points = jnp.arange(config.sensors) / config.sensors
    fine_points = jnp.arange(config.resolution) / config.resolution
    queries = {name: periodic_features(y, config.harmonics) for name, y in (("coarse", sensor_points), ("fine", fine_points))}

    identity = {"experiment": "deeponet_burgers",
                **{k: v for k, v in dataclasses.asdict(config).items() if k not in ("progress", *Config.RUN_INDEPENDENT_KEYS)}}
    loader = ArrayLoader((x_norm.encode(u0["train"]), u1_coarse["train"]), config.batch_size, seed=config.seed)
    start = time.perf_counter()
    result = fit(build(config, k_init), optimiser(config), make_loss(y_norm.decode, queries["coarse"]), loader,
                 steps=config.steps, key=k_train, out_dir=out_dir / "deeponet", checkpoint_every=config.checkpoint_every,
                 log_every=max(config.steps // 30, 1), progress=config.progress, run_config=identity)
    train_s = time.perf_counter() - start
    model = result.model
    encoded = x_norm.encode(u0["test"])
    errors = {"coarse": relative_errors(model, y_norm.decode, encoded, u1_coarse["test"], queries["coarse"]),
              "fine": relative_errors(model, y_norm.decode, encoded, u1_fine["test"], queries["fine"])}
    results = {
        "test_relative_l2": float(errors["coarse"].mean()),
        "test_relative_l2_fine": float(errors["fine"].mean()),
        "paper_fno_relative_l2": PAPER_FNO_RELATIVE_L2,
        "sensors": config.sensors, "fine_grid": config.resolution, "n_train": config.n_train, "n_test": config.n_test,
        "parameters": parameter_count(model),
        "seconds": {"data": data_s, "train": train_s},
        "seconds_per_step": train_s / max(config.steps - (result.resumed_from or 0), 1),
        "resumed_from": result.resumed_from,
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
    }
    results["table"] = [
        ("query points", "test rel L2 (mean)", "FNO paper (s = 1024)"),
        (f"{config.sensors} (the sensor grid, as trained)", f"{results['test_relative_l2']:.4f}", f"{PAPER_FNO_RELATIVE_L2}"),
        (f"{config.resolution} (7/8 never trained at)", f"{results['test_relative_l2_fine']:.4f}", ""),
    ]
    where = f"{config.sensors} sensors, {config.n_train} pairs, latent {config.latent}, {config.steps} steps, {train_s:.0f} s training"
    results["summary"] = [
        [f"deeponet-burgers ({where}): test rel L2 on the {config.resolution}-point grid",
         f"{results['test_relative_l2_fine']:.4f}",
         f"FNO-1D {PAPER_FNO_RELATIVE_L2} at s = 1024 (Li et al. 2021); see fno-burgers for ours"],
    ]
    results["plot"] = plot(model, x_norm, y_norm, u0["test"], u1_fine["test"], queries["fine"], out_dir)
    return results


def plot(model, x_norm, y_norm, u0, u1, queries, out_dir: Path) -> str:
    try:
        import matplotlib
    except ImportError:
        return "skipped: matplotlib is not installed (pip install 'jaxpde[plots]')"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
    n = u1.shape[-1]
    x = np.arange(n) / n
    for i, axis in enumerate(axes):
        predicted = np.asarray(y_norm.decode(model(x_norm.encode(u0[i]), queries)))[0]
        axis.plot(x, np.asarray(u1[i, 0]), "k-", lw=2, label="u(·, 1) true")
        axis.plot(x, predicted, "--", label=f"DeepONet at {n} points")
        axis.set_xlabel("x")
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "deeponet_burgers.png", dpi=100)
    plt.close(fig)
    return "deeponet_burgers.png"
