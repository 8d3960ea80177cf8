r"""Training losses for diffusion and flow models, in `jaxpde.training.fit`'s contract.

Each loss is an `equinox.Module` called as ``loss(model, batch, key) -> (scalar, {name: scalar})``,
so ``fit(model, optimiser, DenoisingScoreMatching(VPLinear()), data, ...)`` trains a denoiser
(and ``fit(..., ema_decay=0.999)`` keeps its EMA, the weights one samples with). The model maps
**one sample** ``(x_t, t[, cond]) -> prediction``; the loss vmaps it over the batch.

**Denoising score matching** (Vincent 2011; Ho et al. 2020; Song et al. 2021). With
``t ~`` a time distribution, ``ε ~ N(0, I)``, ``x_t = α x₀ + σ ε``,

.. math::

    L(θ) = E_{t, x₀, ε}\; w(t)\, \| \hat ε_θ(x_t, t) − ε \|^2 ,

written in the model's own parameterisation: its error is ``c(t)`` times the ε error (``c = 1``
for ε, ``−σ/α`` for x₀, ``(α² + σ²)/α`` for v, ``−1/σ`` for the score, ``σ' − f σ`` for the
flow velocity), so the loss is ``(w/c²) ‖p̂ − p‖²`` and no prediction is divided by a small
``σ``. Its minimiser is the conditional mean ``E[ε | x_t]`` whatever ``w > 0`` (Tweedie), so the
exact `GaussianMixture` prediction attains the minimum. Weightings ``w`` of the ε error:

- ``"eps"``: 1 (DDPM's simple loss);
- ``"x0"``: ``σ²/α² = e^{−λ}`` (the data-prediction MSE);
- ``"v"``: ``((α² + σ²)/α)²`` (the v-prediction MSE; ``1 + e^{−λ}`` for VP);
- ``"edm"``: ``(e^{−λ} + σ_d²)/σ_d²`` — Karras et al. 2022's ``λ(σ) ‖D − x₀‖²`` with
  ``λ(σ) = (σ² + σ_d²)/(σ σ_d)²`` (``σ_d`` from an `EDM` schedule, else `sigma_data`);
- ``"likelihood"``: ``g²/σ²`` — score matching weighted by ``g²``, whose integral bounds the
  negative log-likelihood (Song et al. 2021b);
- a callable ``w(λ)`` of the log-SNR (Kingma & Gao 2023's λ-weightings).

**Flow matching** (Lipman et al. 2023; Liu et al. 2023): ``E ‖û_θ(x_t, t) − (α' x₀ + σ' x₁)‖²``
with ``x₁ ~ N(0, I)`` — for `LinearPath` the rectified-flow target ``x₁ − x₀`` — or, for
**reflow**, ``x₁`` paired with ``x₀`` by a trained flow (`reflow_pairs`): the batch is then
``(x₀, x₁)``.

**Time distributions**: `UniformTime`; `UShapedTime` (Lee, Lin & Fanti 2024: density ∝
``e^{a u} + e^{a (1 − u)}``, ``a = 4``, concentrating training where reflow's paths are
hardest, near both ends); `LogNormalSigma` (EDM's ``log σ ~ N(−1.2, 1.2²)``); `LogitNormalTime`
(Esser et al. 2024).
"""

import abc
import math
from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ._parameterisation import Denoiser, check_parameterisation
from ._paths import LinearPath
from ._schedules import EDM, AbstractSchedule

__all__ = [
    "AbstractTimeDistribution",
    "UniformTime",
    "UShapedTime",
    "LogNormalSigma",
    "LogitNormalTime",
    "WEIGHTINGS",
    "DenoisingScoreMatching",
    "FlowMatching",
    "reflow_pairs",
]

WEIGHTINGS = ("eps", "x0", "v", "edm", "likelihood")


# ----------------------------------------------------------------------------------------------
# Time distributions
# ----------------------------------------------------------------------------------------------


