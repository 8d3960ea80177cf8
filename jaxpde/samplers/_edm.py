r"""EDM's deterministic sampler (Karras et al. 2022): Heun's method in the noise level.

Write the state as $x = \alpha_t\hat x$ and the noise level as $\tilde\sigma = \sigma_t/\alpha_t
= e^{-\eta_t}$; then $\hat x = x_0 + \tilde\sigma\varepsilon$ and the probability-flow ODE of
*any* schedule becomes the one of the variance-exploding process,

$$\frac{d\hat x}{d\tilde\sigma} = \frac{\hat x - D(\hat x; \tilde\sigma)}{\tilde\sigma},$$

with $D$ the data prediction. EDM integrates it with Heun's second-order method (Algorithm 1
of the paper, without the stochastic churn), two model evaluations per step:

$$d_0 = \frac{\hat x_0 - D(\hat x_0; \tilde\sigma_0)}{\tilde\sigma_0}, \quad
  \hat x' = \hat x_0 + (\tilde\sigma_1 - \tilde\sigma_0)d_0, \quad
  \hat x_1 = \hat x_0 + (\tilde\sigma_1 - \tilde\sigma_0)\,\frac{d_0 + d_1}{2},$$

$d_1$ the slope at $(\hat x', \tilde\sigma_1)$. Its companion grid is Karras's
$\tilde\sigma_i = (\tilde\sigma_{\max}^{1/\rho} + \tfrac{i}{N}(\tilde\sigma_{\min}^{1/\rho}
- \tilde\sigma_{\max}^{1/\rho}))^\rho$, $\rho = 7$ (`jaxpde.samplers._grids.Karras`). The sampler
stops at $t_{\mathrm{end}} > 0$ (here $\tilde\sigma > 0$), so every step is a Heun step
(EDM's final Euler step to $\tilde\sigma = 0$ does not arise).

Reference: T. Karras, M. Aittala, T. Aila and S. Laine, "Elucidating the design space of
diffusion-based generative models", NeurIPS 2022.
"""

from ._solvers import AbstractDiffusionSolver

__all__ = ["EDMHeun"]


class EDMHeun(AbstractDiffusionSolver):
    r"""Heun's method on $d\hat x/d\tilde\sigma = (\hat x - D)/\tilde\sigma$, $\hat x = x/\alpha_t$: 2 NFE per step."""

    stages = 2

    def order(self, terms):
        return 2

    def diffusion_step(self, term, t0, t1, y0, state):
        dtype = y0.dtype
        alpha0, sigma0 = term._alpha_sigma(t0, dtype)
        alpha1, sigma1 = term._alpha_sigma(t1, dtype)
        level0, level1 = sigma0 / alpha0, sigma1 / alpha1
        x0 = y0 / alpha0
        d0 = (x0 - term.data_prediction(t0, y0)) / level0
        x_euler = x0 + (level1 - level0) * d0
        d1 = (x_euler - term.data_prediction(t1, alpha1 * x_euler)) / level1
        return alpha1 * (x0 + (level1 - level0) * 0.5 * (d0 + d1)), state
