r"""The Korteweg–de Vries equation in one dimension, periodic.

$$\partial_t u + \alpha\, u\,\partial_x u + \beta\,\partial_x^3 u = 0,$$

by default in the classical normalisation $\alpha = 6$, $\beta = 1$. (jaxpi's KdV benchmark is
$\alpha = 1$, $\beta = 0.022^2$.)

Linear part $\hat L = -\beta (ik)^3 = i\beta k^3$ — **purely imaginary** (dispersive): the ETDRK
weights must be complex, and taking their real part (as a dissipative-only implementation
would) gives the wrong phase speed. Nonlinear part
$\hat{\mathcal N} = -\tfrac{\alpha}{2} i k\, \widehat{u^2}$ with the 2/3 rule.

**Soliton.** For $c/\beta > 0$,

$$u(x, t) = \frac{3c}{\alpha}\,\mathrm{sech}^2\!\Big(\tfrac12\sqrt{c/\beta}\,(x - ct - x_0)\Big)$$

travels at speed $c$ without changing shape (for $\alpha = 6, \beta = 1$: amplitude $c/2$). On a
period $L$ it is an exact solution up to its tails, $\sim e^{-\sqrt{c/\beta}\,L/2}$; choose
$L\sqrt{c/\beta} \gtrsim 70$ for double-precision tests.

Reference: D. J. Korteweg and G. de Vries (1895); N. J. Zabusky and M. D. Kruskal (1965).
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

from .. import autodiff
from ..grids import Grid
from ._base import AbstractSemiLinearPDE, check_space_time, odd_wavenumbers, require_finite, require_grid
from ._nonlinear import Convection

__all__ = ["KdV"]


class KdV(AbstractSemiLinearPDE):
    r"""Korteweg–de Vries $u_t + \alpha u u_x + \beta u_{xxx} = 0$ on a 1D periodic grid.

    **Arguments:**

    - `grid`: a 1D periodic `Grid`.
    - `nonlinear_coefficient`: $\alpha$ (default 6).
    - `dispersion`: $\beta \ne 0$ (default 1).
    - `dealias_fraction`: fraction of the spectrum kept for the quadratic term (2/3 rule).
    """

    grid: Grid
    nonlinear_coefficient: float | Array
    dispersion: float | Array
    dealias_fraction: float = eqx.field(static=True)

    def __init__(
        self,
        grid: Grid,
        nonlinear_coefficient: float | Array = 6.0,
        dispersion: float | Array = 1.0,
        dealias_fraction: float = 2 / 3,
    ):
        self.grid = require_grid("KdV", grid, ndim=(1,))
        self.nonlinear_coefficient = require_finite("KdV", "nonlinear_coefficient", nonlinear_coefficient)
        require_finite("KdV", "dispersion", dispersion)
        try:
            zero = float(dispersion) == 0.0
        except Exception:  # traced: cannot be checked here
            zero = False
        if zero:
            raise ValueError("KdV: `dispersion` must be non-zero, got 0.0 (that is the inviscid Burgers equation).")
        self.dispersion = dispersion
        self.dealias_fraction = float(dealias_fraction)

    def linear_symbol(self):
        (k,) = odd_wavenumbers(self.grid)
        return 1j * self.dispersion * k**3

    def convection(self) -> Convection:
        r"""The nonlinear part $-\tfrac{\alpha}{2}\partial_x(u^2)$."""
        return Convection(self.grid, self.nonlinear_coefficient, self.dealias_fraction)

    def nonlinear(self, t, u_hat, args=None):
        return self.convection()(u_hat)

    def residual(self, u_fn, x, t=None, args=None):
        x, t = check_space_time("KdV.residual", x, t, 1)
        u, u_x, _, u_xxx = autodiff.derivatives(u_fn, 0, 3)(x, t)  # one nested forward pass
        return autodiff.time_derivative(u_fn)(x, t) + self.dispersion * u_xxx - self.convection().at(u, u_x)

    def exact_solution(self, x, t, *, speed: float = 1.0, position: float | None = None):
        r"""The soliton of speed $c$ = `speed`, centred at `position` (default: mid-domain) at $t = 0$.

        The travelling coordinate is wrapped into one period so the profile is periodic.
        """
        x, t = check_space_time("KdV.exact_solution", x, t, 1)
        try:
            bad = not float(speed) / float(self.dispersion) > 0
        except Exception:
            bad = False
        if bad:
            raise ValueError(
                f"KdV.exact_solution: a soliton needs speed / dispersion > 0, got speed={speed!r}, "
                f"dispersion={self.dispersion!r}."
            )
        length = self.grid.lengths[0]
        x0 = self.grid.origin[0] + length / 2 if position is None else position
        xi = jnp.mod(x[0] - speed * t - x0 + length / 2, length) - length / 2
        width = 0.5 * jnp.sqrt(speed / self.dispersion)
        return 3 * speed / self.nonlinear_coefficient / jnp.cosh(width * xi) ** 2
