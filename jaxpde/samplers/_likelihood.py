r"""Exact log-likelihood through the probability-flow ODE (Song et al. 2021, §4.3; FFJORD).

Along the probability-flow ODE ``dx/dt = F(x, t) = f x − ½ g² ∇ log p_t(x)`` the density obeys
the instantaneous change of variables (Chen et al. 2018)
``d log p_t(x(t))/dt = −∇·F(x(t), t)``, so for a point ``x`` at ``t₀``

.. math::

    \log p_{t_0}(x) = \log p_{t_1}(x(t_1)) + \int_{t_0}^{t_1} ∇·F(x(t), t)\, dt ,

with ``x(t)`` the ODE solution from ``x(t₀) = x`` and ``p_{t₁}`` the prior (``N(0, σ(t₁)² I)``
unless given). One diffrax solve integrates the state and the divergence together. The
divergence is either

- ``"exact"``: the trace of the Jacobian, ``d`` Jacobian-vector products (low dimension), or
- ``"hutchinson"``: ``E_z zᵀ (∂F/∂x) z`` (Hutchinson 1989; Grathwohl et al. 2019) with
  Rademacher probes ``z`` fixed for the whole solve — one JVP per probe per evaluation; the
  estimate of ``log p`` is unbiased up to the ODE's error, and its Monte-Carlo standard error
  falls as ``1/√probes``.

Each point gets its own probes from `key`; vmap over points and keys for a batch.
"""

import math
from collections.abc import Callable
from typing import Literal

import diffrax
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._parameterisation import Denoiser
from ._schedules import AbstractSchedule

__all__ = ["log_likelihood", "ode_log_likelihood"]


def _gaussian_log_prob(x: Array, std: Array) -> Array:
    return -0.5 * jnp.sum((x / std) ** 2) - x.size * (jnp.log(std) + 0.5 * math.log(2 * math.pi))


def ode_log_likelihood(
    vector_field: Callable[[Array, Array], Array],
    x: Float[Array, "..."],
    t0: float,
    t1: float,
    prior_log_prob: Callable[[Array], Array],
    *,
    key: PRNGKeyArray | None = None,
    trace: Literal["exact", "hutchinson"] = "hutchinson",
    probes: int = 1,
    solver: diffrax.AbstractSolver | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 4096,
) -> tuple[Array, Array]:
    r"""``log p_{t₀}(x)`` for the flow ``dx/dt = vector_field(x, t)``; returns ``(log p, x(t₁))``.

    `x` is one sample (any shape). `trace` picks the divergence (`key` and `probes` are for
    ``"hutchinson"``). `solver` defaults to `diffrax.Tsit5` with a PID controller at
    `rtol`/`atol`.
    """
    if trace not in ("exact", "hutchinson"):
        raise ValueError(f"ode_log_likelihood: `trace` must be 'exact' or 'hutchinson', got {trace!r}.")
    if not isinstance(probes, int) or probes < 1:
        raise ValueError(f"ode_log_likelihood: `probes` must be a positive integer, got {probes!r}.")
    x = jnp.asarray(x)
    if trace == "hutchinson":
        if key is None:
            raise ValueError("ode_log_likelihood: the 'hutchinson' trace needs a `key` for its probes.")
        z = jax.random.rademacher(key, (probes,) + x.shape, dtype=x.dtype)

    def field(t, state, args):
        y, _ = state
        f = lambda u: vector_field(u, t)
        if trace == "exact":
            flat = lambda u: f(u.reshape(x.shape)).reshape(-1)
            basis = jnp.eye(x.size, dtype=x.dtype)
            dy, columns = jax.vmap(lambda e: jax.jvp(flat, (y.reshape(-1),), (e,)), out_axes=(None, 0))(basis)
            return dy.reshape(x.shape), jnp.trace(columns)
        dy, jz = jax.vmap(lambda v: jax.jvp(f, (y,), (v,)), out_axes=(None, 0))(z)
        return dy, jnp.mean(jnp.sum((jz * z).reshape(probes, -1), axis=1))

    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(field), solver or diffrax.Tsit5(), t0=t0, t1=t1, dt0=None, y0=(x, jnp.zeros((), x.dtype)),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), max_steps=max_steps,
    )
    x1, divergence_integral = solution.ys[0][0], solution.ys[1][0]
    return prior_log_prob(x1) + divergence_integral, x1


def log_likelihood(
    denoiser: Denoiser,
    x: Float[Array, "..."],
    *,
    key: PRNGKeyArray | None = None,
    t0: float | None = None,
    t1: float | None = None,
    prior_log_prob: Callable[[Array], Array] | None = None,
    trace: Literal["exact", "hutchinson"] = "hutchinson",
    probes: int = 1,
    solver: diffrax.AbstractSolver | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> Array:
    r"""``log p_{t₀}(x)`` of a diffusion model through its probability-flow ODE.

    `denoiser` is a `Denoiser` (any parameterisation; for a `GaussianMixture`, its `denoiser`).
    `t0`, `t1` default to the schedule's ``t_min``, ``t_max``; the prior at ``t₁`` to
    ``N(0, σ(t₁)² I)`` (the VP/VE/EDM limit; pass the exact one where known).
    """
    if not isinstance(denoiser, Denoiser):
        raise TypeError(f"log_likelihood: `denoiser` must be a Denoiser, got {type(denoiser).__name__}.")
    schedule: AbstractSchedule = denoiser.schedule
    t0 = schedule.t_min if t0 is None else t0
    t1 = schedule.t_max if t1 is None else t1
    if prior_log_prob is None:
        std = schedule.sigma(t1)
        prior_log_prob = lambda y: _gaussian_log_prob(y, std)
    value, _ = ode_log_likelihood(
        denoiser.probability_flow, x, t0, t1, prior_log_prob, key=key, trace=trace, probes=probes, solver=solver, rtol=rtol, atol=atol
    )
    return value