class AbstractTimeDistribution(eqx.Module):
    """Where on ``[t_min, t_max]`` a loss draws its training times."""

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...], schedule: AbstractSchedule, dtype=None) -> Array:
        """Times of the given shape inside ``[schedule.t_min, schedule.t_max]``."""


def _unit(key, shape, dtype) -> Array:
    return jax.random.uniform(key, shape, dtype=dtype or jnp.result_type(float))


def _on_range(u: Array, schedule: AbstractSchedule) -> Array:
    return schedule.t_min + u * (schedule.t_max - schedule.t_min)


class UniformTime(AbstractTimeDistribution):
    """``t ~ U[t_min, t_max]``."""

    def sample(self, key, shape, schedule, dtype=None):
        return _on_range(_unit(key, shape, dtype), schedule)


class UShapedTime(AbstractTimeDistribution):
    r"""Lee, Lin & Fanti 2024's U-shaped law on ``u = (t − t_min)/(t_max − t_min) ∈ [0, 1]``:
    ``p(u) ∝ e^{a u} + e^{a (1 − u)} ∝ cosh(a (u − ½))``, sampled exactly by inverting its CDF,
    ``u = ½ + asinh((2v − 1) sinh(a/2))/a`` with ``v ~ U[0, 1]``. ``a → 0`` is uniform."""

    a: float = 4.0

    def __check_init__(self):
        if isinstance(self.a, bool) or not isinstance(self.a, (int, float)) or not (0 < self.a < 100):
            raise ValueError(f"UShapedTime: `a` must be a number in (0, 100), got {self.a!r}.")

    def sample(self, key, shape, schedule, dtype=None):
        v = _unit(key, shape, dtype)
        u = 0.5 + jnp.arcsinh((2 * v - 1) * math.sinh(self.a / 2)) / self.a
        return _on_range(jnp.clip(u, 0.0, 1.0), schedule)


class LogNormalSigma(AbstractTimeDistribution):
    r"""EDM's training law (Karras et al. 2022): ``log(σ/α) ~ N(mean, std²)`` (``−1.2``, ``1.2``),
    mapped to ``t`` through ``λ = −2 log(σ/α)`` and clipped to the schedule's range."""

    mean: float = -1.2
    std: float = 1.2

    def sample(self, key, shape, schedule, dtype=None):
        dtype = dtype or jnp.result_type(float)
        log_ratio = self.mean + self.std * jax.random.normal(key, shape, dtype=dtype)
        lam_lo, lam_hi = schedule.log_snr(jnp.asarray(schedule.t_max, dtype)), schedule.log_snr(jnp.asarray(schedule.t_min, dtype))
        return schedule.t_of_log_snr(jnp.clip(-2 * log_ratio, lam_lo, lam_hi))


class LogitNormalTime(AbstractTimeDistribution):
    """``u = sigmoid(N(mean, std²))`` on ``[t_min, t_max]`` (Esser et al. 2024, rectified-flow transformers)."""

    mean: float = 0.0
    std: float = 1.0

    def sample(self, key, shape, schedule, dtype=None):
        dtype = dtype or jnp.result_type(float)
        return _on_range(jax.nn.sigmoid(self.mean + self.std * jax.random.normal(key, shape, dtype=dtype)), schedule)


# ----------------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------------


def _split_batch(batch) -> tuple[Array, Any]:
    if isinstance(batch, (tuple, list)):
        if len(batch) != 2:
            raise ValueError(f"the batch must be x₀ or a pair (x₀, cond), got a sequence of {len(batch)} items.")
        return batch[0], batch[1]
    return batch, None


def _per_sample(a: Array, like: Array) -> Array:
    return a.reshape(a.shape + (1,) * (like.ndim - a.ndim))


def _mean_square(a: Array) -> Array:
    return jnp.mean(a**2, axis=tuple(range(1, a.ndim)))


def _eps_scale(parameterisation: str, alpha, sigma, alpha_dot, sigma_dot) -> Array:
    """``c(t)``: the model's error per unit of ε error at fixed ``x_t``."""
    if parameterisation == "eps":
        return jnp.ones_like(alpha)
    if parameterisation == "x0":
        return -sigma / alpha
    if parameterisation == "v":
        return (alpha**2 + sigma**2) / alpha
    if parameterisation == "score":
        return -1 / sigma
    return sigma_dot - alpha_dot / alpha * sigma


