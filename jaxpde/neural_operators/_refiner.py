r"""PDE-Refiner: a one-step emulator whose prediction is refined by ``K`` denoising steps.

Lippe, Veeling, Perdikaris, Turner & Brandstetter, "PDE-Refiner: Achieving Accurate Long
Rollouts with Neural PDE Solvers", NeurIPS 2023. A plain one-step emulator trained with the MSE
fits the high-amplitude, low-wavenumber part of the next state and neglects the low-amplitude
high wavenumbers, whose errors then grow and end the rollout. PDE-Refiner trains one network,
conditioned on the previous frames and on a refinement step ``k ∈ {0, …, K}``, to

- ``k = 0``: predict the next state ``y`` from the window alone (its noisy-input channel is
  zero) — an ordinary one-step emulator;
- ``k ≥ 1``: predict the noise ``ε`` in ``ỹ_k = α_k y + σ_k ε``, ``ε ~ N(0, I)``,

with the noise levels decreasing geometrically, ``σ_k = σ_min^{k/K}`` (Lippe et al., §3), so the
later steps see noise far below the field's amplitude and must resolve its small scales. The loss
is the MSE of the step's prediction, ``k`` uniform. At inference the step-0 prediction ``ŷ`` is
refined ``K`` times: noise it to level ``k``, predict the noise, remove it,

$$ỹ_k = α_k ŷ + σ_k ε,\qquad ŷ \leftarrow \frac{ỹ_k − σ_k\,\hat ε_θ(ỹ_k; w, k)}{α_k},
  \qquad k = 1, …, K .$$

With a perfect denoiser ``ε̂ = ε`` every refinement returns ``y`` exactly.

**The noise schedule** is a `jaxpde.samplers.AbstractSchedule`: the level of step ``k`` is the
log-SNR ``λ_k = log((1 − σ_k²)/σ_k²)`` of the paper's variance-preserving noise, placed at the
schedule's time ``t_k = schedule.t_of_log_snr(λ_k)``, and ``α_k = schedule.alpha(t_k)``,
``σ_k = schedule.sigma(t_k)``. Every VP schedule (`VPLinear`, the default, `VPCosine`) then
reproduces the paper's ``α_k = √(1 − σ_k²)``; a VE/EDM schedule gives the same signal-to-noise
ratios with ``α = 1``. The schedule's ``t_min`` must reach ``λ_K``: the default is
``VPLinear(t_min=1e-13)``, which holds ``σ_min`` down to about ``1e−7`` in float32 (the paper
uses ``σ_min`` of a few ``10⁻⁷`` on KS, at float32's rounding of an ``O(1)`` field).

**The model** is any equinox module mapping one sample ``(c_in, *grid) → (c, *grid)``; it
sees the emulator's input (the window stacked on channels), the noisy estimate (``c``
channels; zeros at ``k = 0``) and one constant channel ``k/K``: ``c_in`` =
`PDERefiner.input_channels`. The refined quantity is the emulator's target — the state or the
increment (`jaxpde.neural_operators.Emulator`'s ``parameterisation``), so PDE-Refiner composes
with a solver in the loop too.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..samplers import AbstractSchedule, VPLinear
from ._emulator import Emulator

__all__ = ["PDERefiner"]


def _default_schedule() -> AbstractSchedule:
    # VPLinear's σ² ≈ β₀ t near t = 0 involves no sum with an O(1) number, so float32 holds
    # noise levels down to σ ≈ 1e-7 at t ≈ 1e-13 (the cosine schedule's phase θ₀ + O(t) does not).
    return VPLinear(t_min=1e-13)


@eqx.filter_jit
def _place(schedule: AbstractSchedule, log_snr: Array):
    """The schedule's largest log-SNR, and the times, ``α`` and ``σ`` of the levels `log_snr`.

    One compiled call (the schedule's range checks are `equinox.error_if`s, each its own
    compile when called eagerly); levels beyond the schedule's reach are clipped here and
    refused by the caller with a message naming `min_noise_std`.
    """
    lower = schedule.log_snr(schedule.t_min)
    times = jnp.clip(schedule.t_of_log_snr(jnp.minimum(log_snr, lower)), schedule.t_min, schedule.t_max)
    return lower, times, schedule.alpha(times), schedule.sigma(times)


class PDERefiner(eqx.Module):
    r"""An emulator refined by `num_refinement_steps` denoising steps (see the module docstring).

    **Arguments:**

    - `emulator`: the `Emulator` recipe whose one step is refined (parameterisation, history,
      solver in the loop); default ``Emulator("state")``.
    - `num_refinement_steps`: ``K ≥ 1``.
    - `min_noise_std`: ``σ_min`` in ``(0, 1)``: the noise level of the last step.
    - `schedule`: a `jaxpde.samplers.AbstractSchedule` (default ``VPLinear(t_min=1e-13)``).

    Attributes ``alphas``, ``sigmas``, ``times``: ``α_k``, ``σ_k``, ``t_k`` for ``k = 1, …, K``.
    """

    emulator: Emulator
    num_refinement_steps: int = eqx.field(static=True)
    min_noise_std: float = eqx.field(static=True)
    schedule: AbstractSchedule
    alphas: tuple[float, ...] = eqx.field(static=True)
    sigmas: tuple[float, ...] = eqx.field(static=True)
    times: tuple[float, ...] = eqx.field(static=True)

    def __init__(
        self,
        emulator: Emulator | None = None,
        num_refinement_steps: int = 3,
        min_noise_std: float = 2e-3,
        schedule: AbstractSchedule | None = None,
    ):
        emulator = Emulator("state") if emulator is None else emulator
        if not isinstance(emulator, Emulator):
            raise TypeError(f"PDERefiner: `emulator` must be an Emulator, got {type(emulator).__name__}.")
        k = num_refinement_steps
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"PDERefiner: `num_refinement_steps` must be a positive integer, got {k!r}.")
        if not (isinstance(min_noise_std, (int, float)) and 0 < min_noise_std < 1):
            raise ValueError(f"PDERefiner: `min_noise_std` must lie in (0, 1), got {min_noise_std!r}.")
        schedule = _default_schedule() if schedule is None else schedule
        if not isinstance(schedule, AbstractSchedule):
            raise TypeError(f"PDERefiner: `schedule` must be a jaxpde.samplers schedule, got {type(schedule).__name__}.")
        self.emulator, self.num_refinement_steps, self.min_noise_std = emulator, int(k), float(min_noise_std)
        self.schedule = schedule
        # The paper's VP noise levels σ_k = σ_min^{k/K}, as log-SNRs, at the schedule's times.
        # Computed once, in float64 NumPy for the levels, so they are static numbers.
        std = np.asarray([min_noise_std ** (j / k) for j in range(1, k + 1)], np.float64)
        log_snr = np.log1p(-(std**2)) - 2 * np.log(std)
        lower, times, alphas, sigmas = _place(schedule, jnp.asarray(log_snr, jnp.float32))
        if log_snr.max() > float(lower) + 1e-3 * abs(float(lower)):
            raise ValueError(
                f"PDERefiner: the schedule reaches log-SNR {float(lower):.4g} at t_min = {schedule.t_min}, but "
                f"`min_noise_std` = {min_noise_std} needs {log_snr.max():.4g}; give the schedule a smaller t_min."
            )
        self.times = tuple(float(t) for t in np.asarray(times))
        self.alphas = tuple(float(a) for a in np.asarray(alphas))
        self.sigmas = tuple(float(s) for s in np.asarray(sigmas))

    def input_channels(self, channels: int) -> int:
        """``c_in`` of the model: the emulator's input, the noisy estimate and the step channel."""
        return self.emulator.input_channels(channels) + channels + 1

    def _levels(self, dtype) -> tuple[Array, Array]:
        """``α_k``, ``σ_k`` for ``k = 0, …, K`` (``k = 0``: no noisy input, ``α_0 = σ_0 = 0``)."""
        alphas = jnp.asarray((0.0, *self.alphas), dtype)
        sigmas = jnp.asarray((0.0, *self.sigmas), dtype)
        return alphas, sigmas

    def conditioned(self, x: Array, noisy: Array, k) -> Array:
        """The model input: ``[x ; noisy ; k/K]`` on the channel axis."""
        step = jnp.full((1, *noisy.shape[1:]), jnp.asarray(k, noisy.dtype) / self.num_refinement_steps, noisy.dtype)
        return jnp.concatenate([x, noisy, step], axis=0)

    def noised(self, y: Array, noise: Array, k) -> Array:
        """``ỹ_k = α_k y + σ_k ε`` (zeros at ``k = 0``)."""
        alphas, sigmas = self._levels(y.dtype)
        return alphas[k] * y + sigmas[k] * noise

    # -- inference ------------------------------------------------------------------------

    def refine(self, model: Callable, window: Float[Array, "h c *grid"], key: PRNGKeyArray) -> tuple[Array, Array]:
        """The refined model output ``ŷ`` (the emulator's target quantity) and the base ``b``."""
        window = jnp.asarray(window)
        self.emulator._check_window(window, "refine")
        x, base = self.emulator.inputs(window)
        y = model(self.conditioned(x, jnp.zeros_like(base), 0))
        if y.shape != base.shape:
            raise ValueError(f"PDERefiner: the model must map {x.shape[0] + base.shape[0] + 1} channels to one frame "
                             f"of shape {base.shape}, got {y.shape}.")
        alphas, sigmas = self._levels(base.dtype)

        def denoise(y, inputs):
            k, key = inputs
            noisy = alphas[k] * y + sigmas[k] * jax.random.normal(key, y.shape, y.dtype)
            eps = model(self.conditioned(x, noisy, k))
            return (noisy - sigmas[k] * eps) / alphas[k], None

        keys = jax.random.split(key, self.num_refinement_steps)
        y, _ = jax.lax.scan(denoise, y, (jnp.arange(1, self.num_refinement_steps + 1), keys))
        return y, base

    def step(self, model: Callable, window: Float[Array, "h c *grid"], key: PRNGKeyArray) -> Float[Array, "c *grid"]:
        """The next frame: the refined prediction turned into a state (`Emulator.to_state`)."""
        y, base = self.refine(model, window, key)
        return self.emulator.to_state(y, base)

    def rollout(self, model: Callable, window: Float[ArrayLike, "h c *grid"], num_steps: int,
                key: PRNGKeyArray) -> Float[Array, "n c *grid"]:
        """`num_steps` refined steps (a `jax.lax.scan`, one key per step)."""
        if not isinstance(num_steps, (int, np.integer)) or isinstance(num_steps, bool) or num_steps < 1:
            raise ValueError(f"PDERefiner.rollout: `num_steps` must be a positive integer, got {num_steps!r}.")
        window = jnp.asarray(window)
        self.emulator._check_window(window, "rollout")

        def advance(window, key):
            frame = self.step(model, window, key)
            return jnp.concatenate([window[1:], frame[None]], axis=0), frame

        _, frames = jax.lax.scan(advance, window, jax.random.split(key, int(num_steps)))
        return frames

    # -- training -------------------------------------------------------------------------

    def loss(self) -> Callable:
        r"""``loss_fn(model, windows, key)`` for `jaxpde.training.fit`: the PDE-Refiner objective.

        `windows` is ``(B, h + 1, c, *grid)``. Per sample, ``k`` is uniform on ``{0, …, K}``;
        ``k = 0`` scores the prediction of the target quantity ``y``, ``k ≥ 1`` the prediction
        of the noise in ``ỹ_k``, both by the mean squared error.
        """
        h, K = self.emulator.history, self.num_refinement_steps

        def one(model, window, key):
            k_key, noise_key = jax.random.split(key)
            x, base = self.emulator.inputs(window[:h])
            y = self.emulator.target(window[h], base)
            k = jax.random.randint(k_key, (), 0, K + 1)
            noise = jax.random.normal(noise_key, y.shape, y.dtype)
            prediction = model(self.conditioned(x, self.noised(y, noise, k), k))
            goal = jnp.where(k == 0, y, noise)
            return jnp.mean((prediction - goal) ** 2)

        def loss_fn(model, windows, key):
            if windows.ndim < 4 or windows.shape[1] != h + 1:
                raise ValueError(
                    f"PDERefiner.loss: the batch must be (batch, history + 1 = {h + 1}, channels, *grid), "
                    f"got shape {windows.shape}."
                )
            keys = jax.random.split(key, windows.shape[0])
            return jnp.mean(jax.vmap(lambda w, k: one(model, w, k))(windows, keys))

        return loss_fn
