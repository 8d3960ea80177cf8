r"""Noise schedules: the forward process ``x_t = α(t) x₀ + σ(t) ε``, ``ε ~ N(0, I)``.

One description drives training (what a loss noises the data with) and sampling (the
probability-flow ODE and the reverse SDE a sampler integrates). Time runs from data
(``t = t_min``, ``σ ≈ 0``) to noise (``t = t_max``); every schedule here has a decreasing
log signal-to-noise ratio

.. math::

    λ(t) = \log \frac{α(t)^2}{σ(t)^2},

so `t_of_log_snr` inverts it (in closed form for every concrete schedule). The same marginals
are those of the linear SDE ``dx = f(t) x dt + g(t) dW`` with (Kingma et al. 2021, eq. 25;
Song et al. 2021, appendix B)

.. math::

    f(t) = \frac{d \log α}{dt}, \qquad g^2(t) = \frac{dσ^2}{dt} - 2 f(t) σ^2(t),

`drift` and `diffusion_squared`. Derivatives `alpha_dot`, `sigma_dot` come from forward-mode
autodiff of the closed forms, so they are exact to rounding.

Concrete schedules: `VPLinear` (Song et al. 2021's VP-SDE, DDPM's linear β), `VPCosine`
(Nichol & Dhariwal 2021), `SubVP` (Song et al. 2021), `VE` (Song & Ermon's geometric σ), `EDM`
(Karras et al. 2022: ``α = 1``, ``σ = t``). Flow-matching paths (``α = 1 − t``, ``σ = t``) are
schedules too: `jaxpde.samplers.LinearPath`.

Every method is final, takes a scalar or an array of times, and works under `jax.jit`,
`jax.vmap` and `jax.grad`. A time outside ``[t_min, t_max]`` (beyond a few rounding units)
raises — eagerly, or through `equinox.error_if` under jit.

A subclass implements `_alpha`, `_sigma`, `_log_snr` and `_t_of_log_snr` (the closed forms,
without range checks) and declares `t_min`, `t_max` as static fields (Python numbers: the range
is part of the schedule's identity, not a traced parameter); its other parameters (``β``,
``σ_min``…) are ordinary leaves, so a schedule passes through `jax.jit` and can be
differentiated in them.
"""

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

__all__ = ["AbstractSchedule", "VPLinear", "VPCosine", "SubVP", "VE", "EDM"]

_Time = Float[ArrayLike, "..."]


def _as_time(t) -> Array:
    t = jnp.asarray(t)
    if not jnp.issubdtype(t.dtype, jnp.floating):
        t = t.astype(jnp.result_type(float))
    return t


