r"""What every PDE in the catalogue provides, and the small spectral helpers they share.

A PDE is an `equinox.Module` holding its parameters (and, where it is discretised, its `Grid`).
One definition serves every consumer:

- classical solvers and data generation: ``rhs(t, u, args)``, the semi-discrete right-hand side
  $\partial_t u = F(u, t)$ on the grid, a plain function for `diffrax.ODETerm` (method of lines);
- PINNs and physics-informed losses: ``residual(u_fn, x, t)``, the pointwise residual of a
  function ``u_fn(x, t)`` computed with automatic differentiation;
- tests: ``exact_solution(x, t)`` where a closed form exists.

Semi-linear PDEs on periodic grids, $\partial_t u = \mathcal L u + \mathcal N(u, t)$ with
$\mathcal L$ diagonal in Fourier space, add ``linear_symbol()`` ($\hat L$ on the rfft grid) and
``nonlinear(t, u_hat, args)`` (**spectral in, spectral out**: the rfft of the state in, the rfft
of $\mathcal N$ out — so ETDRK stages stay in Fourier space without extra transforms). From these
the base class builds ``rhs``, the `SemiLinearTerm` for the ETDRK solvers, and the explicit /
implicit split for diffrax's IMEX solvers (`diffrax.KenCarp3/4/5`).

Argument order follows diffrax's vector fields, ``(t, y, args)``, throughout.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Complex, Float, Inexact, PyTree

from ..grids import Grid
from ..numerics.etdrk import SemiLinearTerm
from ..numerics.spectral import dealias_mask, laplacian_symbol, odd_wavenumbers  # noqa: F401 (re-exported for the PDEs)

ScalarFn = Callable[[Float[Array, " ndim"], Float[Array, ""]], Float[Array, "..."]]


class AbstractPDE(eqx.Module):
    """A time-dependent PDE $\\partial_t u = F(u, t)$."""

    @property
    @abc.abstractmethod
    def state_shape(self) -> tuple[int, ...]:
        """Shape of one state on the grid, e.g. ``grid.shape`` or ``(2, *grid.shape)``."""

    @abc.abstractmethod
    def rhs(self, t, u: Float[Array, "*state"], args: PyTree = None) -> Float[Array, "*state"]:
        """The semi-discrete right-hand side $F(u, t)$ (for `diffrax.ODETerm`)."""

    @abc.abstractmethod
    def residual(self, u_fn: ScalarFn, x: Float[ArrayLike, " ndim"], t) -> Float[Array, "..."]:
        """$\\partial_t u - F(u)$ at one space-time point, for a function ``u_fn(x, t)``."""

    def exact_solution(self, x: Float[ArrayLike, " ndim"], t) -> Float[Array, "..."]:
        """A closed-form solution at one point ``x`` (shape ``(ndim,)``) and time ``t``."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form solution.")

    def ode_term(self) -> diffrax.ODETerm:
        """``diffrax.ODETerm(self.rhs)``: the method-of-lines term for any explicit/implicit solver."""
        return diffrax.ODETerm(self.rhs)


class AbstractSemiLinearPDE(AbstractPDE):
    r"""$\partial_t u = \mathcal L u + \mathcal N(u, t)$ on a periodic grid, $\mathcal L$ Fourier-diagonal."""

    grid: eqx.AbstractVar[Grid]

    @abc.abstractmethod
    def linear_symbol(self) -> Inexact[Array, "*channels *spectral"]:
        """$\\hat L$ on the rfft grid, broadcastable to ``(*channels, *grid.spectral_shape())``."""

    @abc.abstractmethod
    def nonlinear(self, t, u_hat: Complex[Array, "*channels *spectral"], args: PyTree = None):
        """$\\hat{\\mathcal N}$: the rfft of the state in, the rfft of the nonlinear part out."""

    @property
    def state_shape(self) -> tuple[int, ...]:
        return self.grid.shape

    def semilinear_term(self) -> SemiLinearTerm:
        """The `SemiLinearTerm` that the ETDRK solvers integrate."""
        return SemiLinearTerm(self.linear_symbol(), self.nonlinear, self.grid)

    def rhs(self, t, u, args=None):
        return self.semilinear_term().vf(t, u, args)

    def explicit_rhs(self, t, u, args=None):
        """$\\mathcal N(u, t)$ in physical space: the explicit part of an IMEX split."""
        term = self.semilinear_term()
        return term.to_physical(self.nonlinear(t, term.to_spectral(u), args))

    def implicit_rhs(self, t, u, args=None):
        """$\\mathcal L u$ in physical space: the stiff, implicit part of an IMEX split."""
        term = self.semilinear_term()
        u_hat = term.to_spectral(u)
        return term.to_physical(term.symbol_for(u_hat) * u_hat)

    def exact_solution_on_grid(self, t, **kwargs) -> Float[Array, "*state"]:
        """`exact_solution` at every grid point (extra keyword arguments are passed on)."""
        points = self.grid.coordinates().reshape(self.grid.ndim, -1).T
        values = jax.vmap(lambda x: self.exact_solution(x, t, **kwargs))(points)
        values = values.reshape(*self.grid.shape, *values.shape[1:])
        return jnp.moveaxis(values, tuple(range(self.grid.ndim)), tuple(range(-self.grid.ndim, 0)))

    def imex_terms(self) -> diffrax.MultiTerm:
        """``MultiTerm(ODETerm(explicit), ODETerm(implicit))`` for `diffrax.KenCarp3/4/5`.

        The implicit part is linear, so give the solver ``root_finder=optimistix.Newton(rtol, atol)``:
        Newton converges in one iteration, while diffrax's default `VeryChord` can mistake the
        round-off-level second increment for divergence and reject every step.
        """
        return diffrax.MultiTerm(diffrax.ODETerm(self.explicit_rhs), diffrax.ODETerm(self.implicit_rhs))


