r"""Time grids for sampling: where a sampler spends its model evaluations.

A sampler steps on a grid $t_{\mathrm{start}} = t_0 > t_1 > \dots > t_N = t_{\mathrm{end}}$
(``diffrax.StepTo(ts)``). At a fixed number of function evaluations the grid moves the error as
much as the solver does — on the 8-Gaussian benchmark DPM-Solver++(2M) at 10 NFE is 5× more
accurate on the time-quadratic grid than on the uniform log-SNR one — so grids are objects of
their own, each an `AbstractTimeGrid`:

- `UniformTime`: $t_i$ equispaced.
- `UniformLogSNR`: $\lambda(t_i)$ equispaced, $\lambda = \log(\alpha^2/\sigma^2)$ (DPM-Solver's
  ``logSNR`` grid; the exponential integrators' natural variable).
- `TimeQuadratic`: $\sqrt{t_i}$ equispaced (DPM-Solver's ``time_quadratic``), denser near the data.
- `Karras`: the noise level $\tilde\sigma = \sigma/\alpha = e^{-\lambda/2}$ equispaced in
  $\tilde\sigma^{1/\rho}$, $\rho = 7$ (Karras et al. 2022, eq. 5).
- `LearnedGrid`: a free monotone grid, $\lambda$ increments $=$ softmax of learned logits
  (`jaxpde.samplers._learned_schedule` optimises them through the sampler).

Every grid is computed in the schedule's own variable and mapped back to $t$ by its closed-form
inverse, and its two ends are then set to ``t_start`` and ``t_end`` *exactly*: the sampler never
takes a sliver step to mop up rounding (the NFE it would cost is a full step's), and the last
state is at ``t_end`` to the bit.

References: C. Lu et al., "DPM-Solver", NeurIPS 2022 (logSNR and time-quadratic grids);
T. Karras et al., "Elucidating the design space of diffusion-based generative models", NeurIPS
2022.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["AbstractTimeGrid", "UniformTime", "UniformLogSNR", "TimeQuadratic", "Karras", "LearnedGrid"]


def _check_times(owner: str, schedule, num_steps, t_start, t_end) -> None:
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise ValueError(f"{owner}: `num_steps` must be a positive integer, got {num_steps!r}.")
    for name, value in (("t_start", t_start), ("t_end", t_end)):
        if not isinstance(value, (int, float, np.floating)) or isinstance(value, bool) or not np.isfinite(value):
            raise ValueError(f"{owner}: `{name}` must be a finite number, got {value!r}.")
    t_min, t_max = schedule.t_min, schedule.t_max
    if not t_start > t_end:
        raise ValueError(f"{owner}: sampling runs from noise to data, so `t_start` must be > `t_end`; got {t_start} and {t_end}.")
    for name, value in (("t_start", t_start), ("t_end", t_end)):
        if not t_min <= value <= t_max:
            raise ValueError(
                f"{owner}: `{name}` must lie in the schedule's [t_min, t_max] = [{t_min}, {t_max}], got {value}."
            )


class AbstractTimeGrid(eqx.Module):
    """A rule for ``num_steps + 1`` decreasing times from ``t_start`` to ``t_end``.

    Subclasses implement `_times` (the grid before its ends are pinned); call the grid,
    ``grid(schedule, num_steps, t_start, t_end)``, which checks the arguments and pins the ends.
    """

    @abc.abstractmethod
    def _times(self, schedule, num_steps: int, t_start, t_end, dtype) -> Float[Array, " n"]:
        """``num_steps + 1`` times, nominally from ``t_start`` to ``t_end``."""

    def __call__(self, schedule, num_steps: int, t_start: float = 1.0, t_end: float = 1e-3, dtype=None) -> Float[Array, " n"]:
        owner = type(self).__name__
        _check_times(owner, schedule, num_steps, t_start, t_end)
        dtype = jnp.result_type(float) if dtype is None else dtype
        ts = self._times(schedule, int(num_steps), t_start, t_end, dtype).astype(dtype)
        if ts.shape != (num_steps + 1,):
            raise ValueError(f"{owner}: the grid must have num_steps + 1 = {num_steps + 1} times, got shape {ts.shape}.")
        # Pin the ends: rounding in the inverse maps must not shift them (no sliver steps).
        return ts.at[0].set(t_start).at[-1].set(t_end)


class UniformTime(AbstractTimeGrid):
    r"""$t_i = t_{\mathrm{start}} + \tfrac{i}{N}(t_{\mathrm{end}} - t_{\mathrm{start}})$."""

    def _times(self, schedule, num_steps, t_start, t_end, dtype):
        return jnp.linspace(t_start, t_end, num_steps + 1, dtype=dtype)


class UniformLogSNR(AbstractTimeGrid):
    r"""$\lambda(t_i)$ equispaced between $\lambda(t_{\mathrm{start}})$ and $\lambda(t_{\mathrm{end}})$."""

    def _times(self, schedule, num_steps, t_start, t_end, dtype):
        lam0 = schedule.log_snr(jnp.asarray(t_start, dtype))
        lam1 = schedule.log_snr(jnp.asarray(t_end, dtype))
        lam = lam0 + (lam1 - lam0) * jnp.linspace(0.0, 1.0, num_steps + 1, dtype=dtype)
        return _interior_times(schedule, lam)


class TimeQuadratic(AbstractTimeGrid):
    r"""$t_i^{1/p}$ equispaced, $p = 2$ by default (`power`): DPM-Solver's ``time_quadratic`` grid."""

    power: float = 2.0

    def __check_init__(self):
        if not self.power > 0:
            raise ValueError(f"TimeQuadratic: `power` must be positive, got {self.power!r}.")

    def _times(self, schedule, num_steps, t_start, t_end, dtype):
        u = jnp.linspace(0.0, 1.0, num_steps + 1, dtype=dtype)
        a, b = t_start ** (1 / self.power), t_end ** (1 / self.power)
        return (a + u * (b - a)) ** self.power


