r"""Samplers as diffrax solvers: the denoiser term, and the base class of the diffusion solvers.

A diffusion process $x_t = \alpha_t x_0 + \sigma_t \varepsilon$ is sampled by integrating its
**probability-flow ODE** (Song et al. 2021) backwards from $t_{\max}$ to a small $t$,

$$\frac{dx}{dt} = f(t)\,x - \tfrac12 g^2(t)\,\nabla_x \log p_t(x)
               = f(t)\,x + \frac{g^2(t)}{2\sigma_t}\,\hat\varepsilon(x, t),
  \qquad f = \frac{d\log\alpha_t}{dt}, \quad g^2 = \frac{d\sigma_t^2}{dt} - 2 f \sigma_t^2 .$$

`DiffusionTerm` is that vector field as a `diffrax.AbstractTerm`, built from a
`jaxpde.samplers.Denoiser` — a model in any parameterisation (noise $\varepsilon$, data $x_0$,
velocity $v$, score, flow) on its schedule. So
diffrax's own solvers (`diffrax.Euler`, `diffrax.Heun`, `diffrax.Tsit5`, `diffrax.Dopri8` …)
integrate it as they would any ODE, and the dedicated samplers — DDIM, DPM-Solver,
DPM-Solver++, UniPC, EDM's Heun — are `AbstractDiffusionSolver`\ s with this term as their
``term_structure``: they read the schedule and the denoiser off the term and take the step of
their paper, usually an exponential integrator in the half log-SNR
$\eta_t = \log(\alpha_t/\sigma_t) = \lambda_t / 2$, in which the linear part of the ODE is exact
(Lu et al. 2022):

$$x_t = \frac{\sigma_t}{\sigma_s} x_s + \sigma_t \int_{\eta_s}^{\eta_t} e^{\eta}\,
        \hat x_0(x_\eta, \eta)\, d\eta
      = \frac{\alpha_t}{\alpha_s} x_s - \alpha_t \int_{\eta_s}^{\eta_t} e^{-\eta}\,
        \hat\varepsilon(x_\eta, \eta)\, d\eta .$$

**Time.** Sampling runs from ``t0 = t_start`` (e.g. 1) down to ``t1 = t_end`` (e.g. 1e-3);
diffrax integrates such a reverse-time solve in negated time and wraps the term to say so. The
solvers unwrap it (`jaxpde.numerics` keeps the one private diffrax import that does) and work in
the schedule's own time. Steps are taken on a given grid, ``diffrax.StepTo(ts)``; the grids are
in `jaxpde.samplers._grids`.

**Multistep state.** Multistep solvers (DPM-Solver++ 2M/3M, UniPC) keep their last data
predictions and log-SNRs in the diffrax solver state, a fixed-size history shifted every step
(the same mechanism as the ETDRK solvers' coefficient cache): the first steps, with a shorter
history, run at the order the history allows.

**NFE.** diffrax counts steps, not model calls. Every solver here states its exact cost,
`AbstractDiffusionSolver.evaluations(num_steps)`, and `evaluations` in `jaxpde.samplers._sample`
gives it for diffrax's own Runge–Kutta solvers too (stages per step, first-same-as-last
reuse); the tests count real model calls against both.

References:

- Y. Song et al., "Score-based generative modeling through stochastic differential equations",
  ICLR 2021.
- C. Lu et al., "DPM-Solver: a fast ODE solver for diffusion probabilistic model sampling in
  around 10 steps", NeurIPS 2022.
"""

import abc
import math
from collections.abc import Callable
from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from ..numerics._compat import unwrap_term
from ._parameterisation import Denoiser

__all__ = ["DiffusionTerm", "AbstractDiffusionSolver"]


class DiffusionTerm(diffrax.AbstractTerm):
    r"""The probability-flow vector field of a denoiser, as a diffrax term.

    ``vf(t, x, args)`` $= f(t)\,x - \tfrac12 g^2(t)\nabla\log p_t(x)$, which is the denoiser's
    ``"flow"`` prediction $\mathbb E[\dot\alpha_t x_0 + \dot\sigma_t\varepsilon \mid x_t]$; the
    control is $t_1 - t_0$, so every diffrax ODE solver integrates it.

    **Arguments:**

    - `denoiser`: a `jaxpde.samplers.Denoiser` — the model, what it predicts (``"eps"``,
      ``"x0"``, ``"v"``, ``"score"``, ``"flow"``) and its schedule. It maps **one** sample of
      shape `event_shape`; a state with leading batch axes is mapped over them with `jax.vmap`,
      one model call (one NFE) per evaluation of the term.
    - `event_shape`: the shape of one sample; ``None`` (default) means the state is one sample.
    - `t_end`: the time the solve ends at (``None``: not given). diffrax tells a solver the
      end of its first step only, so samplers that treat the last step differently (the
      ``final_order`` of DPM-Solver++ and UniPC) read it here; `jaxpde.samplers.solve` and
      `sample` set it from the grid.
    """

    denoiser: Denoiser
    event_shape: tuple[int, ...] | None = eqx.field(static=True)
    t_end: Array | None = None

    def __init__(self, denoiser: Denoiser, event_shape=None, t_end=None):
        if not isinstance(denoiser, Denoiser):
            raise TypeError(
                "DiffusionTerm: `denoiser` must be a jaxpde.samplers.Denoiser (model, schedule, parameterisation), "
                f"got {type(denoiser).__name__}."
            )
        self.denoiser = denoiser
        self.event_shape = None if event_shape is None else tuple(int(n) for n in event_shape)
        self.t_end = None if t_end is None else jnp.asarray(t_end)

    @property
    def schedule(self):
        return self.denoiser.schedule

    def predict(self, t, x: Array, to: str | None = None) -> Array:
        """The denoiser's prediction at ``(x, t)`` in parameterisation `to`, mapped over the batch axes (one NFE)."""
        if self.event_shape is None:
            batch_ndim = 0
        else:
            event_ndim = len(self.event_shape)
            if x.shape[x.ndim - event_ndim :] != self.event_shape:
                raise ValueError(
                    f"DiffusionTerm: the state must end in `event_shape` {self.event_shape}, got shape {x.shape}."
                )
            batch_ndim = x.ndim - event_ndim
        t = jnp.asarray(t, x.dtype)
        if not batch_ndim:
            return self.denoiser(x, t, to=to).astype(x.dtype)
        flat = x.reshape((-1, *x.shape[batch_ndim:]))
        out = jax.vmap(lambda xi: self.denoiser(xi, t, to=to))(flat)
        return out.reshape(x.shape).astype(x.dtype)

    def _alpha_sigma(self, t, dtype):
        t = jnp.asarray(t, dtype)
        return self.schedule.alpha(t).astype(dtype), self.schedule.sigma(t).astype(dtype)

    def noise_prediction(self, t, x: Array) -> Array:
        r"""$\hat\varepsilon(x, t)$, whatever the model predicts (one NFE)."""
        return self.predict(t, x, "eps")

    def data_prediction(self, t, x: Array) -> Array:
        r"""$\hat x_0(x, t)$, whatever the model predicts (one NFE)."""
        return self.predict(t, x, "x0")

    # ---- diffrax --------------------------------------------------------------------------

    def vf(self, t, y, args):
        return self.predict(t, y, "flow")

    def contr(self, t0, t1, **kwargs):
        return t1 - t0

    def prod(self, vf, control):
        return jax.tree_util.tree_map(lambda v: v * control, vf)


