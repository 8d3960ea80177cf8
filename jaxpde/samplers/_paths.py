r"""Flow-matching paths and stochastic interpolants, as schedules.

Convention (the same as the diffusion schedules): ``t = 0`` is data, ``t = 1`` is noise.

- `LinearPath` — rectified flow / flow matching with the optimal-transport path (Liu et al.
  2023; Lipman et al. 2023): ``x_t = (1 − t) x₀ + t x₁``, ``x₁ ~ N(0, I)``. The conditional
  velocity is ``dx_t/dt = x₁ − x₀`` (noise minus data): a model trained on it is integrated
  *backwards*, from ``t = 1`` to ``t = 0``. It is the schedule ``α = 1 − t``, ``σ = t``
  (``λ = 2 log((1 − t)/t)``, ``t(λ) = sigmoid(−λ/2)``), so the diffusion losses, conversions
  and samplers apply to it unchanged.
- `StochasticInterpolant` — Albergo, Boffi & Vanden-Eijnden 2023:
  ``x_t = (1 − t) x₀ + t x₁ + γ(t) z`` with ``γ(t) = √(a t (1 − t))`` (tunable ``a ≥ 0``,
  ``a = 0`` is `LinearPath`). With a Gaussian base ``x₁ ~ N(0, I)`` its marginals are those of
  the schedule ``α = 1 − t``, ``σ = √(t² + a t (1 − t))``; with two data distributions (``x₁``
  not Gaussian) use `interpolate` and `velocity_target` directly.

For any schedule the conditional velocity is ``α'(t) x₀ + σ'(t) ε`` (`conditional_velocity`),
whose conditional mean is the probability-flow field (the ``"flow"`` parameterisation). The
noise of the *sampler* is tuned separately: every SDE ``dx = [u − ½ η(t)² s] dt + η dW̄`` run
backwards in time has the marginals ``p_t`` (`jaxpde.samplers.sde_drift`).

`straightness` and `transport_cost` measure a flow's paths (Liu et al. 2023, §2.2 and eq. 6).
"""

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._schedules import AbstractSchedule, _check_range

__all__ = ["LinearPath", "StochasticInterpolant", "conditional_velocity", "integrate_flow", "straightness", "transport_cost"]


class LinearPath(AbstractSchedule):
    r"""Rectified-flow path ``x_t = (1 − t) x₀ + t ε`` on ``[0, 1]``; velocity ``ε − x₀``.

    ``f = −1/(1 − t)`` and ``g² = 2t/(1 − t)`` diverge at ``t = 1`` (``α = 0``): samplers that
    need them start at ``t_max < 1``; flow samplers (Euler on the velocity) do not.
    """

    t_min: float = eqx.field(default=0.0, static=True)
    t_max: float = eqx.field(default=1.0, static=True)

    def __check_init__(self):
        _check_range(self, "LinearPath", lower=0.0)
        if self.t_max > 1:
            raise ValueError(f"LinearPath: `t_max` must be <= 1, got {self.t_max!r}.")

    def _alpha(self, t):
        return 1 - t

    def _sigma(self, t):
        return t

    def _log_snr(self, t):
        return 2 * (jnp.log1p(-t) - jnp.log(t))

    def _t_of_log_snr(self, lam):
        return jax.nn.sigmoid(-0.5 * lam)


