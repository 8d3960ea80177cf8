r"""A physics-informed operator loss: the PDE residual of a predicted trajectory, from the catalogue.

For a semi-linear PDE of `jaxpde.pdes`, ``∂_t u = 𝓛u + 𝓝(u)`` with ``𝓛`` diagonal in Fourier
space (``\hat L``), the exact solution obeys the variation-of-constants formula over one
interval ``Δ`` of the frames,

$$\hat u(t + Δ) = e^{\hat LΔ}\hat u(t) + \int_0^Δ e^{\hat L(Δ − s)}\hat{\mathcal N}(u(t + s))\,ds .$$

The residual of frames ``u_0, …, u_T`` (a prediction) is that identity with ``𝓝`` interpolated
linearly in time between the frames and the integral then taken exactly (the exponential
trapezoidal rule; Cox & Matthews 2002, §2),

$$\hat r_n = \frac{\hat u_{n+1} − e^{\hat LΔ}\hat u_n}{Δ}
  − \big(\varphi_1 − \varphi_2\big)(\hat LΔ)\,\hat{\mathcal N}(u_n) − \varphi_2(\hat LΔ)\,\hat{\mathcal N}(u_{n+1}),
  \qquad n = 0, …, T − 1,$$

space by spectral differentiation (the PDE's own ``linear_symbol`` and ``nonlinear``, dealiased
as the solver is), time through the exponential: the stiff linear part is integrated *exactly*,
so the residual of an exact solution is zero when ``𝓝`` is constant along it (the Taylor–Green
vortex and the forced laminar flow of `jaxpde.pdes.NavierStokes2D`, a heat solution) and
``O(Δ²)`` otherwise — at ``Δ`` large enough for an emulator's step, where a finite difference
``(u_{n+1} − u_{n−1})/2Δ`` of a stiff PDE would be dominated by its own error. The residual is
divided by ``Δ`` so that it is a rate, comparable across step sizes.

`physics_informed_loss` turns it into a training loss for an `Emulator` (Li et al.,
"Physics-Informed Neural Operator for Learning Partial Differential Equations", 2021, add
the PDE residual of the FNO's output to the data loss; here the output is the emulator's
rollout): ``data_weight ·`` the emulator's data loss ``+ residual_weight ·`` the mean squared
residual of the rollout started from the window's last frame. With ``data_weight = 0`` it
needs no solver data beyond the initial frames.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..numerics.etdrk import SemiLinearTerm, phi_functions
from ._emulator import _METRICS, Emulator

__all__ = ["semilinear_residual", "physics_informed_loss"]


def _term(pde) -> SemiLinearTerm:
    if isinstance(pde, SemiLinearTerm):
        return pde
    make = getattr(pde, "semilinear_term", None)
    if make is None:
        raise TypeError(
            f"semilinear_residual: `pde` must be a semi-linear jaxpde PDE (with `semilinear_term()`) or a "
            f"SemiLinearTerm, got {type(pde).__name__}."
        )
    return make()


def semilinear_residual(
    pde,
    frames: Float[ArrayLike, "time *state"],
    dt: float,
    *,
    t0: float = 0.0,
    args=None,
) -> Float[Array, "intervals *state"]:
    r"""The residual ``r_n`` of frames ``u_0, …, u_T`` spaced `dt` apart (see the module docstring).

    **Arguments:**

    - `pde`: a semi-linear `jaxpde.pdes` model (or its `SemiLinearTerm`).
    - `frames`: ``(T + 1, *state)``; each frame is reshaped to the PDE's state, so a channel
      axis of size one (``(T + 1, 1, s)`` for a scalar 1D PDE) is accepted.
    - `dt`: the time between frames ``Δ > 0`` (a Python number).
    - `t0`: the time of frame 0 (for a time-dependent ``𝓝``); `args` for the PDE.

    **Returns:** ``(T, *frame)``, one residual per interval, in the frames' layout.
    """
    if not (isinstance(dt, (int, float)) and not isinstance(dt, bool) and dt > 0 and np.isfinite(dt)):
        raise ValueError(f"semilinear_residual: `dt` must be a positive Python number, got {dt!r}.")
    term = _term(pde)
    frames = jnp.asarray(frames)
    state_shape = tuple(getattr(pde, "state_shape", frames.shape[1:]))
    if frames.ndim < 2 or frames.shape[0] < 2 or int(np.prod(frames.shape[1:])) != int(np.prod(state_shape)):
        raise ValueError(
            f"semilinear_residual: `frames` must be (time >= 2, *state) with the PDE's state {state_shape}, "
            f"got shape {frames.shape}."
        )
    layout = frames.shape[1:]
    u = frames.reshape(frames.shape[0], *state_shape)
    u_hat = jax.vmap(term.to_spectral)(u)
    symbol = term.symbol_for(u_hat)
    z = symbol * jnp.asarray(dt, jnp.finfo(u_hat.dtype).dtype)
    phi1, phi2 = phi_functions(z, 2)
    times = t0 + dt * jnp.arange(frames.shape[0], dtype=jnp.finfo(u_hat.dtype).dtype)
    nonlinear = jax.vmap(lambda t, v: term.nonlinear(t, v, args))(times, u_hat)
    r_hat = (u_hat[1:] - jnp.exp(z) * u_hat[:-1]) / dt - (phi1 - phi2) * nonlinear[:-1] - phi2 * nonlinear[1:]
    residual = jax.vmap(term.to_physical)(r_hat).astype(frames.dtype)
    return residual.reshape(residual.shape[0], *layout)


def physics_informed_loss(
    pde,
    emulator: Emulator,
    dt: float,
    *,
    unroll: int = 1,
    residual_weight: float = 1.0,
    data_weight: float = 1.0,
    metric: str = "mse",
) -> Callable:
    r"""``loss_fn(model, windows, key)``: the emulator's data loss plus the PDE residual of its rollout.

    `windows` is ``(B, h + unroll, c, *grid)`` as for `Emulator.loss`. The residual term is the
    mean square of `semilinear_residual` over the frames ``u_{h−1}, û_h, …, û_{h+unroll−1}``
    (the last true frame, then the rollout), spaced `dt` (the emulator's step). Both terms are
    logged (``"data"``, ``"residual"``). ``data_weight = 0`` trains from the residual alone.
    """
    if not isinstance(emulator, Emulator):
        raise TypeError(f"physics_informed_loss: `emulator` must be an Emulator, got {type(emulator).__name__}.")
    for name, value in (("residual_weight", residual_weight), ("data_weight", data_weight)):
        if not (isinstance(value, (int, float)) and value >= 0 and np.isfinite(value)):
            raise ValueError(f"physics_informed_loss: `{name}` must be a finite number >= 0, got {value!r}.")
    emulator.loss(unroll, metric)  # the same checks of `unroll` and `metric`
    measure, h = _METRICS[metric], emulator.history

    def loss_fn(model, windows, key):
        predicted, errors = emulator.batch_rollout(model, windows, unroll, measure, "physics_informed_loss")
        data = jnp.mean(errors)
        path = jnp.concatenate([windows[:, h - 1 : h], predicted], axis=1)
        residual = jnp.mean(jax.vmap(lambda p: semilinear_residual(pde, p, dt))(path) ** 2)
        return data_weight * data + residual_weight * residual, {"data": data, "residual": residual}

    return loss_fn