# --------------------------------------------------------------------------------------------
# Parameter and input checks
# --------------------------------------------------------------------------------------------


def _concrete(value):
    """``value`` as a NumPy array, or ``None`` when it is traced (then it cannot be checked here)."""
    try:
        return np.asarray(value)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError, TypeError):
        return None


def _shown(value) -> str:
    array = _concrete(value)
    if array is None:
        return repr(value)
    return repr(array.item()) if array.size == 1 else repr(array.tolist())


def require_positive(owner: str, name: str, value):
    """Raise ``ValueError("Owner: `name` must be positive, got v")`` unless every entry is > 0 and finite."""
    array = _concrete(value)
    if array is not None and not (np.all(np.isfinite(array)) and np.all(array > 0)):
        raise ValueError(f"{owner}: `{name}` must be positive, got {_shown(value)}.")
    return value


def require_nonnegative(owner: str, name: str, value):
    array = _concrete(value)
    if array is not None and not (np.all(np.isfinite(array)) and np.all(array >= 0)):
        raise ValueError(f"{owner}: `{name}` must be non-negative, got {_shown(value)}.")
    return value


def require_finite(owner: str, name: str, value):
    array = _concrete(value)
    if array is not None and not np.all(np.isfinite(array)):
        raise ValueError(f"{owner}: `{name}` must be finite, got {_shown(value)}.")
    return value


def require_grid(owner: str, grid, ndim: tuple[int, ...] | None = None, periodic: bool = True) -> Grid:
    if not isinstance(grid, Grid):
        raise TypeError(f"{owner}: `grid` must be a jaxpde.Grid, got {type(grid).__name__}.")
    if periodic and grid.boundary != "periodic":
        raise ValueError(f"{owner}: needs a periodic grid, got boundary={grid.boundary!r}.")
    if ndim is not None and grid.ndim not in ndim:
        raise ValueError(f"{owner}: needs a grid with {' or '.join(map(str, ndim))} dimension(s), got {grid.ndim}.")
    return grid


def check_point(owner: str, x, ndim: int) -> Float[Array, " ndim"]:
    """``x`` as a float array of shape ``(ndim,)`` (one point), or a clear error."""
    x = jnp.asarray(x)
    if x.shape != (ndim,):
        raise ValueError(
            f"{owner}: `x` must be one point of shape ({ndim},); got shape {x.shape}. "
            "Use jax.vmap for many points."
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


# --------------------------------------------------------------------------------------------
# Spectral helpers
# --------------------------------------------------------------------------------------------


def wavenumber_norm_squared(grid: Grid) -> Float[Array, "*spectral"]:
    """$|k|^2 = \\sum_i k_i^2$ on the rfft grid (the symbol of $-\\Delta$)."""
    return jnp.broadcast_to(-laplacian_symbol(grid), grid.spectral_shape(real=True))


# --------------------------------------------------------------------------------------------
# Derivatives of a function u(x, t) for residuals
# --------------------------------------------------------------------------------------------


def _along(fn: ScalarFn, axis: int) -> ScalarFn:
    def derivative(x, t):
        direction = jnp.zeros_like(x).at[axis].set(1.0)
        return jax.jvp(lambda xx: fn(xx, t), (x,), (direction,))[1]

    return derivative


def space_derivative(fn: ScalarFn, axis: int, order: int = 1) -> ScalarFn:
    """$\\partial^{\\text{order}} u / \\partial x_{\\text{axis}}^{\\text{order}}$ by nested forward-mode AD."""
    for _ in range(order):
        fn = _along(fn, axis)
    return fn


def time_derivative(fn: ScalarFn) -> ScalarFn:
    """$\\partial_t u$ by forward-mode AD."""

    def derivative(x, t):
        t = jnp.asarray(t, dtype=x.dtype)
        return jax.jvp(lambda tt: fn(x, tt), (t,), (jnp.ones_like(t),))[1]

    return derivative


def laplacian(fn: ScalarFn, ndim: int) -> ScalarFn:
    """$\\Delta u = \\sum_i \\partial_i^2 u$."""
    seconds = [space_derivative(fn, axis, 2) for axis in range(ndim)]

    def lap(x, t):
        return sum(d(x, t) for d in seconds)

    return lap


def as_time(t, x: Array) -> Array:
    return jnp.asarray(t, dtype=x.dtype)
