r"""Linear transport: the heat equation and constant-velocity advection.

$$\partial_t u = \kappa \Delta u \qquad\text{and}\qquad \partial_t u + c\cdot\nabla u = 0 .$$

On periodic grids both are diagonal in Fourier space ($\hat L = -\kappa|k|^2$ and
$\hat L = -i\, c\cdot k$), so the ETDRK solvers integrate them exactly and `evolve_linear`
gives the exact solution of any band-limited initial condition. On Dirichlet grids the heat
equation is `DirichletHeat`, a method-of-lines PDE with the second-difference Laplacian
$(u_{j-1} - 2u_j + u_{j+1})/h^2$ and homogeneous boundary values.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import autodiff
from ..grids import Grid
from ._base import (
    AbstractPDE,
    AbstractSemiLinearPDE,
    check_space_time,
    odd_wavenumbers,
    require_finite,
    require_grid,
    require_positive,
    wavenumber_norm_squared,
)

__all__ = ["Heat", "DirichletHeat", "Advection", "dirichlet_laplacian"]


def dirichlet_laplacian(u: Float[Array, "..."], grid: Grid) -> Float[Array, "..."]:
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


class _AbstractHeat(AbstractPDE):
    r"""What both heat equations share: the residual and the lowest-mode solution.

    $u = \prod_i \sin(\theta_i)\, e^{-\lambda t}$ with $\theta_i = 2\pi(x_i - o_i)/L_i$ (periodic) or
    $\pi(x_i - o_i)/L_i$ (Dirichlet, vanishing on the boundary), and $\lambda$ = `decay_rate`.
    """

    diffusivity: eqx.AbstractVar[float | Array]

    def residual(self, u_fn, x, t=None, args=None):
        x, t = check_space_time(f"{type(self).__name__}.residual", x, t, self.grid.ndim)
        return autodiff.time_derivative(u_fn)(x, t) - self.diffusivity * autodiff.laplacian(u_fn)(x, t)

    def decay_rate(self) -> float | Array:
        r"""$\kappa\sum_i (2\pi/L_i)^2$ (periodic) or $\kappa\sum_i (\pi/L_i)^2$ (Dirichlet)."""
        factor = 2 * math.pi if self.grid.boundary == "periodic" else math.pi
        return self.diffusivity * sum((factor / length) ** 2 for length in self.grid.lengths)

    def exact_solution(self, x, t):
        r"""The lowest mode $\prod_i \sin(\theta_i)\, e^{-\lambda t}$ (see the class docstring)."""
        x, t = check_space_time(f"{type(self).__name__}.exact_solution", x, t, self.grid.ndim)
        return jnp.prod(jnp.sin(_mode_argument(x, self.grid))) * jnp.exp(-self.decay_rate() * t)


class Heat(_AbstractHeat, AbstractSemiLinearPDE):
    r"""The heat (diffusion) equation $\partial_t u = \kappa\Delta u$ on a periodic grid.

    $\hat L = -\kappa |k|^2$, no nonlinear part (ETDRK is then exact, and `evolve_exact` is the
    exact solution). For homogeneous Dirichlet boundaries use `DirichletHeat` (the method of
    lines: the Dirichlet Laplacian is not diagonal in Fourier space).

    **Arguments:**

    - `grid`: a periodic `Grid`.
    - `diffusivity`: $\kappa > 0$.
    """

    grid: Grid
    diffusivity: float | Array

    def __init__(self, grid: Grid, diffusivity: float | Array = 1.0):
        self.grid = require_grid("Heat", grid, hint="; for u = 0 on the boundary use DirichletHeat")
        self.diffusivity = require_positive("Heat", "diffusivity", diffusivity)

    def linear_symbol(self):
        return -self.diffusivity * wavenumber_norm_squared(self.grid)

    def nonlinear(self, t, u_hat, args=None):
        return jnp.zeros_like(u_hat)

    def evolve_exact(self, u0: Float[Array, "*shape"], t) -> Float[Array, "*shape"]:
        r"""Exact solution at time `t` of a band-limited `u0`: $\hat u_k e^{-\kappa|k|^2 t}$ (`evolve_linear`)."""
        return self.evolve_linear(u0, t)


class DirichletHeat(_AbstractHeat):
    r"""The heat equation $\partial_t u = \kappa\Delta u$ with $u = 0$ on the boundary, by the method of lines.

    ``rhs`` is $\kappa\Delta_h u$ with the second-difference Laplacian (`dirichlet_laplacian`) on
    the interior nodes of a Dirichlet `Grid`; integrate it with any diffrax solver
    (``diffrax.ODETerm(pde.rhs)``; it is stiff: $\kappa\Delta_h$ has eigenvalues down to
    $-4\kappa d/h^2$, so prefer an implicit solver such as `diffrax.Kvaerno5`).

    **Arguments:**

    - `grid`: a Dirichlet `Grid`.
    - `diffusivity`: $\kappa > 0$.
    """

    grid: Grid
    diffusivity: float | Array

    def __init__(self, grid: Grid, diffusivity: float | Array = 1.0):
        self.grid = require_grid("DirichletHeat", grid, periodic=False)
        if grid.boundary != "dirichlet":
            raise ValueError(
                f"DirichletHeat: needs a Dirichlet grid, got boundary={grid.boundary!r}; on a periodic grid use Heat."
            )
        self.diffusivity = require_positive("DirichletHeat", "diffusivity", diffusivity)

    @property
    def state_shape(self) -> tuple[int, ...]:
        return self.grid.shape

    def rhs(self, t, u, args=None):
        return self.diffusivity * dirichlet_laplacian(u, self.grid)


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

    def residual(self, u_fn, x, t=None, args=None):
        x, t = check_space_time("Advection.residual", x, t, self.grid.ndim)
        du = autodiff.gradient(u_fn)(x, t)
        return autodiff.time_derivative(u_fn)(x, t) + du @ self.velocity.astype(x.dtype)

    def exact_solution(self, x, t):
        r"""The travelling mode $\prod_i \sin(2\pi(x_i - c_i t - o_i)/L_i)$."""
        x, t = check_space_time("Advection.exact_solution", x, t, self.grid.ndim)
        return jnp.prod(jnp.sin(_mode_argument(x, self.grid, shift=self.velocity.astype(x.dtype) * t)))

    def evolve_exact(self, u0: Float[Array, "*shape"], t) -> Float[Array, "*shape"]:
        """$u_0(x - ct)$ for a band-limited `u0`, by the Fourier shift theorem (`evolve_linear`)."""
        return self.evolve_linear(u0, t)
