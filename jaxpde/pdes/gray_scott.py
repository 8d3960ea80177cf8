r"""The Gray–Scott reaction–diffusion system, periodic, in one to three dimensions.

$$\begin{aligned}
\partial_t u &= D_u\Delta u - u v^2 + F(1 - u),\\
\partial_t v &= D_v\Delta v + u v^2 - (F + \kappa) v .
\end{aligned}$$

The state stacks the two species on a leading axis: shape ``(2, *grid.shape)``.

Fourier split: the diffusion and the linear decay terms are integrated exactly,
$\hat L = \big(-D_u|k|^2 - F,\; -D_v|k|^2 - (F + \kappa)\big)$, and the reaction is the nonlinear
part, $\mathcal N = (-uv^2 + F,\; uv^2)$, evaluated pointwise (no dealiasing, as usual for
reaction terms).

The defaults ($D_u = 2\cdot10^{-5}$, $D_v = 10^{-5}$, $F = 0.04$, $\kappa = 0.06$) are Pearson's
units for a domain of side about 2.5.

References: P. Gray and S. K. Scott (1984); J. E. Pearson, "Complex patterns in a simple system",
Science 261 (1993).
"""

import math

import jax.numpy as jnp
from jaxtyping import Array

from .. import autodiff
from ..grids import Grid
from ._base import (
    AbstractSemiLinearPDE,
    check_space_time,
    require_grid,
    require_nonnegative,
    require_positive,
    wavenumber_norm_squared,
)

__all__ = ["GrayScott"]


class GrayScott(AbstractSemiLinearPDE):
    r"""Gray–Scott on a periodic grid; the state has shape ``(2, *grid.shape)`` ($u$, $v$).

    **Arguments:**

    - `grid`: a periodic `Grid`.
    - `diffusivities`: $(D_u, D_v)$, both positive.
    - `feed`: $F \ge 0$. `kill`: $\kappa \ge 0$.
    """

    grid: Grid
    diffusivities: tuple[float, float] | Array
    feed: float | Array
    kill: float | Array

    def __init__(
        self,
        grid: Grid,
        diffusivities: tuple[float, float] | Array = (2e-5, 1e-5),
        feed: float | Array = 0.04,
        kill: float | Array = 0.06,
    ):
        self.grid = require_grid("GrayScott", grid)
        if len(diffusivities) != 2:
            raise ValueError(f"GrayScott: `diffusivities` must have two entries (D_u, D_v), got {diffusivities!r}.")
        self.diffusivities = require_positive("GrayScott", "diffusivities", diffusivities)
        self.feed = require_nonnegative("GrayScott", "feed", feed)
        self.kill = require_nonnegative("GrayScott", "kill", kill)

    def linear_symbol(self):
        k2 = wavenumber_norm_squared(self.grid)
        d_u, d_v = self.diffusivities[0], self.diffusivities[1]
        return jnp.stack([-d_u * k2 - self.feed, -d_v * k2 - (self.feed + self.kill)])

    def _reaction(self, u, v):
        uvv = u * v * v
        return -uvv + self.feed, uvv

    def nonlinear(self, t, u_hat, args=None):
        axes = tuple(range(-self.grid.ndim, 0))
        state = jnp.fft.irfftn(u_hat, s=self.grid.shape, axes=axes)
        return jnp.fft.rfftn(jnp.stack(self._reaction(state[0], state[1])), axes=axes)

    def residual(self, u_fn, x, t=None, args=None):
        """Both residuals, shape ``(2,)``, for ``u_fn(x, t) -> (u, v)`` of shape ``(2,)``."""
        x, t = check_space_time("GrayScott.residual", x, t, self.grid.ndim)
        state = u_fn(x, t)
        u, v = state[0], state[1]
        lap = autodiff.laplacian(u_fn)(x, t)
        d = jnp.stack([jnp.asarray(self.diffusivities[0]), jnp.asarray(self.diffusivities[1])]).astype(x.dtype)
        reaction_u, reaction_v = self._reaction(u, v)
        linear_decay = jnp.stack([self.feed * u, (self.feed + self.kill) * v])
        rates = d * lap + jnp.stack([reaction_u, reaction_v]) - linear_decay
        return autodiff.time_derivative(u_fn)(x, t) - rates

    def exact_solution(self, x, t, *, amplitude: float = 0.5):
        r"""$(u, v) = (1 + A\prod_i\sin(2\pi(x_i - o_i)/L_i)\,e^{-(D_u|k|^2 + F)t},\ 0)$.

        Without $v$ the reaction vanishes and the $u$ equation is linear around the fixed point
        $u = 1$; shape ``(2,)``, $A$ = `amplitude`.
        """
        x, t = check_space_time("GrayScott.exact_solution", x, t, self.grid.ndim)
        k2 = sum((2 * math.pi / length) ** 2 for length in self.grid.lengths)
        phase = 2 * math.pi * (x - jnp.asarray(self.grid.origin, x.dtype)) / jnp.asarray(self.grid.lengths, x.dtype)
        rate = self.diffusivities[0] * k2 + self.feed
        u = 1 + amplitude * jnp.prod(jnp.sin(phase)) * jnp.exp(-rate * t)
        return jnp.stack([u, jnp.zeros_like(u)])

    def reaction_rhs(self, t, state: Array, args=None) -> Array:
        """The right-hand side of the well-mixed (spatially uniform) system, state shape ``(2,)``."""
        u, v = state[0], state[1]
        reaction_u, reaction_v = self._reaction(u, v)
        return jnp.stack([reaction_u - self.feed * u, reaction_v - (self.feed + self.kill) * v])
