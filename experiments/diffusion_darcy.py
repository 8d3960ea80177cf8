"""Diffusion model of Darcy (coefficient, pressure) pairs; reconstruction from 5% of the pressure by DPS against regularised least squares through the solver.

DiffusionPDE (Huang et al., NeurIPS 2024) learns the *joint* distribution of a PDE's coefficient
and solution with a diffusion model and recovers both from sparse observations of either by
diffusion posterior sampling (DPS; Chung et al., ICLR 2023), optionally guided by the PDE
residual too. This experiment does that for the FNO Darcy problem ``-∇·(a∇u) = 1`` on the unit
square (`jaxpde.data.DarcyConfig`: ``a ∈ {3, 12}`` a thresholded Gaussian random field), at a
CPU size:

1. **Data**: ``n_train`` pairs ``(a, u)`` on an ``s × s`` node grid from jaxpde's Darcy solver
   (multigrid PCG), generated and cached by the data config; ``n_test`` held-out pairs.
   The model sees ``x₀ = (ā, ū)``, two channels, ``ā = (a − 7.5)/4.5 ∈ {−1, 1}`` and ``ū`` the
   pressure standardised by the training mean and standard deviation.
2. **Prior**: a small convolutional U-Net (`UNet`, channels first, one sample) predicting the
   noise ``ε`` of the VP-SDE (`VPLinear`, β from 0.1 to 20), trained with
   `DenoisingScoreMatching` under `jaxpde.training.fit`, EMA weights for sampling.
3. **Observations**: for each held-out pair, the pressure at ``observed_fraction`` (5%) of the
   interior nodes, drawn at random, plus Gaussian noise of standard deviation
   ``obs_noise × rms(u)``.
4. **DPS**: the reverse SDE (Euler–Maruyama, ``dps_steps`` steps) of the posterior score
   `jaxpde.samplers.DPS` — the prior score plus the guidance ``−∇_x ‖y − A(x̂₀(x, t))‖`` through
   Tweedie's denoised estimate, where ``A`` picks the observed pressure nodes of the sample's
   pressure channel — with Chung et al.'s normalised step ``ζ'`` = `dps_scale` per sampler step
   (`ChungStep`; ζ' = 1, Chung et al.'s value, measured best of 0.5, 1 and 4: pressure error
   0.126, 0.108, 0.202). With ``pde_weight > 0`` the forward model also
   returns the PDE residual ``−∇_h·(a ∇_h u) − 1`` of ``x̂₀`` (weighted, observed as zero), as in
   DiffusionPDE (measured with the default prior: ``pde_weight = 0.03`` gives 0.120 pressure error
   against 0.108 without; ``pde_weight = 1`` makes the sampler diverge — the residual of the
   early, far-from-data ``x̂₀`` dominates the normalised step). ``n_posterior`` samples per case; the reported reconstruction is each sample
   (mean error over samples) and their mean.
5. **Baseline** (not generative): regularised least squares through the solver. The coefficient
   is a log field ``a = exp θ`` on the nodes; Adam minimises
   ``½ Σ_obs ((u(a) − y)/σ_y)² / m + λ ‖∇_h θ‖²`` with gradients *through*
   `jaxpde.pdes.Darcy.solve`; its pressure is the solve at the final ``a``. Every ``λ`` in
   `tikhonov` is run and the one with the lowest mean pressure error is reported: an oracle
   choice that favours the baseline.

Reported: relative L2 errors (on the interior nodes) of the pressure and the coefficient against
the truth, mean over the held-out pairs, for both methods — and, for the coefficient, after
thresholding at the midpoint 7.5 (the truth is two-phase). DiffusionPDE works at 128² with 500
observed points and a large EDM-style U-Net; at this CPU size (a 16² grid, 10 observed points, a
network trained for minutes) the prior is far weaker, so the figures here are this experiment's
own measurement of DPS against the baseline, not a reproduction of the paper's numbers.

CPU budget by default (16² grid, 384 training pairs, a few minutes on 2 cores);
``--set scale=full`` runs 64² with 8× the data, a wider network, 16× the training and 1000
DPS steps (not run on this machine). Training checkpoints under ``OUT/prior``, so
``jaxpde resume OUT`` continues exactly.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpde.data import DarcyConfig, load_dataset
from jaxpde.experiment import check_batch_size, check_open_interval, check_positive_integers, check_positive_numbers
from jaxpde.grids import Grid
from jaxpde.numerics.stencils import DiffusionOperator
from jaxpde.pdes.elliptic import Darcy
from jaxpde.samplers import DPS, Denoiser, DenoisingScoreMatching, UniformTimeGrid, VPLinear, sample
from jaxpde.training import ArrayLoader, fit

HIGH, LOW = 12.0, 3.0
_PRIOR_KEYS = ("seed", "size", "n_train", "width", "steps", "batch_size", "learning_rate", "ema_decay")
MID, HALF = (HIGH + LOW) / 2, (HIGH - LOW) / 2


@dataclass(frozen=True)
class Config:
    scale: Literal["cpu", "full"] = "cpu"
    seed: int = 0
    size: int = 16
    n_train: int = 384
    n_test: int = 4
    width: int = 16
    steps: int = 1200
    batch_size: int = 32
    learning_rate: float = 2e-3
    ema_decay: float = 0.995
    observed_fraction: float = 0.05
    obs_noise: float = 0.01
    dps_steps: int = 200
    dps_scale: float = 1.0
    pde_weight: float = 0.0
    n_posterior: int = 4
    baseline_steps: int = 300
    baseline_lr: float = 0.05
    tikhonov: tuple[float, ...] = (1e-4, 1e-3, 1e-2)
    cache_dir: str = ""
    progress: bool = True

    RUN_INDEPENDENT_KEYS: ClassVar[tuple[str, ...]] = ("cache_dir",)

    def __post_init__(self):
        check_positive_integers(self, "n_train", "n_test", "width", "steps", "batch_size", "dps_steps", "n_posterior", "baseline_steps")
        if not (isinstance(self.size, int) and self.size >= 8 and self.size % 4 == 0):
            raise ValueError(f"`size` must be a multiple of 4 and at least 8 (the U-Net halves it twice), got {self.size!r}.")
        check_batch_size(self)
        check_open_interval(self, "observed_fraction", 0, 1, closed_high=True)
        check_positive_numbers(self, "learning_rate", "obs_noise", "dps_scale", "baseline_lr")
        check_positive_numbers(self, "pde_weight", allow_zero=True)
        check_open_interval(self, "ema_decay", 0, 1)
        if not self.tikhonov or any(not (lam >= 0 and math.isfinite(lam)) for lam in self.tikhonov):
            raise ValueError(f"`tikhonov` must be a non-empty tuple of non-negative weights, got {self.tikhonov!r}.")


def full_scale(config: Config) -> Config:
    if config.scale != "full":
        return config
    # 64² (DiffusionPDE works at 128²), 8× the data, a wider net trained 16× longer, DPS with
    # Chung et al.'s 1000 steps.
    return dataclasses.replace(config, size=64, n_train=8 * config.n_train, n_test=4 * config.n_test, width=2 * config.width,
                               steps=16 * config.steps, batch_size=2 * config.batch_size, dps_steps=1000,
                               baseline_steps=1000)


# ----------------------------------------------------------------------------------------------
# The prior's network: a two-level convolutional U-Net, channels first, one sample
# ----------------------------------------------------------------------------------------------


class ResBlock(eqx.Module):
    """``x + conv(silu(conv(silu(x)) + W e(t)))`` with a 1×1 skip when the channels change."""

    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d
    time: eqx.nn.Linear
    skip: eqx.nn.Conv2d | None

    def __init__(self, c_in: int, c_out: int, embedding: int, *, key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.conv1 = eqx.nn.Conv2d(c_in, c_out, 3, padding=1, key=k1)
        self.conv2 = eqx.nn.Conv2d(c_out, c_out, 3, padding=1, key=k2)
        self.time = eqx.nn.Linear(embedding, c_out, key=k3)
        self.skip = None if c_in == c_out else eqx.nn.Conv2d(c_in, c_out, 1, key=k4)

    def __call__(self, x, emb):
        h = self.conv1(jax.nn.silu(x)) + self.time(emb)[:, None, None]
        h = self.conv2(jax.nn.silu(h))
        return h + (x if self.skip is None else self.skip(x))


class UNet(eqx.Module):
    """``ε̂(x_t, t)`` for ``x_t`` of shape ``(2, s, s)``: resolutions ``s``, ``s/2``, ``s/4``, skip connections."""

    embed: eqx.nn.MLP
    inc: eqx.nn.Conv2d
    enc1: ResBlock
    down1: eqx.nn.Conv2d
    enc2: ResBlock
    down2: eqx.nn.Conv2d
    mid: ResBlock
    up2: eqx.nn.ConvTranspose2d
    dec2: ResBlock
    up1: eqx.nn.ConvTranspose2d
    dec1: ResBlock
    out: eqx.nn.Conv2d
    frequencies: jax.Array

    def __init__(self, width: int, channels: int = 2, embedding: int = 32, *, key):
        keys = iter(jax.random.split(key, 12))
        w = width
        self.frequencies = jnp.exp(jnp.linspace(0.0, math.log(1000.0), embedding // 2))
        self.embed = eqx.nn.MLP(embedding, embedding, embedding, 1, activation=jax.nn.silu, key=next(keys))
        self.inc = eqx.nn.Conv2d(channels, w, 3, padding=1, key=next(keys))
        self.enc1 = ResBlock(w, w, embedding, key=next(keys))
        self.down1 = eqx.nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, key=next(keys))
        self.enc2 = ResBlock(2 * w, 2 * w, embedding, key=next(keys))
        self.down2 = eqx.nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1, key=next(keys))
        self.mid = ResBlock(2 * w, 2 * w, embedding, key=next(keys))
        self.up2 = eqx.nn.ConvTranspose2d(2 * w, 2 * w, 4, stride=2, padding=1, key=next(keys))
        self.dec2 = ResBlock(4 * w, 2 * w, embedding, key=next(keys))
        self.up1 = eqx.nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1, key=next(keys))
        self.dec1 = ResBlock(2 * w, w, embedding, key=next(keys))
        self.out = eqx.nn.Conv2d(w, channels, 3, padding=1, key=next(keys))

    def __call__(self, x, t):
        # Sinusoidal features of t (Vaswani et al.; the DDPM embedding), frequencies fixed.
        angles = jnp.asarray(t, x.dtype) * jax.lax.stop_gradient(self.frequencies)
        emb = self.embed(jnp.concatenate([jnp.sin(angles), jnp.cos(angles)]))
        h1 = self.enc1(self.inc(x), emb)
        h2 = self.enc2(self.down1(jax.nn.silu(h1)), emb)
        h = self.mid(self.down2(jax.nn.silu(h2)), emb)
        h = self.dec2(jnp.concatenate([self.up2(h), h2]), emb)
        h = self.dec1(jnp.concatenate([self.up1(h), h1]), emb)
        return self.out(jax.nn.silu(h))


# ----------------------------------------------------------------------------------------------
# Data, observations, forward models
# ----------------------------------------------------------------------------------------------


def dataset(config: Config):
    data_config = DarcyConfig(n_train=config.n_train, n_test=config.n_test, seed=config.seed, resolution=config.size,
                              subsample=1)
    return load_dataset(data_config, cache_dir=config.cache_dir or None, progress=config.progress)


class Normaliser(eqx.Module):
    """``(a, u) ↔ x₀ = ((a − 7.5)/4.5, (u − mean)/std)``."""

    mean: jax.Array
    std: jax.Array

    def encode(self, a, u):
        return jnp.stack([(a - MID) / HALF, (u - self.mean) / self.std], axis=-3)

    def decode(self, x):
        return MID + HALF * x[..., 0, :, :], self.mean + self.std * x[..., 1, :, :]


class PickPressure(eqx.Module):
    """``A(x₀)``: the standardised pressure channel at the observed interior nodes (flat indices)."""

    index: jax.Array
    normaliser: Normaliser
    pde_weight: float = 0.0

    def __call__(self, x0):
        picked = x0[1].reshape(-1)[self.index]
        if self.pde_weight == 0:
            return picked
        return jnp.concatenate([picked, self.pde_weight * pde_residual(*self.normaliser.decode(x0)).reshape(-1)])


def interior_grid(size: int) -> Grid:
    return Grid((size - 2, size - 2), boundary="dirichlet")


def pde_residual(a, u):
    """``−∇_h·(a ∇_h u) − 1`` on the interior nodes, scaled by ``h²`` (an O(1) quantity)."""
    size = a.shape[-1]
    grid = interior_grid(size)
    # The sample's coefficient is continuous and may dip below zero early in sampling.
    operator = DiffusionOperator(grid, jnp.maximum(a[1:-1, 1:-1], 0.5 * LOW))
    return (operator.mv(u[1:-1, 1:-1]) - 1.0) / (size - 1) ** 2


def observations(key, u, fraction: float, noise: float, rms: float):
    """Random interior nodes of `u` (flat indices into the ``s²`` grid) and their noisy values."""
    size = u.shape[-1]
    interior = np.array([i * size + j for i in range(1, size - 1) for j in range(1, size - 1)])
    m = max(1, round(fraction * interior.size))
    k_pick, k_noise = jax.random.split(key)
    index = jnp.sort(jax.random.choice(k_pick, jnp.asarray(interior), (m,), replace=False))
    values = u.reshape(-1)[index] + noise * rms * jax.random.normal(k_noise, (m,))
    return index, values


def relative_l2(estimate, truth):
    """Relative L2 error on the interior nodes."""
    e, t = estimate[..., 1:-1, 1:-1], truth[..., 1:-1, 1:-1]
    return float(jnp.linalg.norm(e - t) / jnp.linalg.norm(t))


def errors(a_hat, u_hat, a, u) -> dict:
    return {"pressure": relative_l2(u_hat, u), "coefficient": relative_l2(a_hat, a),
            "coefficient_thresholded": relative_l2(jnp.where(a_hat >= MID, HIGH, LOW), a)}


# ----------------------------------------------------------------------------------------------
# The two reconstructions
# ----------------------------------------------------------------------------------------------


class ChungStep(eqx.Module):
    """The DPS posterior score with Chung et al.'s *per-step* guidance size.

    Chung et al. move each ancestral step by ``−ζ' ∇‖y − A(x̂₀)‖`` with the same ``ζ'`` at every
    step. In the reverse SDE the score is multiplied by ``g²(t) Δt`` per Euler–Maruyama step, so
    the same step is the score term ``ζ' / (g²(t) Δt) · (−∇‖r‖)`` — `DPS.guidance` (normalised,
    ``ζ' = 1``) rescaled here, so that one ``ζ'`` means the same thing at every number of steps.
    """

    dps: DPS
    step_scale: jax.Array
    dt: float

    def __call__(self, x, t):
        weight = self.step_scale / (self.dps.prior.schedule.diffusion_squared(t) * self.dt)
        return self.dps.prior(x, t, to="score") + weight * self.dps.guidance(x, t)


def _dps(prior: Denoiser, forward: PickPressure, y, noise_std, scale, x1, key, steps: int):
    schedule = prior.schedule
    dps = DPS(prior, forward, y, noise_std, scale=1.0, normalised=True)
    posterior = Denoiser(ChungStep(dps, scale, (schedule.t_max - schedule.t_min) / steps), schedule, "score")
    # `sample` compiles its solve once per structure (the observations are arrays, so every
    # held-out case reuses it).
    return sample(posterior, x1, solver=diffrax.Euler(), grid=UniformTimeGrid(), num_steps=steps, key=key).ys


def reconstruct_dps(prior: Denoiser, normaliser: Normaliser, index, y, sigma_y, config: Config, key):
    forward = PickPressure(index, normaliser, config.pde_weight)
    y_n = (y - normaliser.mean) / normaliser.std
    if config.pde_weight:
        y_n = jnp.concatenate([y_n, jnp.zeros(((config.size - 2) ** 2,))])
    k_start, k_path = jax.random.split(key)
    x1 = jax.random.normal(k_start, (config.n_posterior, 2, config.size, config.size))
    x0 = _dps(prior, forward, y_n, jnp.asarray(sigma_y / normaliser.std), jnp.asarray(config.dps_scale), x1, k_path,
              config.dps_steps)
    return normaliser.decode(x0)


@eqx.filter_jit
def _least_squares(index, y, sigma_y, lam, size: int, steps: int, lr: float):
    grid = interior_grid(size)
    darcy = Darcy()

    def pressure(theta):
        return jnp.pad(darcy.solve(grid, jnp.exp(theta[1:-1, 1:-1])), 1)

    def loss(theta):
        misfit = 0.5 * jnp.mean(((pressure(theta).reshape(-1)[index] - y) / sigma_y) ** 2)
        smooth = jnp.sum(jnp.diff(theta, axis=0) ** 2) + jnp.sum(jnp.diff(theta, axis=1) ** 2)
        return misfit + lam * smooth

    optimiser = optax.adam(lr)
    theta = jnp.full((size, size), math.log(MID))

    def step(carry, _):
        theta, state = carry
        value, grad = jax.value_and_grad(loss)(theta)
        updates, state = optimiser.update(grad, state)
        return (optax.apply_updates(theta, updates), state), value

    (theta, _), history = jax.lax.scan(step, (theta, optimiser.init(theta)), None, length=steps)
    return jnp.exp(theta), pressure(theta), history


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------


def run(config: Config, out_dir: Path) -> dict:
    config = full_scale(config)
    out_dir = Path(out_dir)
    key = jax.random.key(config.seed)
    k_init, k_train, k_obs, k_dps = jax.random.split(key, 4)

    start = time.perf_counter()
    data = dataset(config)
    a_train, u_train = (jnp.asarray(data.train[k]) for k in ("coefficient", "solution"))
    a_test, u_test = (jnp.asarray(data.test[k]) for k in ("coefficient", "solution"))
    normaliser = Normaliser(jnp.mean(u_train), jnp.std(u_train))
    rms = float(jnp.sqrt(jnp.mean(u_train**2)))
    data_s = time.perf_counter() - start

    # Prior: ε-prediction DSM on the VP-SDE, EMA weights.
    start = time.perf_counter()
    schedule = VPLinear()
    x_train = np.asarray(normaliser.encode(a_train, u_train))
    model = UNet(config.width, key=k_init)
    # Only what the prior depends on: a run that changes the reconstruction settings (DPS, the
    # baseline, the observations) reuses a trained prior copied into its folder.
    identity = {"experiment": "diffusion_darcy", "stage": "prior",
                **{k: getattr(config, k) for k in _PRIOR_KEYS}}
    lr = optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, min(100, config.steps // 10 + 1), config.steps)
    result = fit(model, optax.adamw(lr, weight_decay=0.0), DenoisingScoreMatching(schedule, "eps"),
                 ArrayLoader(x_train, config.batch_size, seed=config.seed), steps=config.steps, key=k_train,
                 out_dir=out_dir / "prior", checkpoint_every=max(config.steps // 4, 1), log_every=max(config.steps // 20, 1),
                 progress=config.progress, ema_decay=config.ema_decay, run_config=identity)
    prior = Denoiser(result.ema_model, schedule, "eps")
    train_s = time.perf_counter() - start

    # Held-out cases: observations, DPS, and the least-squares baseline.
    cases, dps_s, ls_s = [], 0.0, 0.0
    for i in range(config.n_test):
        a, u = a_test[i], u_test[i]
        index, y = observations(jax.random.fold_in(k_obs, i), u, config.observed_fraction, config.obs_noise, rms)
        sigma_y = config.obs_noise * rms

        start = time.perf_counter()
        a_s, u_s = reconstruct_dps(prior, normaliser, index, y, sigma_y, config, jax.random.fold_in(k_dps, i))
        a_s, u_s = jax.block_until_ready((a_s, u_s))
        dps_s += time.perf_counter() - start
        per_sample = [errors(a_s[j], u_s[j], a, u) for j in range(config.n_posterior)]
        dps = {"mean_of_samples": {k: float(np.mean([e[k] for e in per_sample])) for k in per_sample[0]},
               "posterior_mean": errors(jnp.mean(a_s, 0), jnp.mean(u_s, 0), a, u),
               "observed_misfit": float(jnp.sqrt(jnp.mean((u_s.reshape(config.n_posterior, -1)[:, index] - y) ** 2)) / sigma_y)}

        start = time.perf_counter()
        baseline = {}
        for lam in config.tikhonov:
            a_ls, u_ls, history = _least_squares(index, y, jnp.asarray(sigma_y), jnp.asarray(lam), config.size,
                                                 config.baseline_steps, config.baseline_lr)
            baseline[lam] = {**errors(a_ls, u_ls, a, u), "initial_loss": float(history[0]),
                             "final_loss": float(history[-1]),
                             "observed_misfit": float(jnp.sqrt(jnp.mean((u_ls.reshape(-1)[index] - y) ** 2)) / sigma_y)}
        ls_s += time.perf_counter() - start
        cases.append({"observed": int(index.size), "dps": dps, "least_squares": baseline,
                      "_fields": (a, u, a_s, u_s, a_ls, u_ls, index)})

    def mean(get):
        return float(np.mean([get(c) for c in cases]))

    keys = ("pressure", "coefficient", "coefficient_thresholded")
    # Oracle λ: the one with the lowest mean pressure error over the cases.
    best = min(config.tikhonov, key=lambda lam: mean(lambda c: c["least_squares"][lam]["pressure"]))
    results = {
        "grid": config.size, "observed_points": cases[0]["observed"], "interior_points": (config.size - 2) ** 2,
        "dps": {"mean_of_samples": {k: mean(lambda c: c["dps"]["mean_of_samples"][k]) for k in keys},
                "posterior_mean": {k: mean(lambda c: c["dps"]["posterior_mean"][k]) for k in keys},
                "observed_misfit_over_noise": mean(lambda c: c["dps"]["observed_misfit"])},
        "least_squares": {str(lam): {k: mean(lambda c: c["least_squares"][lam][k]) for k in (*keys, "observed_misfit")}
                          for lam in config.tikhonov},
        "least_squares_best_tikhonov": best,
        "cases": [{k: v for k, v in c.items() if not k.startswith("_")} for c in cases],
        "final_train_loss": float(result.history[-1]["loss"]) if getattr(result, "history", None) else None,
        "resumed_from": result.resumed_from,
        "seconds": {"data": data_s, "train": train_s, "dps": dps_s, "least_squares": ls_s},
    }
    results["plot"] = plot(cases, config, out_dir)
    d, ls = results["dps"], results["least_squares"][str(best)]
    results["table"] = [
        ("method", "rel L2 pressure", "rel L2 coefficient", "rel L2 coefficient (thresholded)"),
        *((f"DPS, {name.replace('_', ' ')}", *(f"{d[name][k]:.3f}" for k in keys)) for name in ("mean_of_samples", "posterior_mean")),
        *((f"least squares λ={lam:g}", *(f"{results['least_squares'][str(lam)][k]:.3f}" for k in keys)) for lam in config.tikhonov),
    ]
    where = f"{config.size}², {results['observed_points']} of {results['interior_points']} interior pressures observed, noise {config.obs_noise:g}·rms"
    results["summary"] = [
        [f"diffusion-darcy ({where}): DPS pressure rel L2 (posterior mean of {config.n_posterior})",
         f"{d['posterior_mean']['pressure']:.3f}",
         f"least squares through Darcy.solve (best λ={best:g}): {ls['pressure']:.3f} (Huang et al. 2024, Chung et al. 2023)"],
        [f"diffusion-darcy ({where}): DPS coefficient rel L2 (posterior mean, thresholded)",
         f"{d['posterior_mean']['coefficient']:.3f} ({d['posterior_mean']['coefficient_thresholded']:.3f})",
         f"least squares: {ls['coefficient']:.3f} ({ls['coefficient_thresholded']:.3f})"],
    ]
    return results


def plot(cases: list, config: Config, out_dir: Path) -> str:
    try:
        import matplotlib
    except ImportError:
        return "skipped: matplotlib is not installed (pip install 'jaxpde[plots]')"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, u, a_s, u_s, a_ls, u_ls, index = (np.asarray(v) for v in cases[0]["_fields"])
    rows, cols = np.unravel_index(index, u.shape)
    fig, axes = plt.subplots(2, 4, figsize=(12, 6))
    panels = [(a, "a true"), (a_s.mean(0), "a DPS (posterior mean)"), (a_s[0], "a DPS (one sample)"), (a_ls, "a least squares"),
              (u, "u true + observed nodes"), (u_s.mean(0), "u DPS (posterior mean)"), (u_s[0], "u DPS (one sample)"), (u_ls, "u least squares")]
    for axis, (field, title) in zip(axes.ravel(), panels):
        image = axis.imshow(field, origin="lower", cmap="viridis")
        axis.set_title(title, fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
        fig.colorbar(image, ax=axis, fraction=0.046)
    axes[1, 0].plot(cols, rows, "r.", markersize=4)
    fig.tight_layout()
    fig.savefig(out_dir / "diffusion_darcy.png", dpi=100)
    plt.close(fig)
    return "diffusion_darcy.png"
