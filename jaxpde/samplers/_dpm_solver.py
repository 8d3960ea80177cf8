r"""DPM-Solver (Lu et al. 2022) and DPM-Solver++ (Lu et al. 2022b): exponential integrators in log-SNR.

In the half log-SNR $\eta = \log(\alpha_t/\sigma_t)$ the probability-flow ODE has an exact
linear part, and a step from $s$ to $t$ ($h = \eta_t - \eta_s > 0$ when denoising) is

$$x_t = \frac{\alpha_t}{\alpha_s}x_s - \alpha_t\int_{\eta_s}^{\eta_t} e^{-\eta}\hat\varepsilon\,d\eta
  \quad\text{(noise prediction)}, \qquad
  x_t = \frac{\sigma_t}{\sigma_s}x_s + \sigma_t\int_{\eta_s}^{\eta_t} e^{\eta}\hat x_0\,d\eta
  \quad\text{(data prediction)} .$$

Only the model output is approximated, by its Taylor expansion in $\eta$; the integrals of
$e^{\pm\eta}$ against powers of $\eta$ are the $\varphi$-functions, taken exactly.

**DPM-Solver-k** (noise prediction, singlestep, $k$ model evaluations per step, order $k$):
intermediate points at $\eta_s + r_i h$ estimate the derivatives of $\hat\varepsilon$
(Algorithms 1–3 of the paper, $r = \tfrac12$ for $k = 2$, $r = (\tfrac13, \tfrac23)$ for $k = 3$).

**DPM-Solver++ 2M / 3M** (data prediction, multistep, one evaluation per step): the
derivatives of $\hat x_0$ come from the previous steps' predictions, kept in the solver state.
With $m_0, m_1, m_2$ the predictions at $\eta_s, \eta_s - h_0, \eta_s - h_0 - h_1$:

- 2M (Algorithm 2 of DPM-Solver++): $x_t = \frac{\sigma_t}{\sigma_s}x_s + \alpha_t(1 - e^{-h})
  \big[(1 + \tfrac{1}{2r})m_0 - \tfrac{1}{2r}m_1\big]$, $r = h_0/h$;
- 3M: the quadratic through the three predictions, $\hat x_0(\eta_s + \tau) \approx m_0 + a\tau + b\tau^2$
  (Newton divided differences on the uneven $\eta$ grid), integrated exactly:
  $x_t = \frac{\sigma_t}{\sigma_s}x_s + \alpha_t\big[h\varphi_1(-h)m_0 + h^2\varphi_2(-h)a
  + 2h^3\varphi_3(-h)b\big]$.

The first steps have a shorter history and run at the order it allows (order 1, then 2).
That costs 2M nothing (one first-order step has local error $O(h^2)$, the global order), but
would cap 3M at order 2, so 3M's first step is a second-order singlestep (midpoint in
$\eta$, DPM-Solver++(2S)) step, one extra model evaluation; its second step is 2M.

References:

- C. Lu, Y. Zhou, F. Bao, J. Chen, C. Li and J. Zhu, "DPM-Solver: a fast ODE solver for
  diffusion probabilistic model sampling in around 10 steps", NeurIPS 2022.
- C. Lu, Y. Zhou, F. Bao, J. Chen, C. Li and J. Zhu, "DPM-Solver++: fast solver for guided
  sampling of diffusion probabilistic models", arXiv:2211.01095 (2022).
"""

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ._solvers import AbstractDiffusionSolver, half_log_snr, phi, time_of_half_log_snr

__all__ = ["DPMSolver1", "DPMSolver2", "DPMSolver3", "DPMSolverPP2M", "DPMSolverPP3M"]


def _eta_alpha_sigma(term, t, dtype):
    alpha, sigma = term._alpha_sigma(t, dtype)
    return half_log_snr(term, t, dtype), alpha, sigma


def _noise_euler(term, x, eps, alpha_s, alpha_t, sigma_t, h):
    r"""$\frac{\alpha_t}{\alpha_s}x - \sigma_t(e^h - 1)\hat\varepsilon$ (the DPM-Solver-1 step)."""
    return (alpha_t / alpha_s) * x - sigma_t * jnp.expm1(h) * eps