class StochasticInterpolant(AbstractSchedule):
    r"""``x_t = (1 − t) x₀ + t x₁ + γ(t) z``, ``γ(t) = √(a t (1 − t))`` (Albergo et al. 2023).

    As a schedule (Gaussian base ``x₁``): ``α = 1 − t``, ``σ² = t² + a t (1 − t)``, and
    ``λ = 2 log(1 − t) − log(t² + a t (1 − t))`` is inverted in closed form (a quadratic in
    ``t``).
    """

    noise: float = 1.0
    t_min: float = eqx.field(default=0.0, static=True)
    t_max: float = eqx.field(default=1.0, static=True)

    def __check_init__(self):
        if isinstance(self.noise, bool) or not isinstance(self.noise, (int, float)) or not (0 <= self.noise < math.inf):
            raise ValueError(f"StochasticInterpolant: `noise` (a) must be a finite number >= 0, got {self.noise!r}.")
        _check_range(self, "StochasticInterpolant", lower=0.0)
        if self.t_max > 1:
            raise ValueError(f"StochasticInterpolant: `t_max` must be <= 1, got {self.t_max!r}.")

    def gamma(self, t) -> Array:
        """The latent-noise amplitude ``γ(t) = √(a t (1 − t))``."""
        t = self._check(t)
        return jnp.sqrt(self.noise * t * (1 - t))

    def interpolate(self, x0: Array, x1: Array, z: Array, t) -> Array:
        """``I(t) = (1 − t) x₀ + t x₁ + γ(t) z``."""
        t = self._check(t)
        return (1 - t) * x0 + t * x1 + jnp.sqrt(self.noise * t * (1 - t)) * z

    def velocity_target(self, x0: Array, x1: Array, z: Array, t) -> Array:
        """``∂_t I + γ'(t) z = x₁ − x₀ + a (1 − 2t)/(2γ) z`` (singular at ``t ∈ {0, 1}`` when ``a > 0``)."""
        t = self._check(t)
        # γ' = √a (1 − 2t)/(2√(t(1 − t))): zero, not 0·∞, when a = 0
        gamma_dot = jnp.sqrt(self.noise) * (1 - 2 * t) / (2 * jnp.sqrt(t * (1 - t)))
        return x1 - x0 + gamma_dot * z

    def _alpha(self, t):
        return 1 - t

    def _sigma(self, t):
        return jnp.sqrt(t**2 + self.noise * t * (1 - t))

    def _log_snr(self, t):
        return 2 * jnp.log1p(-t) - jnp.log(t**2 + self.noise * t * (1 - t))

    def _t_of_log_snr(self, lam):
        # (1 − t)² = q (t² + a t (1 − t)), q = e^λ, is A t² + B t + 1 = 0 with A = 1 − q (1 − a),
        # B = −(2 + q a) and discriminant B² − 4A = q (4 + q a²) (written so: no cancellation
        # as q → 0). The root in [0, 1] is 2/(−B + √(B² − 4A)); for λ > 0 the same root with
        # p = e^{−λ} is 2p/(2p + a + √(4p + a²)), which does not overflow.
        a = self.noise
        q = jnp.exp(jnp.minimum(lam, 0.0))
        p = jnp.exp(-jnp.maximum(lam, 0.0))
        low_snr = 2 / (2 + q * a + jnp.sqrt(q * (4 + q * a**2)))
        high_snr = 2 * p / (2 * p + a + jnp.sqrt(4 * p + a**2))
        return jnp.where(lam > 0, high_snr, low_snr)


def conditional_velocity(schedule: AbstractSchedule, x0: Array, noise: Array, t) -> Array:
    r"""``d x_t/dt = α'(t) x₀ + σ'(t) ε`` along ``x_t = α x₀ + σ ε`` (for `LinearPath`: ``ε − x₀``)."""
    return schedule.alpha_dot(t) * x0 + schedule.sigma_dot(t) * noise


def integrate_flow(velocity, x1: Array, *, steps: int, t_start: float = 1.0, t_end: float = 0.0, save_steps: bool = False):
    r"""Integrate ``dx/dt = velocity(x, t)`` from `t_start` to `t_end` with ``steps`` Euler steps.

    Exactly ``steps`` calls of `velocity` (one per step: NFE = `steps`). Returns the endpoint,
    or with `save_steps` the states at all ``steps + 1`` times (first axis). `velocity` maps one
    sample; `x1` may hold a batch (first axis), vmapped here.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"integrate_flow: `steps` must be a positive integer, got {steps!r}.")
    field = lambda t, y, args: jax.vmap(velocity, in_axes=(0, None))(y, t)
    ts = jnp.linspace(t_start, t_end, steps + 1, dtype=x1.dtype)
    saveat = diffrax.SaveAt(ts=ts) if save_steps else diffrax.SaveAt(t1=True)
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(field), diffrax.Euler(), t0=t_start, t1=t_end, dt0=None, y0=x1,
        stepsize_controller=diffrax.StepTo(ts), saveat=saveat, max_steps=steps,
    )
    return solution.ys if save_steps else solution.ys[0]


def straightness(velocity, x1: Array, *, steps: int = 64) -> Float[Array, ""]:
    r"""``S = ∫₀¹ E ‖(X₀ − X₁) − Ẋ_t‖² dt`` along the flow's ODE paths from ``x₁`` (Liu et al. 2023, eq. 6).

    Zero iff every path is a straight line traversed at constant speed (then one Euler step is
    exact). Estimated on a uniform `steps`-step Euler discretisation: the velocity at every grid
    time against the path's endpoint difference.
    """
    path = integrate_flow(velocity, x1, steps=steps, save_steps=True)
    ts = jnp.linspace(1.0, 0.0, steps + 1, dtype=x1.dtype)[:-1]
    velocities = jax.vmap(lambda x, t: jax.vmap(velocity, in_axes=(0, None))(x, t))(path[:-1], ts)
    # dx/dt along decreasing t: the displacement from x₁ to x₀ per unit time is −velocity.
    chord = path[-1] - path[0]
    return jnp.mean(jnp.sum((chord[None] + velocities) ** 2, axis=tuple(range(2, path.ndim))))


def transport_cost(x0: Array, x1: Array) -> Float[Array, ""]:
    """``E ‖X₀ − X₁‖²`` of a coupling given as paired samples (first axis)."""
    return jnp.mean(jnp.sum((x0 - x1) ** 2, axis=tuple(range(1, x0.ndim))))
