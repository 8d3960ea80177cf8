r"""The Allen–Cahn equation, periodic, in one to three dimensions.

$$\partial_t u = \varepsilon\,\Delta u + \rho\,(u - u^3).$$

The jaxpi benchmark (Wang et al., "An expert's guide to training PINNs") is
$u_t - 10^{-4} u_{xx} + 5u^3 - 5u = 0$ on $x \in [-1, 1]$, $t \in [0, 1]$, periodic,
$u_0 = x^2\cos(\pi x)$: $\varepsilon = 10^{-4}$, $\rho = 5$ (see `jaxpi_allen_cahn`).

Fourier split as in Kassam & Trefethen (2005): the linear reaction goes into the exactly
integrated part, $\hat L = -\varepsilon|k|^2 + \rho$, and $\hat{\mathcal N} = -\rho\,\widehat{u^3}$.
The cubic is evaluated pointwise without dealiasing (the usual practice for reaction terms of
well-resolved fields; the 2/3 rule would not remove all cubic aliases anyway).
"""

import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import autodiff
from ..grids import Grid
from ._base import AbstractSemiLinearPDE, check_space_time, require_grid, require_positive, wavenumber_norm_squared
from ._nonlinear import Polynomial

__all__ = ["AllenCahn", "jaxpi_allen_cahn"]


class AllenCahn(AbstractSemiLinearPDE):
    r"""Allen–Cahn $u_t = \varepsilon\Delta u + \rho(u - u^3)$ on a periodic grid.

    **Arguments:**

    - `grid`: a periodic `Grid`.
    - `diffusivity`: $\varepsilon > 0$ (default $10^{-4}$).
    - `reaction`: $\rho > 0$ (default 5).
    """

    grid: Grid
    diffusivity: float | Array
    reaction: float | Array

    def __init__(self, grid: Grid, diffusivity: float | Array = 1e-4, reaction: float | Array = 5.0):
        self.grid = require_grid("AllenCahn", grid)
        self.diffusivity = require_positive("AllenCahn", "diffusivity", diffusivity)
        self.reaction = require_positive("AllenCahn", "reaction", reaction)

    def linear_symbol(self):
        return -self.diffusivity * wavenumber_norm_squared(self.grid) + self.reaction

    def cubic(self) -> Polynomial:
        r"""The nonlinear part $-\rho u^3$ (the linear $\rho u$ is in the symbol)."""
        return Polynomial(self.grid, (0.0, 0.0, 0.0, -self.reaction))

    def nonlinear(self, t, u_hat, args=None):
        return self.cubic()(u_hat)

    def residual(self, u_fn, x, t=None, args=None):
        x, t = check_space_time("AllenCahn.residual", x, t, self.grid.ndim)
        u, lap = autodiff.value_and_laplacian(u_fn)(x, t)  # the value comes with the Laplacian
        linear = self.diffusivity * lap + self.reaction * u
        return autodiff.time_derivative(u_fn)(x, t) - linear - self.cubic().at(u)

    def exact_solution(self, x, t, *, initial_value: float = 0.5):
        r"""The spatially uniform solution from $u_0 \equiv$ `initial_value`:
        $u(t) = u_0 e^{\rho t}/\sqrt{1 + u_0^2(e^{2\rho t} - 1)}$ (the reaction ODE alone)."""
        x, t = check_space_time("AllenCahn.exact_solution", x, t, self.grid.ndim)
        growth = jnp.exp(self.reaction * t)
        return initial_value * growth / jnp.sqrt(1 + initial_value**2 * (growth**2 - 1))


def jaxpi_allen_cahn(num_points: int = 512) -> tuple[AllenCahn, Float[Array, " n"]]:
    r"""jaxpi's Allen–Cahn setting: $\varepsilon = 10^{-4}$, $\rho = 5$, $x \in [-1, 1)$ periodic,
    $u_0 = x^2\cos(\pi x)$. Returns ``(pde, u0)``; integrate to $t = 1$."""
    grid = Grid(num_points, lengths=2.0, origin=-1.0)
    (x,) = grid.axes()
    return AllenCahn(grid, 1e-4, 5.0), x**2 * jnp.cos(jnp.pi * x)
