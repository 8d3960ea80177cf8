"""Inverse heat: an initial condition from a later noisy snapshot (the backward heat equation), λ tuned by hypergradients against the closed-form oracle.

The backward heat problem is the textbook severely ill-posed inverse problem (Engl, Hanke &
Neubauer, "Regularization of Inverse Problems", 1996, §1.1): ``u_t = κ u_xx`` on the periodic unit
interval damps Fourier mode ``k`` by ``e^{−κ(2πk)²T}``, so recovering ``u₀`` from ``y = u(T) + η``
amplifies the noise in mode ``k`` by the inverse of that factor. Here:

- **Truth**: ``u₀`` a Gaussian random field (``τ = 5``, ``α = 2``) on ``n`` nodes, unit RMS;
  ``κT`` = `kappa` · `t1` (mode 1 damped by 0.82, mode 4 by 0.04, mode 8 by 4e-6).
- **Forward model**: `jaxpde.implicit.HeatForward` — ETDRK4 (exact for the heat equation) through
  `jaxpde.numerics.time_integration`; reverse mode through the steps.
- **Data**: the whole snapshot ``u(T)`` with noise ``σ = level · rms(u(T))``; a second,
  independent snapshot is held out (a repeated measurement) for choosing ``λ``.
- **Estimators**: the snapshot itself (no inversion); the exact inverse (mode by mode, divides
  by the damping: noise blows up); the unregularised fit (L-BFGS from 0, ``λ = 0``, stopped at
  `max_steps`: early stopping is its only regularisation); Tikhonov ``(λ/2)‖u₀‖²_h`` (order 0)
  and ``(λ/2)‖∇_h u₀‖²_h`` (order 1), each with ``λ`` tuned by `tune_weight` (Adam on ``log λ``
  of the held-out misfit, hypergradients through the L-BFGS solve by the implicit function
  theorem). Both Tikhonov problems have closed-form minimisers (mode by mode:
  ``û₀ = e ŷ / (e² + λhσ² s_k)``, ``s_k = 1`` or the forward-difference symbol
  ``(2 sin(πk/n)/h)²``), so the *oracle* ``λ`` — the best held-out misfit over a fine grid of
  ``λ`` — and the best achievable error are known: the tuned ``λ`` is compared with them.

Reported per noise level: relative L2 errors of ``u₀``, the misfit per node, the tuned and oracle
``λ``. Plots: the recovered ``u₀`` at 1% noise, the error against the noise level and the
bilevel iterations on ``λ``.

CPU budget by default (``n = 32``, sized to finish on a heavily shared 2-core box); ``--set scale=full`` uses ``n = 512`` and
more outer steps.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx

from jaxpde import Grid
from jaxpde.experiment import check_positive_integers, check_positive_numbers
from jaxpde.implicit._bilevel import tune_weight
from jaxpde.implicit._inverse import HeatForward, InverseProblem, minimise_inverse
from jaxpde.implicit._observations import NodeObservation, add_noise
from jaxpde.implicit._regularisers import Tikhonov
from jaxpde.pdes import Heat
from jaxpde.random_fields import GaussianRandomField


@dataclass(frozen=True)
class Config:
    scale: Literal["cpu", "full"] = "cpu"
    seed: int = 0
    points: int = 32
    kappa: float = 0.01
    t1: float = 0.5
    dt: float = 0.05
    levels: tuple[float, ...] = (0.001, 0.01, 0.05)
    max_steps: int = 100
    tune_steps: int = 5
    tune_learning_rate: float = 0.5
    weight0: float = 10.0
    progress: bool = True

    def __post_init__(self):
        check_positive_integers(self, "points", "max_steps", "tune_steps")
        if self.points < 8:
            raise ValueError(f"`points` must be at least 8, got {self.points!r}.")
        if not self.levels or any(not (0 < v < 1) for v in self.levels):
            raise ValueError(f"`levels` must be a non-empty tuple of relative noise levels in (0, 1), got {self.levels!r}.")
        check_positive_numbers(self, "kappa", "t1", "dt", "tune_learning_rate", "weight0")


def full_scale(config: Config) -> Config:
    if config.scale != "full":
        return config
    return dataclasses.replace(config, points=512, tune_steps=20, max_steps=500)


def closed_form(y, sigma, weight, order: int, config: Config):
    """The Tikhonov minimiser, mode by mode (see the module docstring)."""
    n = config.points
    h = 1.0 / n
    k = np.fft.rfftfreq(n, d=h)
    damping = np.exp(-config.kappa * (2 * np.pi * k) ** 2 * config.t1)
    symbol = np.ones_like(k) if order == 0 else (2 * np.sin(np.pi * k * h) / h) ** 2
    return np.fft.irfft(damping * np.fft.rfft(np.asarray(y)) / (damping**2 + weight * h * float(sigma) ** 2 * symbol), n=n)


def exact_inverse(y, config: Config):
    n = config.points
    k = np.fft.rfftfreq(n, d=1.0 / n)
    return np.fft.irfft(np.fft.rfft(np.asarray(y)) * np.exp(config.kappa * (2 * np.pi * k) ** 2 * config.t1), n=n)


def run(config: Config, out_dir: Path) -> dict:
    config = full_scale(config)
    out_dir = Path(out_dir)
    start_all = time.perf_counter()
    with jax.enable_x64(True):
        grid = Grid(config.points, lengths=1.0)
        k_truth, k_noise = jax.random.split(jax.random.key(config.seed))
        u0 = GaussianRandomField(grid, sigma=1.0, tau=5.0, alpha=2.0).sample(k_truth).astype(jnp.float64)
        u0 = (u0 - jnp.mean(u0)) / jnp.std(u0)
        forward = HeatForward(Heat(grid, config.kappa), config.t1, config.dt, lean=True)
        u1 = forward(u0)
        obs = NodeObservation(grid, np.arange(config.points))
        zeros = jnp.zeros(grid.shape)
        # Moderate L-BFGS tolerance: implicit_argmin's Newton–CG polish solves the quadratic exactly.
        inner = optx.LBFGS(rtol=1e-8, atol=1e-10)
        hessian_solver = lx.CG(rtol=1e-10, atol=1e-14, max_steps=10 * config.points)

        def error(u):
            return float(jnp.linalg.norm(jnp.asarray(u) - u0) / jnp.linalg.norm(u0))

        levels, fields = [], {}
        for index, level in enumerate(config.levels):
            k1, k2 = jax.random.split(jax.random.fold_in(k_noise, index))
            y, sigma = add_noise(k1, u1, level)
            y_val, _ = add_noise(k2, u1, level)
            validation = InverseProblem(forward, obs, y_val, sigma)
            plain = InverseProblem(forward, obs, y, sigma)
            row = {"level": level, "sigma": float(sigma),
                   "snapshot": {"relative_l2": error(y)}, "exact_inverse": {"relative_l2": error(exact_inverse(y, config))}}
            start = time.perf_counter()
            fit = minimise_inverse(plain, zeros, "lbfgs", max_steps=config.max_steps, throw=False)
            row["unregularised"] = {"relative_l2": error(fit.value), "misfit_per_node": 2 * float(fit.misfit) / config.points,
                                    "steps": int(fit.num_steps), "seconds": time.perf_counter() - start}
            fields[(level, "unregularised")] = fit.value
            for order in (0, 1):
                name = f"tikhonov_{order}"
                problem = InverseProblem(forward, obs, y, sigma, Tikhonov(1.0, grid.spacing, order=order))
                start = time.perf_counter()
                tuned = tune_weight(problem, validation, zeros, config.weight0, steps=config.tune_steps,
                                    learning_rate=config.tune_learning_rate, solver=inner, linear_solver=hessian_solver)
                seconds = time.perf_counter() - start
                # The oracle: held-out misfit of the closed-form minimiser on a fine grid of λ.
                grid_weights = np.logspace(-4, 8, 97)
                val = [float(validation.misfit(jnp.asarray(closed_form(y, sigma, w, order, config)))) for w in grid_weights]
                oracle = float(grid_weights[int(np.argmin(val))])
                best_error = min(error(closed_form(y, sigma, w, order, config)) for w in grid_weights)
                row[name] = {
                    "relative_l2": error(tuned.theta),
                    "misfit_per_node": 2 * float(problem.misfit(tuned.theta)) / config.points,
                    "weight": tuned.weight, "oracle_weight": oracle,
                    "closed_form_at_tuned_weight_max_abs": float(jnp.max(jnp.abs(
                        tuned.theta - closed_form(y, sigma, tuned.weight, order, config)))),
                    "relative_l2_at_oracle_weight": error(closed_form(y, sigma, oracle, order, config)),
                    "best_relative_l2_over_weights": best_error,
                    "weight_history": tuned.history["weight"].tolist(),
                    "validation_history": (2 * tuned.history["validation_misfit"] / config.points).tolist(),
                    "seconds": seconds,
                }
                fields[(level, name)] = tuned.theta
            fields[(level, "snapshot")] = y
            levels.append(row)
            if config.progress:
                print(f"inverse-heat: noise {level:g}: " + ", ".join(
                    f"{k} {row[k]['relative_l2']:.3g}" for k in ("snapshot", "exact_inverse", "unregularised", "tikhonov_0", "tikhonov_1")),
                    flush=True)

    names = ("snapshot", "exact_inverse", "unregularised", "tikhonov_0", "tikhonov_1")
    results = {"points": config.points, "kappa_t1": config.kappa * config.t1, "levels": levels}
    results["plot"] = plot(np.asarray(u0), fields, levels, config, out_dir)
    results["table"] = [("noise", *(f"rel L2 u0, {n.replace('_', ' ')}" for n in names), "λ tuned / oracle (order 0)", "λ tuned / oracle (order 1)")]
    for r in levels:
        results["table"].append((f"{100 * r['level']:g}%", *(f"{r[n]['relative_l2']:.3g}" for n in names),
                                 f"{r['tikhonov_0']['weight']:.3g} / {r['tikhonov_0']['oracle_weight']:.3g}",
                                 f"{r['tikhonov_1']['weight']:.3g} / {r['tikhonov_1']['oracle_weight']:.3g}"))
    results["summary"] = [
        [f"inverse-heat (n={config.points}, κT={config.kappa * config.t1:g}, noise {100 * r['level']:g}%): rel L2 of u0, Tikhonov H¹ (λ by hypergradient)",
         f"{r['tikhonov_1']['relative_l2']:.3f}",
         f"best over λ {r['tikhonov_1']['best_relative_l2_over_weights']:.3f}; snapshot {r['snapshot']['relative_l2']:.3f}, "
         f"unregularised {r['unregularised']['relative_l2']:.3f}, exact inverse {r['exact_inverse']['relative_l2']:.2g}"]
        for r in levels
    ]
    results["seconds"] = time.perf_counter() - start_all
    return results


def plot(u0, fields, levels, config: Config, out_dir: Path) -> str:
    try:
        import matplotlib
    except ImportError:
        return "skipped: matplotlib is not installed (pip install 'jaxpde[plots]')"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    level = min(config.levels, key=lambda v: abs(v - 0.01))
    x = np.arange(config.points) / config.points
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(x, u0, "k", lw=2, label="u0 truth")
    for name, style in (("snapshot", ":"), ("unregularised", "-."), ("tikhonov_0", "--"), ("tikhonov_1", "-")):
        axes[0].plot(x, np.asarray(fields[(level, name)]), style, label=name.replace("_", " "))
    axes[0].set(title=f"recovered u0 (noise {100 * level:g}%)", xlabel="x")
    axes[0].legend(fontsize=8)
    noise = [100 * r["level"] for r in levels]
    for name, marker in (("snapshot", "k:"), ("unregularised", "o-"), ("tikhonov_0", "s-"), ("tikhonov_1", "^-")):
        axes[1].loglog(noise, [r[name]["relative_l2"] for r in levels], marker, label=name.replace("_", " "))
    axes[1].loglog(noise, [r["tikhonov_1"]["best_relative_l2_over_weights"] for r in levels], "k--", lw=0.8, label="Tikhonov H¹, best λ")
    axes[1].set(title="rel. L2 error of u0", xlabel="noise (%)")
    axes[1].legend(fontsize=8)
    for r in levels:
        axes[2].semilogy(r["tikhonov_1"]["weight_history"], "o-", label=f"{100 * r['level']:g}%: tuned")
        axes[2].axhline(r["tikhonov_1"]["oracle_weight"], ls="--", lw=0.8, color=axes[2].lines[-1].get_color())
    axes[2].set(title="bilevel: λ per Adam step (dashed: oracle), H¹", xlabel="outer step")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "inverse_heat.png", dpi=100)
    plt.close(fig)
    return "inverse_heat.png"
