r"""The viscous Burgers equation in one dimension, periodic.

$$\partial_t u + \partial_x (u^2/2) = \nu\, \partial_{xx} u .$$

Linear part $\hat L = -\nu k^2$; nonlinear part $\hat{\mathcal N} = -\tfrac{i k}{2}\,
\widehat{u^2}$, evaluated pseudo-spectrally with the 2/3 rule (the state is truncated before
squaring and the product after).

**Exact solutions (Cole–Hopf).** If $\varphi > 0$ solves the heat equation
$\varphi_t = \nu\varphi_{xx}$ then $u = -2\nu\,\varphi_x/\varphi$ solves Burgers. With
$\varphi = 1 + b\, e^{-\nu q^2 t}\cos(q(x - x_0))$, $0 < b < 1$, $q = 2\pi m/L$,

$$u(x, t) = \frac{2\nu q\, b\, e^{-\nu q^2 t}\sin(q(x - x_0))}{1 + b\, e^{-\nu q^2 t}\cos(q(x - x_0))},$$

a smooth periodic closed form (no quadrature) whose steepness grows as $b \to 1$.

Reference: E. Hopf (1950), J. D. Cole (1951); the FNO-paper dataset uses $\nu = 0.1$ on $[0, 1]$.
"""

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .. import autodiff
from ..grids import Grid
from ._base import AbstractSemiLinearPDE, check_point, check_space_time, require_grid, require_positive
from ._nonlinear import Convection

__all__ = ["Burgers", "cole_hopf_solution"]


def cole_hopf_solution(
    x: Float[ArrayLike, "..."],
    t,
    viscosity,
    length: float,
    *,
    amplitude: float = 0.5,
    mode: int = 1,
    origin: float = 0.0,
) -> Float[Array, "..."]:
    r"""The Cole–Hopf solution above, elementwise in `x` (any shape), on a period `length`."""
    if not 0 < amplitude < 1:
        raise ValueError(f"cole_hopf_solution: `amplitude` must be in (0, 1), got {amplitude!r}.")
    if not (isinstance(mode, int) and mode >= 1):
        raise ValueError(f"cole_hopf_solution: `mode` must be a positive integer, got {mode!r}.")
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    t = jnp.asarray(t, x.dtype)
    q = 2 * math.pi * mode / length
    decay = amplitude * jnp.exp(-viscosity * q**2 * t)
    phase = q * (x - origin)
    return 2 * viscosity * q * decay * jnp.sin(phase) / (1 + decay * jnp.cos(phase))


class Burgers(AbstractSemiLinearPDE):
    r"""Viscous Burgers $u_t + (u^2/2)_x = \nu u_{xx}$ on a 1D periodic grid.

    **Arguments:**

    - `grid`: a 1D periodic `Grid`.
    - `viscosity`: $\nu > 0$.
    - `dealias_fraction`: the fraction of the spectrum kept by the dealiasing mask
      (`dealias_mask`; 2/3 is Orszag's rule).
    """

    grid: Grid
    viscosity: float | Array
    dealias_fraction: float = eqx.field(static=True)

    def __init__(self, grid: Grid, viscosity: float | Array = 0.1, dealias_fraction: float = 2 / 3):
        self.grid = require_grid("Burgers", grid, ndim=(1,))
        self.viscosity = require_positive("Burgers", "viscosity", viscosity)
        self.dealias_fraction = float(dealias_fraction)

    def linear_symbol(self):
        (k,) = self.grid.wavenumbers(real=True)
        return -self.viscosity * k**2

    def convection(self) -> Convection:
        r"""The nonlinear part $-\partial_x(u^2/2)$."""
        return Convection(self.grid, 1.0, self.dealias_fraction)

    def nonlinear(self, t, u_hat, args=None):
        return self.convection()(u_hat)

    def residual(self, u_fn, x, t=None, args=None):
        x, t = check_space_time("Burgers.residual", x, t, 1)
        u, u_x, u_xx = autodiff.derivatives(u_fn, 0, 2)(x, t)  # one nested forward pass
        return autodiff.time_derivative(u_fn)(x, t) - self.viscosity * u_xx - self.convection().at(u, u_x)

    def exact_solution(self, x, t, *, amplitude: float = 0.5, mode: int = 1):
        """The Cole–Hopf solution (see the module docstring) on this grid's period."""
        x = check_point("Burgers.exact_solution", x, 1)
        return cole_hopf_solution(
            x[0],
            t,
            self.viscosity,
            self.grid.lengths[0],
            amplitude=amplitude,
            mode=mode,
            origin=self.grid.origin[0],
        )
