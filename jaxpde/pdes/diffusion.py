r"""Linear transport: the heat equation and constant-velocity advection.

$$\partial_t u = \kappa \Delta u \qquad\text{and}\qquad \partial_t u + c\cdot\nabla u = 0 .$$

On periodic grids both are diagonal in Fourier space ($\hat L = -\kappa|k|^2$ and
$\hat L = -i\, c\cdot k$), so the ETDRK solvers integrate them exactly and `evolve_exact`
gives the exact solution of any band-limited initial condition. The heat equation also runs on
Dirichlet grids through the method of lines, with the second-difference Laplacian
$(u_{j-1} - 2u_j + u_{j+1})/h^2$ and homogeneous boundary values.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..grids import Grid
from ._base import (
    AbstractSemiLinearPDE,
    as_time,
    check_point,
    laplacian,
    odd_wavenumbers,
    require_finite,
    require_grid,
    require_positive,
    space_derivative,
    time_derivative,
    wavenumber_norm_squared,
)

__all__ = ["Heat", "Advection", "dirichlet_laplacian"]


def dirichlet_laplacian(u: Float[Array, "*channels *shape"], grid: Grid) -> Float[Array, "*channels *shape"]:
    r"""Second-difference Laplacian on the interior nodes, zero values on the boundary nodes.

    $(\Delta_h u)_j = \sum_i (u_{j - e_i} - 2u_j + u_{j + e_i})/h_i^2$, second-order accurate.
    The Laplacian acts on the trailing ``grid.ndim`` axes.
    """
    out = jnp.zeros_like(u)
    lead = u.ndim - grid.ndim
    for i, h in enumerate(grid.spacing):
        axis = lead + i
        pad = [(0, 0)] * u.ndim
        pad[axis] = (1, 1)
        padded = jnp.pad(u, pad)
        n = u.shape[axis]
        left = jax.lax.slice_in_dim(padded, 0, n, axis=axis)
        right = jax.lax.slice_in_dim(padded, 2, n + 2, axis=axis)
        out = out + (left - 2 * u + right) / h**2
    return out


def _mode_argument(x: Array, grid: Grid, shift: Array | None = None) -> Array:
    """Phase of the lowest mode per axis: $2\\pi(x - o)/L$ (periodic) or $\\pi(x - o)/L$ (Dirichlet)."""
    factor = 2 * math.pi if grid.boundary == "periodic" else math.pi
    origin = jnp.asarray(grid.origin, x.dtype)
    lengths = jnp.asarray(grid.lengths, x.dtype)
    position = x - origin if shift is None else x - origin - shift
    return factor * position / lengths


class Heat(AbstractSemiLinearPDE):
    r"""The heat (diffusion) equation $\partial_t u = \kappa\Delta u$.

    Periodic grids: $\hat L = -\kappa |k|^2$, no nonlinear part (ETDRK is then exact).
    Dirichlet grids: method of lines only, ``rhs`` is $\kappa\Delta_h u$ with the second-difference
    Laplacian and $u = 0$ on the boundary.

    **Arguments:**

    - `grid`: a periodic or Dirichlet `Grid`.
    - `diffusivity`: $\kappa > 0$.
    """

    grid: Grid
    diffusivity: float | Array

    def __init__(self, grid: Grid, diffusivity: float | Array = 1.0):
        self.grid = require_grid("Heat", grid, periodic=False)
        self.diffusivity = require_positive("Heat", "diffusivity", diffusivity)

    def linear_symbol(self):
        if self.grid.boundary != "periodic":
            raise ValueError(
                "Heat: the Fourier symbol (and ETDRK) needs a periodic grid; on a Dirichlet grid use "
                "the method of lines, e.g. diffrax.ODETerm(pde.rhs)."
            )
        return -self.diffusivity * wavenumber_norm_squared(self.grid)

    def nonlinear(self, t, u_hat, args=None):
        return jnp.zeros_like(u_hat)

    def rhs(self, t, u, args=None):
        if self.grid.boundary == "periodic":
            return super().rhs(t, u, args)
        return self.diffusivity * dirichlet_laplacian(u, self.grid)

    def residual(self, u_fn, x, t):
        x = check_point("Heat.residual", x, self.grid.ndim)
        t = as_time(t, x)
        return time_derivative(u_fn)(x, t) - self.diffusivity * laplacian(u_fn, self.grid.ndim)(x, t)

    def decay_rate(self) -> float | Array:
        r"""$\kappa\sum_i (\pi/L_i)^2$ (Dirichlet) or $\kappa\sum_i (2\pi/L_i)^2$ (periodic) of `exact_solution`."""
        factor = 2 * math.pi if self.grid.boundary == "periodic" else math.pi
        return self.diffusivity * sum((factor / length) ** 2 for length in self.grid.lengths)

    def exact_solution(self, x, t):
        r"""The lowest mode $\prod_i \sin(\theta_i)\, e^{-\lambda t}$, $\theta_i = 2\pi(x_i - o_i)/L_i$
        (periodic) or $\pi(x_i - o_i)/L_i$ (Dirichlet, vanishing on the boundary); $\lambda$ is
        `decay_rate`."""
        x = check_point("Heat.exact_solution", x, self.grid.ndim)
        t = as_time(t, x)
        return jnp.prod(jnp.sin(_mode_argument(x, self.grid))) * jnp.exp(-self.decay_rate() * t)

    def evolve_exact(self, u0: Float[Array, "*shape"], t) -> Float[Array, "*shape"]:
        """Exact solution at time `t` of a band-limited periodic `u0`: $\\hat u_k e^{-\\kappa|k|^2 t}$."""
        self.grid.check_field(u0, "u0")
        term = self.semilinear_term()
        u_hat = term.to_spectral(u0)
        return term.to_physical(jnp.exp(term.symbol_for(u_hat) * t) * u_hat)


class Advection(AbstractSemiLinearPDE):
    r"""Constant-velocity advection $\partial_t u + c\cdot\nabla u = 0$ on a periodic grid.

    $\hat L = -i\, c\cdot k$ — a purely imaginary symbol, so the ETDRK weights are complex (the
    Nyquist mode of an even grid is held fixed, see `odd_wavenumbers`). The exact solution is the
    shifted profile $u(x, t) = u_0(x - ct)$.

    **Arguments:**

    - `grid`: a periodic `Grid`.
    - `velocity`: $c$, a scalar (the same on every axis) or one value per axis.
    """

    grid: Grid
    velocity: Float[Array, " ndim"]

    def __init__(self, grid: Grid, velocity=1.0):
        self.grid = require_grid("Advection", grid)
        require_finite("Advection", "velocity", velocity)
        velocity = jnp.asarray(velocity)
        if velocity.ndim == 0:
            velocity = jnp.full((grid.ndim,), velocity)
        if velocity.shape != (grid.ndim,):
            raise ValueError(
                f"Advection: `velocity` must be a scalar or have one entry per axis ({grid.ndim}), "
                f"got shape {velocity.shape}."
            )
        if not jnp.issubdtype(velocity.dtype, jnp.floating):
            velocity = velocity.astype(jnp.result_type(float))
        self.velocity = velocity

    def linear_symbol(self):
        ks = odd_wavenumbers(self.grid)
        c_dot_k = sum(self.velocity[i] * k for i, k in enumerate(ks))
        return jnp.broadcast_to(-1j * c_dot_k, self.grid.spectral_shape(real=True))

    def nonlinear(self, t, u_hat, args=None):
        return jnp.zeros_like(u_hat)

    def residual(self, u_fn, x, t):
        x = check_point("Advection.residual", x, self.grid.ndim)
        t = as_time(t, x)
        transport = sum(self.velocity[i] * space_derivative(u_fn, i)(x, t) for i in range(self.grid.ndim))
        return time_derivative(u_fn)(x, t) + transport

    def exact_solution(self, x, t):
        r"""The travelling mode $\prod_i \sin(2\pi(x_i - c_i t - o_i)/L_i)$."""
        x = check_point("Advection.exact_solution", x, self.grid.ndim)
        t = as_time(t, x)
        return jnp.prod(jnp.sin(_mode_argument(x, self.grid, shift=self.velocity.astype(x.dtype) * t)))

    def evolve_exact(self, u0: Float[Array, "*shape"], t) -> Float[Array, "*shape"]:
        """$u_0(x - ct)$ for band-limited `u0`, by the Fourier shift theorem."""
        self.grid.check_field(u0, "u0")
        term = self.semilinear_term()
        u_hat = term.to_spectral(u0)
        return term.to_physical(jnp.exp(term.symbol_for(u_hat) * t) * u_hat)
