r"""Nonlinear terms shared by the semi-linear PDEs, each one module with a spectral and a pointwise form.

A semi-linear PDE $\partial_t u = \mathcal L u + \mathcal N(u)$ states its linear symbol and
*picks* its nonlinear part from here (as exponax composes its steppers from `nonlin_fun`
modules; Koehler et al., "APEBench", NeurIPS 2024). Each term offers both views, so the
pseudo-spectral ``rhs`` and the PINN ``residual`` come from one definition:

- ``term(u_hat)``: $\widehat{\mathcal N(u)}$ from the rfft of the state (spectral in, spectral
  out), products evaluated in physical space with the dealiasing mask of the grid;
- ``term.pointwise(u_fn)(x, *args)``: $\mathcal N[u](x)$ of a function ``u_fn(x, *args)`` by
  automatic differentiation (`jaxpde.autodiff`).

Terms:

- `Convection`: $-\tfrac{c}{2}\partial_x(u^2) = -c\,u\,\partial_x u$ (Burgers, KdV, convective KS);
- `GradientNorm`: $-\tfrac{c}{2}|\nabla u|^2$ (gradient KS; the spectral form drops the spatial
  mean, see `jaxpde.pdes.KuramotoSivashinsky`);
- `Polynomial`: $\sum_j c_j u^j$ pointwise (Allen–Cahn's $-\rho u^3$), not dealiased — the usual
  practice for reaction terms of well-resolved fields.
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Complex

from .. import autodiff
from ..grids import Grid
from ..numerics.spectral import dealias_mask, odd_wavenumbers


def _axes(grid: Grid) -> tuple[int, ...]:
    return tuple(range(-grid.ndim, 0))


class _Quadratic(eqx.Module):
    """The fields of a quadratic term: its grid, its coefficient and the dealiasing fraction."""

    grid: Grid
    coefficient: float | Array = 1.0
    dealias_fraction: float = eqx.field(static=True, default=2 / 3)


class Convection(_Quadratic):
    r"""$-\tfrac{c}{2}\partial_x(u^2)$ on a 1D periodic grid, the 2/3-rule (or `dealias_fraction`) product."""

    def __call__(self, u_hat: Complex[Array, " spectral"]) -> Complex[Array, " spectral"]:
        mask = dealias_mask(self.grid, self.dealias_fraction)
        (k,) = odd_wavenumbers(self.grid)
        u = jnp.fft.irfft(mask * u_hat, n=self.grid.shape[0])
        return -0.5j * self.coefficient * k * mask * jnp.fft.rfft(u * u)

    def pointwise(self, u_fn):
        def term(x, *args):
            return self.at(*autodiff.derivatives(u_fn, 0, 1)(x, *args))

        return term

    def at(self, u, u_x):
        r"""$-c\,u\,u_x$ from the value and the derivative at a point (a residual that has them)."""
        return -self.coefficient * u * u_x


class GradientNorm(_Quadratic):
    r"""$-\tfrac{c}{2}|\nabla u|^2$ on a periodic grid; the spectral form removes the spatial mean."""

    def __call__(self, u_hat: Complex[Array, "*spectral"]) -> Complex[Array, "*spectral"]:
        mask = dealias_mask(self.grid, self.dealias_fraction)
        u_hat = mask * u_hat
        axes = _axes(self.grid)
        squared = 0.0
        for k in odd_wavenumbers(self.grid):
            du = jnp.fft.irfftn(1j * k * u_hat, s=self.grid.shape, axes=axes)
            squared = squared + du * du
        squared = squared - jnp.mean(squared, axis=axes, keepdims=True)
        return -0.5 * self.coefficient * mask * jnp.fft.rfftn(squared, axes=axes)

    def pointwise(self, u_fn):
        def term(x, *args):
            du = autodiff.gradient(u_fn)(x, *args)
            return -0.5 * self.coefficient * jnp.sum(du * du, axis=-1)

        return term


class Polynomial(eqx.Module):
    r"""$\sum_j c_j u^j$ pointwise, `coefficients` $= (c_0, c_1, \dots)$."""

    grid: Grid
    coefficients: tuple

    def at(self, u):
        r"""$\sum_j c_j u^j$ of the value at a point (also what the spectral form evaluates on the grid)."""
        total = jnp.zeros_like(u)
        for power, c in enumerate(self.coefficients):
            total = total + c * u**power
        return total

    def __call__(self, u_hat):
        axes = _axes(self.grid)
        u = jnp.fft.irfftn(u_hat, s=self.grid.shape, axes=axes)
        return jnp.fft.rfftn(self.at(u), axes=axes)

    def pointwise(self, u_fn):
        def term(x, *args):
            return self.at(u_fn(x, *args))

        return term
