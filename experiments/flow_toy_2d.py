"""Flow matching and reflow on 2-D toy sets: sliced W2 and MMD against NFE, straightness and transport cost before and after reflow.

Rectified flow (Liu, Gong & Liu, ICLR 2023) trains a velocity field ``u(x, t)`` on the straight
interpolation ``x_t = (1 − t) x₀ + t x₁`` between data ``x₀`` and noise ``x₁ ~ N(0, I)``
(`jaxpde.samplers.FlowMatching` on `LinearPath`), and samples by integrating
``dx/dt = u`` from ``t = 1`` to ``0``. Its paths are curved where the straight lines cross, so
few Euler steps are inaccurate. **Reflow** retrains on the coupling the first flow defines —
pairs ``(x₀ = Φ(x₁), x₁)`` from an accurate ODE solve (`reflow_pairs`) — and gets a
*2-rectified flow* whose paths are nearly straight (Liu et al.'s Theorem 3.6: the transport cost
``E ‖x₀ − x₁‖²`` of the coupling does not increase; their Fig. 6 shows one-step generation after
one reflow). Reflow is trained with the U-shaped timestep law of Lee, Lin & Fanti (NeurIPS 2024).

For each data set (the benchmark 8 Gaussians — means ``4(cos 2πk/8, sin 2πk/8)``, std 0.3 — and
two moons), the run reports, for the 1- and 2-rectified flows (EMA weights) and, on the 8
Gaussians, for the *exact* 1-rectified flow of the mixture (its velocity is closed form,
`GaussianMixture.prediction(..., "flow")`):

- sliced Wasserstein-2 (`jaxpde.metrics.sliced_wasserstein`) and MMD² (`jaxpde.metrics.mmd2`,
  Gaussian kernel at the median bandwidth) between Euler samples at NFE ∈ `nfe` and fresh data;
- straightness ``S = ∫ E ‖(x₀ − x₁) − ẋ_t‖² dt`` (Liu et al. eq. 6; 0 for straight paths) and
  the coupling's transport cost ``E ‖x₀ − x₁‖²`` (independent coupling: ``E‖x₀‖² + d``).

Targets (Liu et al.'s qualitative claims, measured here): reflow lowers straightness by a large
factor, does not raise the transport cost, and the 2-rectified flow at 1 NFE beats the
1-rectified flow at 1 NFE in sliced W2.

CPU budget by default (a few minutes on 2 cores); ``--set scale=full`` trains 5× longer on
larger evaluation sets. Training checkpoints under ``OUT/<data set>/{rf1,rf2}``, so
``jaxpde resume OUT`` continues exactly.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpde.experiment import check_batch_size, check_open_interval, check_positive_integers, check_positive_numbers
from jaxpde.metrics import median_bandwidth, mmd2, sliced_wasserstein
from jaxpde.samplers import (
    FlowMatching,
    LinearPath,
    UShapedTime,
    eight_gaussians,
    integrate_flow,
    reflow_pairs,
    straightness,
    transport_cost,
)
from jaxpde.training import ArrayLoader, fit

DATASETS = ("eight_gaussians", "two_moons")


@dataclass(frozen=True)
class Config:
    scale: Literal["cpu", "full"] = "cpu"
    seed: int = 0
    datasets: tuple[str, ...] = DATASETS
    width: int = 128
    depth: int = 3
    steps: int = 3000
    reflow_steps: int = 3000
    batch_size: int = 256
    learning_rate: float = 2e-3
    ema_decay: float = 0.998
    reflow_pairs: int = 8192
    n_eval: int = 2048
    nfe: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    straightness_steps: int = 64
    progress: bool = True

    RUN_INDEPENDENT_KEYS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        check_positive_integers(self, "width", "depth", "steps", "reflow_steps", "batch_size", "reflow_pairs", "n_eval", "straightness_steps")
        if not self.datasets or any(d not in DATASETS for d in self.datasets):
            raise ValueError(f"`datasets` must be a non-empty subset of {DATASETS}, got {self.datasets!r}.")
        if not self.nfe or any(not (isinstance(n, int) and n > 0) for n in self.nfe):
            raise ValueError(f"`nfe` must be a non-empty tuple of positive integers, got {self.nfe!r}.")
        check_positive_numbers(self, "learning_rate")
        check_open_interval(self, "ema_decay", 0, 1)
        check_batch_size(self, pool="reflow_pairs")


def full_scale(config: Config) -> Config:
    if config.scale != "full":
        return config
    return dataclasses.replace(config, steps=5 * config.steps, reflow_steps=5 * config.reflow_steps,
                               reflow_pairs=4 * config.reflow_pairs, n_eval=4 * config.n_eval)


# ----------------------------------------------------------------------------------------------
# Data and model
# ----------------------------------------------------------------------------------------------


def two_moons(key, n: int, noise: float = 0.1) -> jax.Array:
    """Two interleaved half circles (the scikit-learn layout), centred and scaled by 2."""
    k_side, k_angle, k_noise = jax.random.split(key, 3)
    upper = jax.random.bernoulli(k_side, 0.5, (n,))
    angle = jnp.pi * jax.random.uniform(k_angle, (n,))
    x = jnp.where(upper, jnp.cos(angle), 1 - jnp.cos(angle))
    y = jnp.where(upper, jnp.sin(angle), 0.5 - jnp.sin(angle))
    points = jnp.stack([x - 0.5, y - 0.25], axis=1) * 2
    return points + 2 * noise * jax.random.normal(k_noise, (n, 2))


def sampler(name: str):
    if name == "eight_gaussians":
        mixture = eight_gaussians()
        return lambda key, n: mixture.sample(key, n)
    return two_moons


class VelocityMLP(eqx.Module):
    """``u(x, t)``: an MLP on ``(x, t)`` (one sample)."""

    mlp: eqx.nn.MLP

    def __init__(self, width: int, depth: int, *, key):
        self.mlp = eqx.nn.MLP(3, 2, width, depth, activation=jax.nn.silu, key=key)

    def __call__(self, x, t):
        return self.mlp(jnp.concatenate([x, jnp.reshape(t, (1,)).astype(x.dtype)]))


# ----------------------------------------------------------------------------------------------
# Training and evaluation
# ----------------------------------------------------------------------------------------------


def train(model, loss, data, steps: int, config: Config, key, out_dir: Path, run_config: dict):
    schedule = optax.cosine_decay_schedule(config.learning_rate, steps)
    result = fit(model, optax.adam(schedule), loss, data, steps=steps, key=key, out_dir=out_dir,
                 checkpoint_every=max(steps // 4, 1), log_every=max(steps // 20, 1), progress=config.progress,
                 ema_decay=config.ema_decay, run_config=run_config)
    return result.ema_model, result.resumed_from


# The flow is an argument (not a closure) so that every model of one architecture shares one
# compilation per NFE; Python ints (the NFE) are static under filter_jit.
_euler = eqx.filter_jit(lambda velocity, x, nfe: integrate_flow(velocity, x, steps=nfe))
_straightness = eqx.filter_jit(lambda velocity, x, steps: straightness(velocity, x, steps=steps))
_pairs = eqx.filter_jit(lambda velocity, x: reflow_pairs(velocity, x))


def evaluate(velocity, name: str, config: Config, key) -> dict:
    k_noise, k_ref, k_proj = jax.random.split(key, 3)
    noise = jax.random.normal(k_noise, (config.n_eval, 2))
    reference = sampler(name)(k_ref, config.n_eval)
    bandwidth = median_bandwidth(reference)
    out = {"sw2": {}, "mmd2": {}}
    for nfe in config.nfe:
        samples = _euler(velocity, noise, nfe)
        out["sw2"][nfe] = float(sliced_wasserstein(samples, reference, k_proj))
        out["mmd2"][nfe] = float(mmd2(samples, reference, bandwidth))
    few = noise[: min(config.n_eval, 1024)]
    out["straightness"] = float(_straightness(velocity, few, config.straightness_steps))
    x0, x1 = _pairs(velocity, few)
    out["transport_cost"] = float(transport_cost(x0, x1))
    return out


def run_dataset(name: str, config: Config, out_dir: Path) -> dict:
    key = jax.random.fold_in(jax.random.key(config.seed), DATASETS.index(name))
    k_init, k_train1, k_pairs, k_train2, k_eval = jax.random.split(key, 5)
    identity = {"experiment": "flow_toy_2d", "dataset": name, **dataclasses.asdict(config)}
    draw = sampler(name)
    model = VelocityMLP(config.width, config.depth, key=k_init)

    start = time.perf_counter()
    data = lambda k: draw(k, config.batch_size)
    rf1, resumed1 = train(model, FlowMatching(LinearPath()), data, config.steps, config, k_train1, out_dir / name / "rf1",
                          {**identity, "stage": "rf1"})
    seconds1 = time.perf_counter() - start

    # Reflow: pairs (Φ(x₁), x₁) from an adaptive Tsit5 solve of the 1-rectified flow.
    start = time.perf_counter()
    x1 = jax.random.normal(k_pairs, (config.reflow_pairs, 2))
    x0, x1 = _pairs(rf1, x1)
    pairs = ArrayLoader((np.asarray(x0), np.asarray(x1)), config.batch_size, seed=config.seed)
    # 2-rectified flow, initialised from the 1-rectified flow (Liu et al.), U-shaped times.
    rf2, resumed2 = train(rf1, FlowMatching(LinearPath(), UShapedTime()), pairs, config.reflow_steps, config, k_train2,
                          out_dir / name / "rf2", {**identity, "stage": "rf2"})
    seconds2 = time.perf_counter() - start

    results = {"rf1": evaluate(rf1, name, config, k_eval), "rf2": evaluate(rf2, name, config, k_eval)}
    if name == "eight_gaussians":
        exact = eight_gaussians().denoiser(LinearPath(), "flow")
        results["exact_rf1"] = evaluate(exact, name, config, k_eval)
    # Two independent data samples of the evaluation size: the floor of both metrics.
    # (fold_in with large tags: split(k, n)[i] and fold_in(k, i) may coincide.)
    reference, other = (draw(jax.random.fold_in(k_eval, tag), config.n_eval) for tag in (1001, 1002))
    results["data_floor"] = {"sw2": float(sliced_wasserstein(reference, other, jax.random.fold_in(k_eval, 1003))),
                             "mmd2": float(mmd2(reference, other, median_bandwidth(other)))}
    results["independent_transport_cost"] = float(jnp.mean(jnp.sum(reference**2, axis=1)) + 2)
    results["train_s"] = {"rf1": seconds1, "rf2_with_pairs": seconds2}
    results["resumed_from"] = {"rf1": resumed1, "rf2": resumed2}
    return results


def plot(results: dict, config: Config, out_dir: Path) -> str:
    try:
        import matplotlib
    except ImportError:
        return "skipped: matplotlib is not installed (pip install 'jaxpde[plots]')"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name in config.datasets:
        for flow, style in (("rf1", "-o"), ("rf2", "-s"), ("exact_rf1", ":")):
            if flow not in results[name]:
                continue
            r = results[name][flow]
            nfe = sorted(r["sw2"])
            axes[0].loglog(nfe, [r["sw2"][n] for n in nfe], style, label=f"{name} {flow}")
            axes[1].semilogx(nfe, [max(r["mmd2"][n], 1e-6) for n in nfe], style, label=f"{name} {flow}")
    axes[0].set(xlabel="NFE (Euler steps)", ylabel="sliced W2 to data", title="flow matching vs reflow")
    axes[1].set(xlabel="NFE (Euler steps)", ylabel="MMD² (median bandwidth)", yscale="log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "flow_toy_2d.png", dpi=110)
    plt.close(fig)
    return "flow_toy_2d.png"


def run(config: Config, out_dir: Path) -> dict:
    config = full_scale(config)
    out_dir = Path(out_dir)
    results = {name: run_dataset(name, config, out_dir) for name in config.datasets}
    results["plot"] = plot(results, config, out_dir)
    table = [("data / flow", *(f"SW2 @{n}" for n in config.nfe), "straightness", "transport cost")]
    for name in config.datasets:
        for flow in ("exact_rf1", "rf1", "rf2"):
            if flow in results[name]:
                r = results[name][flow]
                table.append((f"{name} {flow}", *(f"{r['sw2'][n]:.3f}" for n in config.nfe), f"{r['straightness']:.3g}",
                              f"{r['transport_cost']:.3f}"))
        floor = results[name]["data_floor"]["sw2"]
        table.append((f"{name} data vs data", *(f"{floor:.3f}" for _ in config.nfe), "—",
                      f"{results[name]['independent_transport_cost']:.3f} (independent)"))
    results["table"] = table
    one = min(config.nfe)
    summary = []
    for name in config.datasets:
        r1, r2 = results[name]["rf1"], results[name]["rf2"]
        summary.append([f"flow-toy-2d {name}: 2-rectified flow, {one} Euler step(s), sliced W2", f"{r2['sw2'][one]:.3f}",
                        f"1-rectified flow {r1['sw2'][one]:.3f}; data-vs-data floor {results[name]['data_floor']['sw2']:.3f} "
                        "(Liu et al. 2023: reflow enables one-step sampling)"])
        summary.append([f"flow-toy-2d {name}: straightness after / before reflow", f"{r2['straightness']:.3g} / {r1['straightness']:.3g}",
                        f"transport cost {r2['transport_cost']:.3f} vs {r1['transport_cost']:.3f} (must not increase)"])
    results["summary"] = summary
    return results
