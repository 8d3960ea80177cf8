r"""The reverse-time SDE of a diffusion process, as diffrax terms for diffrax's SDE solvers.

Anderson (1982) / Song et al. (2021): the forward process $dx = f(t)x\,dt + g(t)\,dW$ runs
backwards as

$$dx = \big[f(t)x - g^2(t)\nabla_x\log p_t(x)\big]dt + g(t)\,d\bar W
     = \Big[f(t)x + \frac{g^2(t)}{\sigma_t}\hat\varepsilon(x, t)\Big]dt + g(t)\,d\bar W,$$

integrated from $t_{\mathrm{start}}$ down to $t_{\mathrm{end}}$, $\bar W$ a Brownian motion in
reverse time. The terms here are written in the elapsed time $\tau = t_{\mathrm{start}} - t$,
which increases, $dx = -[f x + g^2\hat\varepsilon/\sigma]\,d\tau + g\,dW_\tau$, so diffrax solves
them forward, on a Brownian motion over $[0, t_{\mathrm{start}} - t_{\mathrm{end}}]$. (A reverse-time
`diffeqsolve` multiplies the whole control by $-1$, the space-time Lévy area included; but the
Lévy area of a time-reversed path equals that of the path, so `diffrax.SRA1` and `diffrax.ShARK`
then converge to the wrong process. Euler–Maruyama, which uses only the increment, does not
notice.) The noise is additive (it depends on $t$ only), so Euler–Maruyama
(`diffrax.Euler`) has strong order 1 and the stochastic Runge–Kutta methods for additive
noise, `diffrax.SRA1` and `diffrax.ShARK`, strong order 1.5 (Rößler 2010; Foster, dos Reis &
Strange 2023) — on a `diffrax.VirtualBrownianTree` with space-time Lévy area, which those
need, and which makes the sample path a deterministic function of the key at any step size.
Each drift evaluation is one model call; the diffusion $g(t)$ costs none.

References:

- B. D. O. Anderson, "Reverse-time diffusion equation models", Stoch. Proc. Appl. 12 (1982).
- A. Rößler, "Runge–Kutta methods for the strong approximation of solutions of stochastic
  differential equations", SIAM J. Numer. Anal. 48 (2010).
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx

from jaxtyping import Array

from ._solvers import DiffusionTerm

__all__ = ["reverse_sde", "brownian_motion"]


def _schedule_time(t_start, tau, schedule, dtype):
    # t_start - (t_start - t_end) can round a hair below t_end = t_min; the schedule would refuse it.
    return jnp.maximum(jnp.asarray(t_start - tau, dtype), jnp.asarray(schedule.t_min, dtype))


class _ReverseDrift(eqx.Module):
    term: DiffusionTerm
    t_start: Array

    def __call__(self, tau, y, args):
        schedule = self.term.schedule
        t = _schedule_time(self.t_start, tau, schedule, y.dtype)
        drift = schedule.drift(t).astype(y.dtype)
        g2 = schedule.diffusion_squared(t).astype(y.dtype)
        sigma = schedule.sigma(t).astype(y.dtype)
        return -(drift * y + (g2 / sigma) * self.term.noise_prediction(t, y))


class _Diffusion(eqx.Module):
    schedule: object
    t_start: Array

    def __call__(self, tau, y, args):
        t = _schedule_time(self.t_start, tau, self.schedule, y.dtype)
        g = jnp.sqrt(self.schedule.diffusion_squared(t)).astype(y.dtype)
        return lx.DiagonalLinearOperator(jnp.full(y.shape, g, y.dtype))


def brownian_motion(key, duration, shape, dtype=None, tol: float = 1e-6) -> diffrax.VirtualBrownianTree:
    """A `diffrax.VirtualBrownianTree` on ``[0, duration]`` with space-time Lévy area (SRA1/ShARK need it).

    `tol` is the time resolution of the tree; keep it well below the smallest step.
    """
    if not float(duration) > 0:
        raise ValueError(f"brownian_motion: `duration` must be positive, got {duration!r}.")
    dtype = jnp.result_type(float) if dtype is None else dtype
    return diffrax.VirtualBrownianTree(
        0.0, float(duration), tol=tol, shape=jax.ShapeDtypeStruct(tuple(shape), dtype), key=key,
        levy_area=diffrax.SpaceTimeLevyArea,
    )


def reverse_sde(term: DiffusionTerm, brownian: diffrax.AbstractBrownianPath, t_start: float) -> diffrax.MultiTerm:
    r"""The reverse SDE in elapsed time $\tau = t_{\mathrm{start}} - t$: drift $-(f x + g^2\hat\varepsilon/\sigma)$, diffusion $g\,I$.

    Give the result to `diffrax.diffeqsolve` with an SDE solver (`diffrax.Euler` is
    Euler–Maruyama; `diffrax.SRA1`, `diffrax.ShARK`) from ``0`` to ``t_start - t_end``, on
    the ``τ`` grid ``t_start - ts``; `brownian` covers that interval (`brownian_motion`).
    """
    if not isinstance(term, DiffusionTerm):
        raise TypeError(f"reverse_sde: `term` must be a DiffusionTerm, got {type(term).__name__}.")
    t_start = jnp.asarray(t_start)
    drift = diffrax.ODETerm(_ReverseDrift(term, t_start))
    return diffrax.MultiTerm(drift, diffrax.ControlTerm(_Diffusion(term.schedule, t_start), brownian))