class DPMSolver1(AbstractDiffusionSolver):
    r"""DPM-Solver-1: $x_t = \frac{\alpha_t}{\alpha_s}x_s - \sigma_t(e^h - 1)\hat\varepsilon(x_s, s)$ (= DDIM)."""

    stages = 1

    def order(self, terms):
        return 1

    def diffusion_step(self, term, t0, t1, y0, state):
        dtype = y0.dtype
        eta0, alpha0, _ = _eta_alpha_sigma(term, t0, dtype)
        eta1, alpha1, sigma1 = _eta_alpha_sigma(term, t1, dtype)
        eps0 = term.noise_prediction(t0, y0)
        return _noise_euler(term, y0, eps0, alpha0, alpha1, sigma1, eta1 - eta0), state


class DPMSolver2(AbstractDiffusionSolver):
    r"""DPM-Solver-2 (singlestep, $r_1 = \tfrac12$): two model evaluations per step, second order.

    $u = \frac{\alpha_{s_1}}{\alpha_s}x_s - \sigma_{s_1}(e^{r_1h}-1)\hat\varepsilon_s$,
    $x_t = \frac{\alpha_t}{\alpha_s}x_s - \sigma_t(e^h-1)\hat\varepsilon_s
    - \frac{\sigma_t}{2r_1}(e^h-1)\big(\hat\varepsilon(u, s_1) - \hat\varepsilon_s\big)$,
    with $\eta_{s_1} = \eta_s + r_1 h$.
    """

    stages = 2
    r1: float = 0.5

    def order(self, terms):
        return 2

    def diffusion_step(self, term, t0, t1, y0, state):
        h, sigma1, eps0, y1, ((s1, _, u),) = _singlestep_start(term, t0, t1, y0, (self.r1,))
        eps1 = term.noise_prediction(s1, u)
        return y1 - (sigma1 / (2 * self.r1)) * jnp.expm1(h) * (eps1 - eps0), state


class DPMSolver3(AbstractDiffusionSolver):
    r"""DPM-Solver-3 (singlestep, $r_1 = \tfrac13$, $r_2 = \tfrac23$): three evaluations per step, third order.

    $$\begin{aligned}
    u_1 &= \tfrac{\alpha_{s_1}}{\alpha_s}x_s - \sigma_{s_1}(e^{r_1h}-1)\hat\varepsilon_s, &
    D_1 &= \hat\varepsilon(u_1, s_1) - \hat\varepsilon_s, \\
    u_2 &= \tfrac{\alpha_{s_2}}{\alpha_s}x_s - \sigma_{s_2}(e^{r_2h}-1)\hat\varepsilon_s
          - \tfrac{\sigma_{s_2} r_2}{r_1}\Big(\tfrac{e^{r_2h}-1}{r_2h} - 1\Big)D_1, &
    D_2 &= \hat\varepsilon(u_2, s_2) - \hat\varepsilon_s, \\
    x_t &= \tfrac{\alpha_t}{\alpha_s}x_s - \sigma_t(e^h-1)\hat\varepsilon_s
          - \tfrac{\sigma_t}{r_2}\Big(\tfrac{e^h-1}{h} - 1\Big)D_2 .
    \end{aligned}$$

    ($\frac{e^z - 1}{z} - 1 = z\,\varphi_2(z)$, evaluated without cancellation.)
    """

    stages = 3
    r1: float = 1.0 / 3.0
    r2: float = 2.0 / 3.0

    def order(self, terms):
        return 3

    def diffusion_step(self, term, t0, t1, y0, state):
        h, sigma1, eps0, y1, ((s1, _, u1), (s2, sigma_s2, u2)) = _singlestep_start(term, t0, t1, y0, (self.r1, self.r2))
        d1 = term.noise_prediction(s1, u1) - eps0
        u2 = u2 - (sigma_s2 * self.r2 / self.r1) * (self.r2 * h * phi(2, self.r2 * h)) * d1
        d2 = term.noise_prediction(s2, u2) - eps0
        return y1 - (sigma1 / self.r2) * (h * phi(2, h)) * d2, state


def _singlestep_start(term, t0, t1, y0, fractions):
    """What DPM-Solver-k's step shares: h, σ_t, ε̂_s, the DPM-Solver-1 step to t and to each
    intermediate point η_s + r h (its time, σ and first-order state)."""
    dtype = y0.dtype
    eta0, alpha0, _ = _eta_alpha_sigma(term, t0, dtype)
    eta1, alpha1, sigma1 = _eta_alpha_sigma(term, t1, dtype)
    h = eta1 - eta0
    eps0 = term.noise_prediction(t0, y0)
    stages = []
    for r in fractions:
        s = time_of_half_log_snr(term, eta0 + r * h, dtype)
        alpha_s, sigma_s = term._alpha_sigma(s, dtype)
        stages.append((s, sigma_s, _noise_euler(term, y0, eps0, alpha0, alpha_s, sigma_s, r * h)))
    return h, sigma1, eps0, _noise_euler(term, y0, eps0, alpha0, alpha1, sigma1, h), tuple(stages)


