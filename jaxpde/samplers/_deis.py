r"""DEIS (Zhang & Chen 2023): the exponential integrator with polynomial extrapolation of ε in time.

In the noise-to-signal ratio $\tilde\sigma_t = \sigma_t/\alpha_t$ the probability-flow ODE with
a noise prediction is $d(x/\alpha)/d\tilde\sigma = \hat\varepsilon$ (its linear part is exact
in the factor $1/\alpha$), so a step from $s$ to $t$ is, exactly,

$$x_t = \frac{\alpha_t}{\alpha_s}x_s + \alpha_t\int_{s}^{t}\hat\varepsilon(x_\tau, \tau)\,
        \frac{d\tilde\sigma_\tau}{d\tau}\,d\tau .$$

**tAB-DEIS** (the paper's time-Adams–Bashforth variant) replaces $\hat\varepsilon(\tau)$ by
the Lagrange polynomial **in time** $\tau$ through the last $p$ evaluations at
$t_0 = s, t_1, \dots, t_{p-1}$ (earlier grid points) and integrates the rest exactly:

$$x_t = \frac{\alpha_t}{\alpha_s}x_s + \alpha_t\sum_{j<p} C_j\,\hat\varepsilon_j, \qquad
  C_j = \int_{\tilde\sigma_s}^{\tilde\sigma_t} \ell_j\big(\tau(\tilde\sigma)\big)\,d\tilde\sigma,
  \quad \ell_j(\tau) = \prod_{m\neq j}\frac{\tau - t_m}{t_j - t_m} .$$

The coefficients $C_j$ have no closed form for a general schedule; they are computed by
Gauss–Legendre quadrature in $\tilde\sigma$ (12 nodes per step), in which the integrand is
smooth: $\tau(\tilde\sigma)$ comes from the schedule's closed-form inverse log-SNR, and near the
data $\tau \approx \tilde\sigma^2/\beta_{\min}$ is a polynomial, where in $\tau$ the density
$d\tilde\sigma/d\tau \sim \tau^{-1/2}$ would not be. With $p = 1$ this is DDIM exactly.

**Order.** $p$ evaluations make the local error $O(h^{p+1})$ and the method order $p$, one
evaluation per step. The first steps have a shorter history and run at the order it allows
(1, then 2); for $p = 3$ a first-order first step would cap the global order at 2, so that
step is a second-order predictor–corrector instead — DDIM to $t$, one more evaluation there,
then the linear-in-time polynomial through both ends (the trapezoidal rule of this integral):
``num_steps + 1`` evaluations in all, as DPM-Solver++(3M).

`final_order` lowers the order of the last step, as DPM-Solver's ``lower_order_final``.

Reference: Q. Zhang and Y. Chen, "Fast sampling of diffusion models with exponential
integrator", ICLR 2023.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._dpm_solver import check_final_order, is_final_step
from ._solvers import AbstractDiffusionSolver, time_of_half_log_snr

__all__ = ["DEIS"]

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(12)


def deis_coefficients(term, t0, t1, times, dtype):
    r"""$C_j = \int_{\tilde\sigma_{t_0}}^{\tilde\sigma_{t_1}} \ell_j(\tau(\tilde\sigma))\,d\tilde\sigma$
    for the Lagrange basis on `times` (``times[0]`` the step's start), by Gauss–Legendre in $\tilde\sigma$."""
    alpha0, sigma0 = term._alpha_sigma(t0, dtype)
    alpha1, sigma1 = term._alpha_sigma(t1, dtype)
    u0, u1 = sigma0 / alpha0, sigma1 / alpha1
    nodes = jnp.asarray(_NODES, dtype)
    u = 0.5 * (u0 + u1) + 0.5 * (u1 - u0) * nodes
    weights = 0.5 * (u1 - u0) * jnp.asarray(_WEIGHTS, dtype)
    if len(times) == 1:
        return [u1 - u0]
    # τ at the nodes: σ̃ = e^{-η}, so η = -log σ̃.
    tau = time_of_half_log_snr(term, -jnp.log(u), dtype)
    coefficients = []
    for j, tj in enumerate(times):
        basis = jnp.ones_like(tau)
        for m, tm in enumerate(times):
            if m != j:
                basis = basis * (tau - tm) / (tj - tm)
        coefficients.append(jnp.sum(weights * basis))
    return coefficients


class DEIS(AbstractDiffusionSolver):
    r"""tAB-DEIS of order $p$: $\hat\varepsilon$ extrapolated by the polynomial in $t$ through its last $p$ values.

    **Arguments:**

    - `multistep_order`: $p \in \{1, 2, 3\}$ (default 3); $p = 1$ is DDIM.
    - `final_order`: the order of the solve's last step (``None``: $p$).
    """

    multistep_order: int = eqx.field(default=3, static=True)
    final_order: int | None = eqx.field(default=None, static=True, kw_only=True)
    stages = 1

    def __check_init__(self):
        if isinstance(self.multistep_order, bool) or self.multistep_order not in (1, 2, 3):
            raise ValueError(f"DEIS: `multistep_order` must be 1, 2 or 3, got {self.multistep_order!r}.")
        check_final_order("DEIS", self.final_order, self.multistep_order)

    def order(self, terms):
        return self.multistep_order

    @property
    def min_steps(self) -> int:
        # The first full order-p step is step p.
        return self.multistep_order

    def evaluations(self, num_steps):
        return int(num_steps) + (1 if self.multistep_order == 3 else 0)

    def init_state(self, term, t0, t1, y0):
        n = max(self.multistep_order - 1, 1)
        return dict(
            t=jnp.zeros((n,), y0.dtype),  # times of the last p - 1 evaluations, newest first
            eps=jnp.zeros((n, *y0.shape), y0.dtype),
            count=jnp.zeros((), jnp.int32),
        )

    def diffusion_step(self, term, t0, t1, y0, state):
        dtype = y0.dtype
        p = self.multistep_order
        t0, t1 = jnp.asarray(t0, dtype), jnp.asarray(t1, dtype)
        alpha0, sigma0 = term._alpha_sigma(t0, dtype)
        alpha1, sigma1 = term._alpha_sigma(t1, dtype)
        eps0 = term.noise_prediction(t0, y0)
        base = (alpha1 / alpha0) * y0

        def combine(times, values):
            c = deis_coefficients(term, t0, t1, times, dtype)
            return base + alpha1 * sum(cj * vj for cj, vj in zip(c, values))

        def with_points(k):
            def apply():
                return combine([t0] + [state["t"][j] for j in range(k - 1)], [eps0] + [state["eps"][j] for j in range(k - 1)])

            return apply

        def later():
            points = jnp.minimum(state["count"] + 1, p)
            if self.final_order is not None:
                points = jnp.where(is_final_step("DEIS", term, t1), jnp.minimum(points, self.final_order), points)
            # Arithmetic only: a batched choice (vmapped grids) evaluates no model.
            return jax.lax.switch(points - 1, [with_points(k) for k in range(1, p + 1)])

        if p == 3:

            def first():
                # Predictor–corrector start: DDIM to t1, ε there, the linear-in-time interpolant.
                predicted = combine([t0], [eps0])
                eps1 = term.noise_prediction(t1, predicted)
                return combine([t0, t1], [eps0, eps1])

            # Behind the unbatched step count, so the extra evaluation runs once.
            y1 = jax.lax.cond(state["count"] == 0, first, later)
        else:
            y1 = later()
        new_state = dict(
            t=jnp.concatenate([t0[None], state["t"][:-1]]),
            eps=jnp.concatenate([eps0[None], state["eps"][:-1]]),
            count=state["count"] + 1,
        )
        return y1, new_state
