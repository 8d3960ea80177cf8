r"""UniPC (Zhao et al. 2023): a unified predictor–corrector, multistep, in data prediction.

A step from $s$ to $t$ ($h = \eta_t - \eta_s$, $\eta = \log(\alpha/\sigma)$) integrates the
data prediction exactly against $e^{\eta}$ after replacing its increments by a combination of
scaled differences $D_k = (m_k - m_0)/r_k$ of predictions $m_k$ at $\eta_s + r_k h$:

$$x_t = \frac{\sigma_t}{\sigma_s}x_s + \alpha_t h\varphi_1(-h)\,m_0
      + \alpha_t B(h)\sum_k \rho_k D_k ,$$

where the weights match the Taylor moments of the exact integral,
$\sum_k \rho_k r_k^{n-1} = n!\,h\,\varphi_{n+1}(-h)/B(h)$ for $n = 1, \dots, K$ — except for
one difference ($K = 1$), where UniPC takes $\rho = \tfrac12$, its limit as $h \to 0$, so that
$B$ matters: ``"bh1"`` is $B(h) = h$, ``"bh2"`` is $B(h) = 1 - e^{-h}$.

- **UniP-p** (predictor, order $p$) uses the $p - 1$ previous predictions ($r_k < 0$).
- **UniC-p** (corrector) re-does the step just taken once the model has been evaluated at its
  end point, adding that evaluation ($r = 1$) to the differences: order $p + 1$. The
  evaluation is the one the next predictor needs anyway, so the corrector costs no NFE; the
  final step has no corrector (its evaluation would be wasted), as in UniPC.

So the solver evaluates the model once per step, at the start point as the previous step left
it (the predictor's value), corrects that point, and predicts the next: the diffrax state at a
step's end is the predictor's value, and the state at the end of the solve is exactly UniPC's
output. The first step is UniP-1 (DDIM) and its corrector UniC-1: second order from the start.

Reference: W. Zhao, L. Bai, Y. Rao, J. Zhou and J. Lu, "UniPC: a unified predictor-corrector
framework for fast sampling of diffusion models", NeurIPS 2023.
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp

from ._dpm_solver import _eta_alpha_sigma, check_final_order, is_final_step
from ._solvers import AbstractDiffusionSolver, phi

__all__ = ["UniPC"]


def _weights(r, h, b_h):
    """ρ solving Σ_k ρ_k r_k^(n-1) = n! h φ_{n+1}(-h) / B(h), n = 1..K (ρ = 1/2 for K = 1)."""
    k = r.shape[0]
    if k == 1:
        return jnp.full((1,), 0.5, h.dtype)
    factorials = [1.0, 1.0, 2.0, 6.0, 24.0]
    rhs = jnp.stack([factorials[n] * h * phi(n + 1, -h) / b_h for n in range(1, k + 1)])
    vandermonde = jnp.stack([r ** (n - 1) for n in range(1, k + 1)])
    return jnp.linalg.solve(vandermonde, rhs)


class UniPC(AbstractDiffusionSolver):
    r"""UniPC-p: UniP-p predictor with the UniC corrector (order $p + 1$), one evaluation per step.

    **Arguments:**

    - `predictor_order`: $p \in \{1, 2, 3\}$ (default 2, so third order overall).
    - `variant`: ``"bh1"`` ($B(h) = h$) or ``"bh2"`` ($B(h) = 1 - e^{-h}$, default).
    - `final_order`: the predictor's order on the last step (``None``: `predictor_order`), as
      UniPC's and DPM-Solver's ``lower_order_final``: the last step, down to ``t_end``, is the
      longest in log-SNR on the usual grids, and extrapolating from far-away predictions there
      costs more than it gains at few steps. One step at lower order changes the error
      constant, not the asymptotic order.
    """

    predictor_order: int = eqx.field(default=2, static=True)
    variant: Literal["bh1", "bh2"] = eqx.field(default="bh2", static=True)
    final_order: int | None = eqx.field(default=None, static=True, kw_only=True)
    stages = 1

    def __check_init__(self):
        if self.predictor_order not in (1, 2, 3):
            raise ValueError(f"UniPC: `predictor_order` must be 1, 2 or 3, got {self.predictor_order!r}.")
        if self.variant not in ("bh1", "bh2"):
            raise ValueError(f"UniPC: `variant` must be 'bh1' or 'bh2', got {self.variant!r}.")
        check_final_order("UniPC", self.final_order, self.predictor_order)

    def order(self, terms):
        return self.predictor_order + 1

    @property
    def min_steps(self) -> int:
        # UniP-p first runs at order p on step p.
        return self.predictor_order

    def _b(self, h):
        return h if self.variant == "bh1" else -jnp.expm1(-h)

    def init_state(self, term, t0, t1, y0):
        p = self.predictor_order
        return dict(
            # (η, x̂0) of the last p start points, newest first, and how many are filled.
            eta=jnp.zeros((p,), y0.dtype),
            pred=jnp.zeros((p, *y0.shape), y0.dtype),
            count=jnp.zeros((), jnp.int32),
            # The previous step's (corrected) start point and its σ.
            x_prev=jnp.zeros_like(y0),
            sigma_prev=jnp.ones((), y0.dtype),
        )

    def _update(self, x, m0, eta0, sigma0, eta1, alpha1, sigma1, eta_hist, pred_hist, m_new=None):
        """Predictor from (x, m0) at η0 to η1 with the given older points, and the new point if correcting."""
        h = eta1 - eta0
        y = (sigma1 / sigma0) * x + alpha1 * (h * phi(1, -h)) * m0
        r = [(e - eta0) / h for e in eta_hist]
        d = [(m - m0) / rk for m, rk in zip(pred_hist, r)]
        if m_new is not None:
            r.append(jnp.ones((), h.dtype))
            d.append(m_new - m0)
        if not r:
            return y
        rho = _weights(jnp.stack(r), h, self._b(h))
        return y + alpha1 * self._b(h) * sum(rk * dk for rk, dk in zip(rho, d))

    def diffusion_step(self, term, t0, t1, y0, state):
        dtype = y0.dtype
        p = self.predictor_order
        eta0, alpha0, sigma0 = _eta_alpha_sigma(term, t0, dtype)
        eta1, alpha1, sigma1 = _eta_alpha_sigma(term, t1, dtype)
        m0 = term.data_prediction(t0, y0)
        eta_hist, pred_hist, count = state["eta"], state["pred"], state["count"]

        # Corrector of the previous step (from η_hist[0] to η0): the differences its predictor
        # used (k older points) and the new evaluation m0.
        def corrector(k):
            def apply():
                return self._update(
                    state["x_prev"], pred_hist[0], eta_hist[0], state["sigma_prev"], eta0, alpha0, sigma0,
                    [eta_hist[j] for j in range(1, k + 1)], [pred_hist[j] for j in range(1, k + 1)], m_new=m0,
                )

            return apply

        # count = 0: nothing to correct; count = c >= 1: the previous predictor used min(p-1, c-1) older points.
        branches = [lambda: y0] + [corrector(min(p - 1, c - 1)) for c in range(1, p + 1)]
        x0 = jax.lax.switch(jnp.minimum(count, p), branches)

        def predictor_k(k):
            def apply():
                return self._update(
                    x0, m0, eta0, sigma0, eta1, alpha1, sigma1,
                    [eta_hist[j] for j in range(k)], [pred_hist[j] for j in range(k)],
                )

            return apply

        k = jnp.minimum(count, p - 1)
        if self.final_order is not None:
            k = jnp.where(is_final_step("UniPC", term, t1), jnp.minimum(k, self.final_order - 1), k)
        y1 = jax.lax.switch(k, [predictor_k(j) for j in range(p)])
        new_state = dict(
            eta=jnp.concatenate([eta0[None], eta_hist[:-1]]),
            pred=jnp.concatenate([m0[None], pred_hist[:-1]]),
            count=count + 1,
            x_prev=x0,
            sigma_prev=sigma0,
        )
        return y1, new_state