# ---- data prediction, multistep ----------------------------------------------------------------


def _data_step(x, m0, sigma_s, alpha_t, sigma_t, h, a=None, b=None):
    r"""$\frac{\sigma_t}{\sigma_s}x + \alpha_t[h\varphi_1(-h)m_0 + h^2\varphi_2(-h)a + 2h^3\varphi_3(-h)b]$."""
    y = (sigma_t / sigma_s) * x + alpha_t * (h * phi(1, -h)) * m0
    if a is not None:
        y = y + alpha_t * (h**2 * phi(2, -h)) * a
    if b is not None:
        y = y + alpha_t * (2 * h**3 * phi(3, -h)) * b
    return y


def _history_init(order, y0):
    """An empty history of ``order - 1`` previous (η, x̂0), and how many are filled."""
    n = order - 1
    return dict(
        eta=jnp.zeros((n,), y0.dtype),
        pred=jnp.zeros((n, *y0.shape), y0.dtype),
        count=jnp.zeros((), jnp.int32),
    )


def _history_push(state, eta, pred):
    """The history with ``(eta, pred)`` as its newest entry."""
    return dict(
        eta=jnp.concatenate([eta[None], state["eta"][:-1]]),
        pred=jnp.concatenate([pred[None], state["pred"][:-1]]),
        count=state["count"] + 1,
    )


def is_final_step(owner: str, term, t1):
    """Whether a step ending at `t1` is the solve's last: it ends at the term's `t_end` (to rounding).

    diffrax tells a solver the end of its first step, never of the solve, so the end time comes
    with the term (`sample` and `solve` set it from the grid)."""
    if term.t_end is None:
        raise ValueError(
            f"{owner}: `final_order` needs the solve's end time: build the DiffusionTerm with `t_end`, "
            "or sample through `sample` / `solve`, which set it from the grid."
        )
    t_end = jnp.asarray(term.t_end, jnp.result_type(t1))
    return jnp.abs(t1 - t_end) <= 1e-9 * jnp.abs(t_end)


def check_final_order(owner: str, final_order, order: int) -> None:
    if final_order is not None and (isinstance(final_order, bool) or final_order not in range(1, order + 1)):
        raise ValueError(f"{owner}: `final_order` must be None or an integer in [1, {order}], got {final_order!r}.")


class _AbstractDataMultistep(AbstractDiffusionSolver):
    r"""A multistep data-prediction step: one evaluation at the start point, then `update` with the history.

    `final_order` (``None``: the full order) is the order of the last step of the solve —
    DPM-Solver's ``lower_order_final``: at few steps the last step, from a small noise level
    to ``t_end``, is long in log-SNR (on the time-quadratic 10-step grid
    $h \approx 1.8$ against $1.0$ before it and $0.5$ mid-grid), and there the extrapolation of
    $\hat x_0$ from the previous, far-away points costs more than it gains. A lower order on
    one step costs at most one power of $h$ of that step's local error, so it changes the
    error constant at small NFE, not the asymptotic order.
    """

    history_length: ClassVar[int]
    final_order: int | None = eqx.field(default=None, static=True, kw_only=True)

    def __check_init__(self):
        check_final_order(type(self).__name__, self.final_order, self.history_length)

    def init_state(self, term, t0, t1, y0):
        return _history_init(self.history_length, y0)

    @abc.abstractmethod
    def update(self, term, y0, m0, eta0, sigma0, alpha1, sigma1, h, state, max_order):
        """The new state from ``y0`` with its data prediction ``m0``, the history in `state`, at
        most order `max_order` (a traced integer)."""

    def diffusion_step(self, term, t0, t1, y0, state):
        dtype = y0.dtype
        eta0, _, sigma0 = _eta_alpha_sigma(term, t0, dtype)
        eta1, alpha1, sigma1 = _eta_alpha_sigma(term, t1, dtype)
        h = eta1 - eta0
        m0 = term.data_prediction(t0, y0)
        full = self.history_length
        final = full if self.final_order is None else self.final_order
        max_order = full if self.final_order is None else jnp.where(is_final_step(type(self).__name__, term, t1), final, full)
        y1 = self.update(term, y0, m0, eta0, sigma0, alpha1, sigma1, h, state, max_order)
        return y1, _history_push(state, eta0, m0)