def _positive(value, name: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{owner}: `{name}` must be a positive finite number, got {value!r}.")
    return float(value)


def _log1mexp(x: Array) -> Array:
    """``log(1 − eˣ)`` for ``x ≤ 0``, accurate on both sides of ``log ½`` (Mächler 2012)."""
    return jnp.where(x > -math.log(2.0), jnp.log(-jnp.expm1(x)), jnp.log1p(-jnp.exp(x)))


class AbstractSchedule(eqx.Module):
    r"""A forward process ``x_t = α(t) x₀ + σ(t) ε`` on ``t ∈ [t_min, t_max]``.

    Subclasses declare the fields `t_min`, `t_max` and implement the closed forms `_alpha`,
    `_sigma`, `_log_snr` (``λ = log α²/σ²``, decreasing in ``t``) and `_t_of_log_snr` (its
    inverse). The public methods below are final: they check the range and derive the rest.
    """

    t_min: eqx.AbstractVar[float]
    t_max: eqx.AbstractVar[float]

    @abc.abstractmethod
    def _alpha(self, t: Array) -> Array: ...

    @abc.abstractmethod
    def _sigma(self, t: Array) -> Array: ...

    @abc.abstractmethod
    def _log_snr(self, t: Array) -> Array: ...

    @abc.abstractmethod
    def _t_of_log_snr(self, lam: Array) -> Array: ...

    # -- range checks ---------------------------------------------------------------------

    def _check(self, t, name: str = "t") -> Array:
        t = _as_time(t)
        # Rounding slack, relative to each end: grids built in float32 land on t_max·(1 + ε),
        # and a round trip through λ on t_min·(1 ± a few ε). (EDM's t_min = 0.002 ≪ t_max = 80.)
        eps = jnp.finfo(t.dtype).eps
        low = self.t_min - 64 * eps * abs(self.t_min)
        high = self.t_max + 8 * eps * max(1.0, abs(self.t_max))
        bad = (t < low) | (t > high)
        owner = type(self).__name__
        return eqx.error_if(t, jnp.any(bad), f"{owner}: `{name}` must lie in [t_min, t_max] = [{self.t_min}, {self.t_max}].")

    # -- the forward process --------------------------------------------------------------

    def alpha(self, t: _Time) -> Array:
        """Signal coefficient ``α(t)``."""
        return self._alpha(self._check(t))

    def sigma(self, t: _Time) -> Array:
        """Noise coefficient ``σ(t)``."""
        return self._sigma(self._check(t))

    def log_snr(self, t: _Time) -> Array:
        """``λ(t) = log(α²/σ²)``, decreasing in ``t``."""
        return self._log_snr(self._check(t))

    def t_of_log_snr(self, lam: Float[ArrayLike, "..."]) -> Array:
        """The time at which ``λ(t) = lam`` (errors if that time is outside ``[t_min, t_max]``)."""
        return self._check(self._t_of_log_snr(_as_time(lam)), name="t_of_log_snr(lam)")

    def marginal(self, x0: Array, noise: Array, t: _Time) -> Array:
        """``x_t = α(t) x₀ + σ(t) ε`` for one sample at a scalar ``t`` (or broadcastable arrays)."""
        t = self._check(t)
        return self._alpha(t) * x0 + self._sigma(t) * noise

    def alpha_dot(self, t: _Time) -> Array:
        """``dα/dt`` (forward-mode autodiff of the closed form)."""
        t = self._check(t)
        return jax.jvp(self._alpha, (t,), (jnp.ones_like(t),))[1]

    def sigma_dot(self, t: _Time) -> Array:
        """``dσ/dt`` (forward-mode autodiff of the closed form)."""
        t = self._check(t)
        return jax.jvp(self._sigma, (t,), (jnp.ones_like(t),))[1]

    def log_snr_dot(self, t: _Time) -> Array:
        """``dλ/dt`` (negative)."""
        t = self._check(t)
        return jax.jvp(self._log_snr, (t,), (jnp.ones_like(t),))[1]

    def drift(self, t: _Time) -> Array:
        """``f(t) = d log α/dt`` of the forward SDE ``dx = f x dt + g dW``."""
        t = self._check(t)
        alpha, alpha_dot = jax.jvp(self._alpha, (t,), (jnp.ones_like(t),))
        return alpha_dot / alpha

    def diffusion_squared(self, t: _Time) -> Array:
        """``g²(t) = dσ²/dt − 2 f σ²`` of the forward SDE (equal to ``−σ² dλ/dt``)."""
        t = self._check(t)
        ones = jnp.ones_like(t)
        alpha, alpha_dot = jax.jvp(self._alpha, (t,), (ones,))
        sigma, sigma_dot = jax.jvp(self._sigma, (t,), (ones,))
        # Both terms are ≥ 0 for every schedule here (σ grows, α shrinks): no cancellation, and
        # unlike −σ²λ' it stays finite at σ = 0 (a flow's t = 0).
        return 2 * sigma * sigma_dot - 2 * (alpha_dot / alpha) * sigma**2


class VPLinear(AbstractSchedule):
    r"""Variance-preserving SDE with linear ``β(t) = β₀ + t (β₁ − β₀)`` (Song et al. 2021, DDPM).

    ``log α = −¼ t² (β₁ − β₀) − ½ t β₀``, ``σ² = 1 − α²``, ``f = −½ β(t)``, ``g² = β(t)``.
    Defaults ``β₀ = 0.1``, ``β₁ = 20`` on ``[10⁻³, 1]``.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = eqx.field(default=1e-3, static=True)
    t_max: float = eqx.field(default=1.0, static=True)

    def __check_init__(self):
        _positive(self.beta_min, "beta_min", "VPLinear")
        _positive(self.beta_max, "beta_max", "VPLinear")
        if self.beta_max < self.beta_min:
            raise ValueError(f"VPLinear: `beta_max` must be >= `beta_min` = {self.beta_min}, got {self.beta_max!r}.")
        _check_range(self, "VPLinear", lower=0.0)

    def _log_alpha(self, t):
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def _alpha(self, t):
        return jnp.exp(self._log_alpha(t))

    def _sigma(self, t):
        return jnp.sqrt(-jnp.expm1(2 * self._log_alpha(t)))

    def _log_snr(self, t):
        two_log_alpha = 2 * self._log_alpha(t)
        return two_log_alpha - _log1mexp(two_log_alpha)

    def _t_of_log_snr(self, lam):
        # α² = sigmoid(λ); solve ¼Δβ t² + ½β₀ t = c := −log α ≥ 0 by the cancellation-free root.
        c = -0.5 * jax.nn.log_sigmoid(lam)
        a, b = 0.25 * (self.beta_max - self.beta_min), 0.5 * self.beta_min
        return 2 * c / (b + jnp.sqrt(b**2 + 4 * a * c))


class SubVP(AbstractSchedule):
    r"""Sub-VP SDE (Song et al. 2021, eq. 29): ``α`` as `VPLinear`, ``σ = 1 − α²``.

    ``f = −½ β(t)``, ``g² = β(t) (1 − α⁴)``; the variance stays below the VP one.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = eqx.field(default=1e-3, static=True)
    t_max: float = eqx.field(default=1.0, static=True)

    def __check_init__(self):
        _positive(self.beta_min, "beta_min", "SubVP")
        _positive(self.beta_max, "beta_max", "SubVP")
        if self.beta_max < self.beta_min:
            raise ValueError(f"SubVP: `beta_max` must be >= `beta_min` = {self.beta_min}, got {self.beta_max!r}.")
        _check_range(self, "SubVP", lower=0.0)

    def _log_alpha(self, t):
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def _alpha(self, t):
        return jnp.exp(self._log_alpha(t))

    def _sigma(self, t):
        return -jnp.expm1(2 * self._log_alpha(t))

    def _log_snr(self, t):
        two_log_alpha = 2 * self._log_alpha(t)
        return two_log_alpha - 2 * _log1mexp(two_log_alpha)

    def _t_of_log_snr(self, lam):
        # r = α/σ = e^{λ/2} and σ = 1 − α² give r α² + α − r = 0, α = 2r/(1 + √(1 + 4r²)),
        # written with 1/r = e^{−λ/2} for λ ≥ 0 so that neither form overflows.
        # For λ ≥ 0, −log α = log1p((u + u²/(√(u² + 4) + 2))/2) with u = 1/r, free of the
        # cancellation in log(α ≈ 1).
        half = 0.5 * lam
        r = jnp.exp(jnp.minimum(half, 0.0))
        c_small = -jnp.log(2 * r / (1 + jnp.sqrt(1 + 4 * r**2)))
        u = jnp.exp(-jnp.maximum(half, 0.0))
        c_large = jnp.log1p(0.5 * (u + u**2 / (jnp.sqrt(u**2 + 4) + 2)))
        c = jnp.where(half < 0, c_small, c_large)
        a, b = 0.25 * (self.beta_max - self.beta_min), 0.5 * self.beta_min
        return 2 * c / (b + jnp.sqrt(b**2 + 4 * a * c))


class VPCosine(AbstractSchedule):
    r"""Cosine VP schedule (Nichol & Dhariwal 2021): ``α(t) = cos(θ(t)) / cos(θ(0))``,
    ``θ(t) = (π/2)(t + s)/(1 + s)``, ``σ² = 1 − α²``.

    ``α`` vanishes at ``t = 1``, so ``t_max`` defaults to 0.9946 (``λ ≈ −9.2``, DPM-Solver's
    choice for this schedule).
    """

    s: float = 0.008
    t_min: float = eqx.field(default=1e-3, static=True)
    t_max: float = eqx.field(default=0.9946, static=True)

    def __check_init__(self):
        _positive(self.s, "s", "VPCosine")
        _check_range(self, "VPCosine", lower=0.0)
        if self.t_max >= 1:
            raise ValueError(f"VPCosine: `t_max` must be < 1 (α(1) = 0), got {self.t_max!r}.")

    def _theta(self, t):
        return 0.5 * math.pi * (t + self.s) / (1 + self.s)

    def _log_alpha(self, t):
        return jnp.log(jnp.cos(self._theta(t))) - jnp.log(jnp.cos(0.5 * math.pi * self.s / (1 + self.s)))

    def _alpha(self, t):
        return jnp.exp(self._log_alpha(t))

    def _log_sigma_squared(self, t):
        # σ² = (cos²θ₀ − cos²θ)/cos²θ₀ = sin(θ − θ₀) sin(θ + θ₀)/cos²θ₀, without cancellation near t = 0.
        theta0 = 0.5 * math.pi * self.s / (1 + self.s)
        theta = self._theta(t)
        return jnp.log(jnp.sin(theta - theta0)) + jnp.log(jnp.sin(theta + theta0)) - 2 * jnp.log(jnp.cos(theta0))

    def _sigma(self, t):
        return jnp.exp(0.5 * self._log_sigma_squared(t))

    def _log_snr(self, t):
        return 2 * self._log_alpha(t) - self._log_sigma_squared(t)

    def _t_of_log_snr(self, lam):
        # cos θ = α cos θ₀ with α² = sigmoid(λ); sin²θ = sin²θ₀ + cos²θ₀ sigmoid(−λ) keeps
        # θ accurate near t = 0, where arccos is ill-conditioned.
        theta0 = 0.5 * math.pi * self.s / (1 + self.s)
        cos_theta = jnp.exp(0.5 * jax.nn.log_sigmoid(lam)) * jnp.cos(theta0)
        sin_theta = jnp.sqrt(jnp.sin(theta0) ** 2 + jnp.cos(theta0) ** 2 * jax.nn.sigmoid(-lam))
        theta = jnp.arctan2(sin_theta, cos_theta)
        return theta * 2 * (1 + self.s) / math.pi - self.s


class VE(AbstractSchedule):
    r"""Variance-exploding SDE (Song et al. 2021): ``α = 1``, ``σ(t) = σ_min (σ_max/σ_min)^t``.

    ``f = 0``, ``g² = 2 σ² log(σ_max/σ_min)``, ``λ = −2 log σ``. Defaults ``σ_min = 0.01``,
    ``σ_max = 50`` on ``[0, 1]``.
    """

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    t_min: float = eqx.field(default=0.0, static=True)
    t_max: float = eqx.field(default=1.0, static=True)

    def __check_init__(self):
        _positive(self.sigma_min, "sigma_min", "VE")
        _positive(self.sigma_max, "sigma_max", "VE")
        if self.sigma_max <= self.sigma_min:
            raise ValueError(f"VE: `sigma_max` must be > `sigma_min` = {self.sigma_min}, got {self.sigma_max!r}.")
        _check_range(self, "VE", lower=0.0)

    def _log_sigma(self, t):
        return jnp.log(self.sigma_min) + t * jnp.log(self.sigma_max / self.sigma_min)

    def _alpha(self, t):
        return 1 + 0 * t  # not ones_like: the result must depend on the range-checked t, or jit drops the check

    def _sigma(self, t):
        return jnp.exp(self._log_sigma(t))

    def _log_snr(self, t):
        return -2 * self._log_sigma(t)

    def _t_of_log_snr(self, lam):
        return (-0.5 * lam - jnp.log(self.sigma_min)) / jnp.log(self.sigma_max / self.sigma_min)


class EDM(AbstractSchedule):
    r"""The EDM process (Karras et al. 2022): ``α = 1``, ``σ = t`` on ``[σ_min, σ_max]``.

    ``f = 0``, ``g² = 2t``, ``λ = −2 log t``. `sigma_data` (the data's standard deviation) is
    used by the EDM loss weighting and preconditioning, not by the process.
    """

    # Static: they are the time range, which the range checks read as Python numbers.
    sigma_min: float = eqx.field(default=0.002, static=True)
    sigma_max: float = eqx.field(default=80.0, static=True)
    sigma_data: float = 0.5

    def __check_init__(self):
        _positive(self.sigma_min, "sigma_min", "EDM")
        _positive(self.sigma_max, "sigma_max", "EDM")
        _positive(self.sigma_data, "sigma_data", "EDM")
        if self.sigma_max <= self.sigma_min:
            raise ValueError(f"EDM: `sigma_max` must be > `sigma_min` = {self.sigma_min}, got {self.sigma_max!r}.")

    @property
    def t_min(self) -> float:
        return self.sigma_min

    @property
    def t_max(self) -> float:
        return self.sigma_max

    def _alpha(self, t):
        return 1 + 0 * t  # not ones_like: the result must depend on the range-checked t, or jit drops the check

    def _sigma(self, t):
        return t

    def _log_snr(self, t):
        return -2 * jnp.log(t)

    def _t_of_log_snr(self, lam):
        return jnp.exp(-0.5 * lam)


def _check_range(schedule: AbstractSchedule, owner: str, lower: float) -> None:
    t_min, t_max = schedule.t_min, schedule.t_max
    for name, value in (("t_min", t_min), ("t_max", t_max)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{owner}: `{name}` must be a finite number, got {value!r}.")
    if not (lower <= t_min < t_max):
        raise ValueError(f"{owner}: need {lower} <= `t_min` < `t_max`, got t_min={t_min!r}, t_max={t_max!r}.")
