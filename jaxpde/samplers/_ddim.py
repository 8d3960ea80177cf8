r"""DDIM (Song, Meng & Ermon 2021), deterministic: the first-order sampler of every diffusion model.

From $x_s$ at time $s$, the model gives $\hat\varepsilon = \hat\varepsilon(x_s, s)$ and
$\hat x_0 = (x_s - \sigma_s\hat\varepsilon)/\alpha_s$, and the step re-noises the prediction to
the next time with the same noise,

$$x_t = \alpha_t\,\hat x_0 + \sigma_t\,\hat\varepsilon .$$

This is the exponential (Euler) integrator of the probability-flow ODE in the half log-SNR
$\eta = \log(\alpha/\sigma)$ — DPM-Solver-1 (Lu et al. 2022) — written in the variables of the
DDIM paper: first order, one model evaluation per step, exact when the data are a single point.

Reference: J. Song, C. Meng and S. Ermon, "Denoising diffusion implicit models", ICLR 2021.
"""

from ._solvers import AbstractDiffusionSolver

__all__ = ["DDIM"]


class DDIM(AbstractDiffusionSolver):
    r"""Deterministic DDIM ($\eta_{\mathrm{DDIM}} = 0$): $x_t = \alpha_t\hat x_0 + \sigma_t\hat\varepsilon$."""

    stages = 1

    def order(self, terms):
        return 1

    def diffusion_step(self, term, t0, t1, y0, state):
        dtype = y0.dtype
        alpha0, sigma0 = term._alpha_sigma(t0, dtype)
        alpha1, sigma1 = term._alpha_sigma(t1, dtype)
        eps = term.noise_prediction(t0, y0)
        x0 = (y0 - sigma0 * eps) / alpha0
        return alpha1 * x0 + sigma1 * eps, state