class DPMSolverPP2M(_AbstractDataMultistep):
    r"""DPM-Solver++(2M): multistep second order in data prediction, one evaluation per step.

    $x_t = \frac{\sigma_t}{\sigma_s}x_s + \alpha_t(1 - e^{-h})\big[(1 + \tfrac{1}{2r})m_0
    - \tfrac{1}{2r}m_1\big]$, $r = h_0/h$; the first step is first order (DDIM), and so is
    the last with ``final_order=1``.
    """

    stages = 1
    min_steps = 2  # the first full second-order step is the second
    history_length = 2

    def order(self, terms):
        return 2

    def update(self, term, y0, m0, eta0, sigma0, alpha1, sigma1, h, state, max_order):
        dtype = y0.dtype
        first_order = _data_step(y0, m0, sigma0, alpha1, sigma1, h)
        h0 = eta0 - state["eta"][0]
        second = (state["count"] > 0) & (max_order >= 2)
        r = jnp.where(second, h0 / h, 1.0)
        correction = alpha1 * (-jnp.expm1(-h)) * (m0 - state["pred"][0]) / (2 * r)
        return first_order + jnp.where(second, 1.0, 0.0).astype(dtype) * correction


class DPMSolverPP3M(_AbstractDataMultistep):
    r"""DPM-Solver++(3M): multistep third order in data prediction.

    The quadratic through the last three data predictions, integrated exactly against
    $e^{\eta}$. The first step is DPM-Solver++(2S) (two evaluations), the second 2M with the
    exact $\varphi_2$ weight, every later one 3M: ``num_steps + 1`` evaluations in all. With
    `final_order` 1 or 2 the last step is DDIM or the 2M step.
    """

    stages = 1
    min_steps = 3  # the first full third-order step is the third

    def order(self, terms):
        return 3

    def evaluations(self, num_steps):
        return int(num_steps) + 1

    history_length = 3

    def update(self, term, y0, m0, eta0, sigma0, alpha1, sigma1, h, state, max_order):
        dtype = y0.dtype
        eta_hist, pred_hist = state["eta"], state["pred"]

        def euler():
            return _data_step(y0, m0, sigma0, alpha1, sigma1, h)

        def first():
            # DPM-Solver++(2S): a data-prediction Euler half step to η_s + h/2, then the slope of
            # x̂0 between the two points (a midpoint rule, local error O(h^3)).
            s_mid = time_of_half_log_snr(term, eta0 + 0.5 * h, dtype)
            alpha_mid, sigma_mid = term._alpha_sigma(s_mid, dtype)
            u = _data_step(y0, m0, sigma0, alpha_mid, sigma_mid, 0.5 * h)
            m_mid = term.data_prediction(s_mid, u)
            return _data_step(y0, m0, sigma0, alpha1, sigma1, h, a=(m_mid - m0) / (0.5 * h))

        def second():
            a = (m0 - pred_hist[0]) / (eta0 - eta_hist[0])
            return _data_step(y0, m0, sigma0, alpha1, sigma1, h, a=a)

        def third():
            h0 = eta0 - eta_hist[0]
            h1 = eta_hist[0] - eta_hist[1]
            f01 = (m0 - pred_hist[0]) / h0
            f12 = (pred_hist[0] - pred_hist[1]) / h1
            b = (f01 - f12) / (h0 + h1)
            # Newton form m0 + f01 τ + b τ(τ + h0): the slope at τ = 0 is f01 + b h0.
            return _data_step(y0, m0, sigma0, alpha1, sigma1, h, a=f01 + b * h0, b=b)

        def later():
            # The order the history allows, lowered on the final step to `final_order`:
            # arithmetic only, so a batched `max_order` (vmapped grids) evaluates no model.
            order = jnp.minimum(state["count"] + 1, max_order)
            return jax.lax.switch(order - 1, (euler, second, third))

        # The first step is always 2S (its order caps the global order); its extra evaluation
        # sits behind the unbatched step count, so it runs once.
        return jax.lax.cond(state["count"] == 0, first, later)