class AbstractDiffusionSolver(diffrax.AbstractSolver):
    r"""Base class of the samplers that step a `DiffusionTerm` with their own scheme.

    Subclasses implement `diffusion_step` (one step in the schedule's own time, from ``t0`` to
    ``t1 < t0`` for sampling), `init_state` (the multistep history, or ``None``) and the cost
    `evaluations`; this class does the diffrax plumbing — unwrapping the term, undoing diffrax's
    negated time, dense output — and says what the step needs: `min_steps`.

    Class attributes:

    - `stages`: model evaluations per step (singlestep methods), or 1 (multistep methods).
    - `min_steps`: the fewest steps the scheme can take at its order (e.g. 1).
    """

    term_structure: ClassVar = DiffusionTerm
    interpolation_cls: ClassVar[Callable[..., diffrax.LocalLinearInterpolation]] = diffrax.LocalLinearInterpolation
    stages: ClassVar[int] = 1
    min_steps: ClassVar[int] = 1

    @abc.abstractmethod
    def order(self, terms) -> int:
        """Order of the scheme (global error $O(h^p)$ in the step $h$)."""

    @abc.abstractmethod
    def diffusion_step(self, term: DiffusionTerm, t0, t1, y0, state) -> tuple[Array, PyTree]:
        """One step from ``y0`` at time ``t0`` to time ``t1`` (schedule times); returns ``(y1, state)``."""

    def init_state(self, term: DiffusionTerm, t0, t1, y0) -> PyTree:
        """The solver state before the first step (``t0``, ``t1``: the whole solve, schedule times)."""
        return None

    def evaluations(self, num_steps: int) -> int:
        """Model evaluations of a solve of `num_steps` steps: exactly ``stages * num_steps``."""
        return self.stages * int(num_steps)

    # ---- diffrax interface ----------------------------------------------------------------

    def init(self, terms, t0, t1, y0, args):
        term, direction = unwrap_term(terms)
        return self.init_state(term, direction * t0, direction * t1, y0)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        term, direction = unwrap_term(terms)
        y1, solver_state = self.diffusion_step(term, direction * t0, direction * t1, y0, solver_state)
        return y1, None, dict(y0=y0, y1=y1), solver_state, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


# ---- helpers shared by the exponential integrators -------------------------------------------


def half_log_snr(term: DiffusionTerm, t, dtype):
    r"""$\eta_t = \lambda_t/2 = \log(\alpha_t/\sigma_t)$."""
    return (0.5 * term.schedule.log_snr(jnp.asarray(t, dtype))).astype(dtype)


def time_of_half_log_snr(term: DiffusionTerm, eta, dtype):
    r"""The time at which $\log(\alpha_t/\sigma_t) = \eta$."""
    return term.schedule.t_of_log_snr(2 * eta).astype(dtype)


def phi(k: int, z):
    r"""$\varphi_k(z) = \int_0^1 e^{(1-u)z}\,\frac{u^{k-1}}{(k-1)!}\,du$, for a real scalar $z$ of any size.

    The recurrence $\varphi_{k+1} = (\varphi_k - 1/k!)/z$ cancels catastrophically for small
    $|z|$; there the Taylor series $\sum_j z^j/(j+k)!$ is used instead (to 12 terms: exact to
    rounding for $|z| < 0.5$ in float64).
    """
    small = jnp.abs(z) < 0.5
    zs = jnp.where(small, 1.0, z)  # keep the unused branch finite (and its gradient)
    value = jnp.expm1(zs) / zs
    for j in range(1, k):
        value = (value - 1.0 / float(math.factorial(j))) / zs
    series = sum(z**j / float(math.factorial(j + k)) for j in range(12))
    return jnp.where(small, series, value)