class DenoisingScoreMatching(eqx.Module):
    """Denoising score matching ``E w(t) ‖ε̂ − ε‖²`` for a model of kind `parameterisation`.

    - `schedule`: the forward process.
    - `parameterisation`: what the model predicts (``"eps"``, ``"x0"``, ``"v"``, ``"score"``, ``"flow"``).
    - `weighting`: one of `WEIGHTINGS` or a callable ``w(λ)`` (see the module docstring).
    - `time_distribution`: default `UniformTime`.
    - `sigma_data`: ``σ_d`` of the ``"edm"`` weighting when the schedule is not `EDM`.

    Call: ``loss(model, batch, key)`` with `batch` the data ``x₀`` (batch first) or a pair
    ``(x₀, cond)`` for a conditional model ``model(x_t, t, cond)``. Returns
    ``(loss, {"eps_mse": …})``, the unweighted ε error as a logged term.
    """

    schedule: AbstractSchedule
    parameterisation: str = eqx.field(default="eps", static=True)
    weighting: str | Callable = eqx.field(default="eps", static=True)
    time_distribution: AbstractTimeDistribution = UniformTime()
    sigma_data: float = 0.5

    def __check_init__(self):
        if not isinstance(self.schedule, AbstractSchedule):
            raise TypeError(f"DenoisingScoreMatching: `schedule` must be an AbstractSchedule, got {type(self.schedule).__name__}.")
        check_parameterisation(self.parameterisation, "parameterisation", "DenoisingScoreMatching")
        if not callable(self.weighting) and self.weighting not in WEIGHTINGS:
            raise ValueError(f"DenoisingScoreMatching: `weighting` must be one of {WEIGHTINGS} or a callable w(log_snr), got {self.weighting!r}.")
        if not isinstance(self.time_distribution, AbstractTimeDistribution):
            raise TypeError(
                f"DenoisingScoreMatching: `time_distribution` must be an AbstractTimeDistribution, got {type(self.time_distribution).__name__}."
            )

    def weight(self, t: Array) -> Array:
        """``w(t)``, the weight of the ε error."""
        lam = self.schedule.log_snr(t)
        if callable(self.weighting):
            return self.weighting(lam)
        if self.weighting == "eps":
            return jnp.ones_like(lam)
        if self.weighting == "x0":
            return jnp.exp(-lam)
        if self.weighting == "v":
            alpha, sigma = self.schedule.alpha(t), self.schedule.sigma(t)
            return ((alpha**2 + sigma**2) / alpha) ** 2
        if self.weighting == "edm":
            sd = self.schedule.sigma_data if isinstance(self.schedule, EDM) else self.sigma_data
            return (jnp.exp(-lam) + sd**2) / sd**2
        return self.schedule.diffusion_squared(t) / self.schedule.sigma(t) ** 2

    def __call__(self, model, batch, key: PRNGKeyArray):
        x0, cond = _split_batch(batch)
        k_time, k_noise = jax.random.split(key)
        t = self.time_distribution.sample(k_time, (x0.shape[0],), self.schedule, x0.dtype)
        eps = jax.random.normal(k_noise, x0.shape, dtype=x0.dtype)
        s = self.schedule
        alpha, sigma, alpha_dot, sigma_dot = s.alpha(t), s.sigma(t), s.alpha_dot(t), s.sigma_dot(t)
        x_t = _per_sample(alpha, x0) * x0 + _per_sample(sigma, x0) * eps
        target = _target(self.parameterisation, x0, eps, *(_per_sample(c, x0) for c in (alpha, sigma, alpha_dot, sigma_dot)))
        denoiser = Denoiser(model, s, self.parameterisation)
        if cond is None:
            prediction = jax.vmap(denoiser.raw)(x_t, t)
        else:
            prediction = jax.vmap(denoiser.raw)(x_t, t, cond)
        scale = _eps_scale(self.parameterisation, alpha, sigma, alpha_dot, sigma_dot)
        error = _mean_square(prediction - target)
        loss = jnp.mean(self.weight(t) / scale**2 * error)
        return loss, {"eps_mse": jnp.mean(error / scale**2)}