class Karras(AbstractTimeGrid):
    r"""$\tilde\sigma_i^{1/\rho}$ equispaced, $\tilde\sigma = \sigma/\alpha = e^{-\lambda/2}$, $\rho = 7$ (EDM)."""

    rho: float = 7.0

    def __check_init__(self):
        if not self.rho > 0:
            raise ValueError(f"Karras: `rho` must be positive, got {self.rho!r}.")

    def _times(self, schedule, num_steps, t_start, t_end, dtype):
        # In log space: σ̃^{1/ρ} = exp(-λ/(2ρ)), equispaced, then λ = -2ρ log(·).
        lam0 = schedule.log_snr(jnp.asarray(t_start, dtype))
        lam1 = schedule.log_snr(jnp.asarray(t_end, dtype))
        a, b = jnp.exp(-lam0 / (2 * self.rho)), jnp.exp(-lam1 / (2 * self.rho))
        u = jnp.linspace(0.0, 1.0, num_steps + 1, dtype=dtype)
        lam = -2 * self.rho * jnp.log(a + u * (b - a))
        return _interior_times(schedule, lam)


class LearnedGrid(AbstractTimeGrid):
    r"""A free grid: $\lambda$ increments $\Delta\lambda_i = (\lambda_{\mathrm{end}} - \lambda_{\mathrm{start}})\,\mathrm{softmax}(\theta)_i$.

    Monotone by construction for any logits $\theta \in \mathbb R^N$, and exactly ``N =
    len(logits)`` steps; differentiable in $\theta$, which is what
    `jaxpde.samplers._learned_schedule.learn_schedule` optimises. `from_grid` starts it at any
    other grid.
    """

    logits: Float[Array, " n"]

    def __check_init__(self):
        if jnp.ndim(self.logits) != 1 or jnp.shape(self.logits)[0] < 1:
            raise ValueError(f"LearnedGrid: `logits` must be a non-empty vector, got shape {jnp.shape(self.logits)}.")

    @classmethod
    def from_grid(cls, grid: AbstractTimeGrid, schedule, num_steps: int, t_start: float = 1.0, t_end: float = 1e-3, dtype=None):
        """The learned grid equal to `grid` (its λ increments as logits)."""
        ts = grid(schedule, num_steps, t_start, t_end, dtype)
        increments = jnp.diff(schedule.log_snr(ts))
        return cls(jnp.log(increments / jnp.sum(increments)))

    def _times(self, schedule, num_steps, t_start, t_end, dtype):
        if num_steps != self.logits.shape[0]:
            raise ValueError(
                f"LearnedGrid: `num_steps` must equal the number of learned increments {self.logits.shape[0]}, got {num_steps}."
            )
        lam0 = schedule.log_snr(jnp.asarray(t_start, dtype))
        lam1 = schedule.log_snr(jnp.asarray(t_end, dtype))
        fractions = jnp.cumsum(jax.nn.softmax(self.logits.astype(dtype)))
        lam = lam0 + (lam1 - lam0) * jnp.concatenate([jnp.zeros((1,), dtype), fractions])
        return _interior_times(schedule, lam)


def _interior_times(schedule, lam):
    """``t(λ)`` at the interior points; the ends are pinned by the caller (no inverse at them)."""
    inner = schedule.t_of_log_snr(lam[1:-1])
    return jnp.concatenate([jnp.full((1,), jnp.nan, lam.dtype), inner.astype(lam.dtype), jnp.full((1,), jnp.nan, lam.dtype)])