def _target(parameterisation, x0, eps, alpha, sigma, alpha_dot, sigma_dot):
    if parameterisation == "eps":
        return eps
    if parameterisation == "x0":
        return x0
    if parameterisation == "v":
        return alpha * eps - sigma * x0
    if parameterisation == "score":
        return -eps / sigma
    return alpha_dot * x0 + sigma_dot * eps


class FlowMatching(eqx.Module):
    r"""Flow matching ``E ‖û_θ(x_t, t) − (α' x₀ + σ' x₁)‖²`` along `path` (default `LinearPath`: the
    rectified-flow target ``x₁ − x₀``).

    `batch` is the data ``x₀`` (then ``x₁ ~ N(0, I)`` independently) or, for reflow, a pair
    ``(x₀, x₁)`` coupled by a trained flow (`reflow_pairs`). The model maps one sample
    ``(x_t, t) -> velocity``. Returns ``(loss, {})``.
    """

    path: AbstractSchedule = LinearPath()
    time_distribution: AbstractTimeDistribution = UniformTime()

    def __check_init__(self):
        if not isinstance(self.path, AbstractSchedule):
            raise TypeError(f"FlowMatching: `path` must be an AbstractSchedule (e.g. LinearPath()), got {type(self.path).__name__}.")
        if not isinstance(self.time_distribution, AbstractTimeDistribution):
            raise TypeError(f"FlowMatching: `time_distribution` must be an AbstractTimeDistribution, got {type(self.time_distribution).__name__}.")

    def __call__(self, model, batch, key: PRNGKeyArray):
        k_time, k_noise = jax.random.split(key)
        if isinstance(batch, (tuple, list)):
            if len(batch) != 2 or jnp.shape(batch[0]) != jnp.shape(batch[1]):
                raise ValueError("FlowMatching: a paired batch must be (x₀, x₁) of one shape, got "
                                 f"{[jnp.shape(b) for b in batch]}.")
            x0, x1 = batch
        else:
            x0 = batch
            x1 = jax.random.normal(k_noise, x0.shape, dtype=x0.dtype)
        t = self.time_distribution.sample(k_time, (x0.shape[0],), self.path, x0.dtype)
        p = self.path
        x_t = _per_sample(p.alpha(t), x0) * x0 + _per_sample(p.sigma(t), x0) * x1
        target = _per_sample(p.alpha_dot(t), x0) * x0 + _per_sample(p.sigma_dot(t), x0) * x1
        prediction = jax.vmap(Denoiser(model, p, "flow").raw)(x_t, t)
        return jnp.mean(_mean_square(prediction - target)), {}


def reflow_pairs(
    velocity: Callable, x1: Array, *, path: AbstractSchedule = LinearPath(), rtol: float = 1e-5, atol: float = 1e-5
) -> tuple[Array, Array]:
    r"""The coupling of a trained flow: ``(x₀, x₁)`` with ``x₀`` the solution at ``t_min`` of
    ``dx/dt = velocity(x, t)`` from ``x₁`` at ``t_max`` (Tsit5, adaptive to `rtol`/`atol`).

    Rectified flow's reflow (Liu et al. 2023, Algorithm 1) trains a new flow on these pairs
    (`FlowMatching` with a paired batch): its paths are straighter and its transport cost
    ``E ‖x₀ − x₁‖²`` no larger. `velocity` maps one sample; `x1` is a batch (first axis).
    """
    field = lambda t, y, args: jax.vmap(velocity, in_axes=(0, None))(y, t)
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(field), diffrax.Tsit5(), t0=path.t_max, t1=path.t_min, dt0=-0.05, y0=x1,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), max_steps=4096,
    )
    return solution.ys[0], x1
