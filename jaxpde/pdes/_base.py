r"""The time-dependent PDE bases, the one residual contract, and the small helpers the PDEs share.

A PDE is an `equinox.Module` holding its parameters (and, where it is discretised, its `Grid`).
One definition serves every consumer:

- classical solvers and data generation: ``rhs(t, u, args)``, the semi-discrete right-hand side
  $\partial_t u = F(u, t)$ on the grid, a plain function for `diffrax.ODETerm` (method of lines);
- PINNs and physics-informed losses: ``residual``, the pointwise residual (below);
- tests: ``exact_solution`` where a closed form exists.

**The residual contract.** Every PDE of the catalogue, time-dependent (`AbstractPDE`) or
stationary (`jaxpde.pdes.AbstractStationaryPDE`), scalar or vector-valued, offers

.. code-block:: python

    pde.residual(u_fn, x, t=None, args=None) -> Array  # shape () or (channels,)

the residual $r(x, t) = \partial_t u - F[u](x, t)$ (time-dependent, $\partial_t u = F[u]$) or
$r(x) = (\mathcal L u)(x) - f(x)$ (stationary, $\mathcal L u = f$) of a *function* ``u_fn`` at
one point ``x`` of shape ``(d,)``, by automatic differentiation (`jaxpde.autodiff`); it is zero
where ``u_fn`` solves the PDE. Batches are a `jax.vmap` over points.

- ``u_fn`` has the signature of the unknown: ``u_fn(x, t)`` for a time-dependent PDE,
  ``u_fn(x)`` for a stationary one (the class attribute ``time_dependent`` says which). It
  returns a scalar, or ``(channels,)`` for a system (Gray–Scott's ``(u, v)``). Where the PDE is
  written for a potential, the docstring says so (`NavierStokes2D` takes the stream function).
- ``t`` is required for time-dependent PDEs and ignored by stationary ones.
- ``args`` carries the problem's coefficient *functions* when they are not fields of the PDE
  (Darcy's permeability $a(x)$: ``Darcy().residual(u_fn, x, args=a_fn)``, so a PINN can learn
  $a$ in an inverse problem); ``None`` uses the PDE's fields.

``residual`` and ``exact_solution`` are *optional*: a PDE that no PINN will use does not write
them, and the base method says so (`NotImplementedError` naming the class). These two "not
provided" defaults are the only concrete base methods a subclass replaces; every other concrete
method of a base is final (diffrax's abstract/final rule), and a subclass that needs different
behaviour is a different class (as `Heat` and `DirichletHeat`).

Semi-linear PDEs on periodic grids, $\partial_t u = \mathcal L u + \mathcal N(u, t)$ with
$\mathcal L$ diagonal in Fourier space, implement ``linear_symbol()`` ($\hat L$ on the rfft grid)
and ``nonlinear(t, u_hat, args)`` (**spectral in, spectral out**: the rfft of the state in, the
rfft of $\mathcal N$ out — so ETDRK stages stay in Fourier space without extra transforms). From
these the base builds ``rhs``, the `SemiLinearTerm` for the ETDRK solvers (Cox & Matthews, J.
Comput. Phys. 176, 2002) and the explicit / implicit split for diffrax's IMEX solvers
(`diffrax.KenCarp3/4/5`). Shared nonlinear terms are modules in `jaxpde.pdes._nonlinear`.

Argument order follows diffrax's vector fields, ``(t, y, args)``, throughout.
"""

import abc
from collections.abc import Callable
from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float, Inexact, PyTree

from ..autodiff import as_point
from ..grids import Grid
from ..numerics.etdrk import SemiLinearTerm
from ..numerics.spectral import dealias_mask, laplacian_symbol, odd_wavenumbers  # noqa: F401 (re-exported for the PDEs)

PointFn = Callable[..., Float[Array, "..."]]


def not_provided(pde, method: str) -> NotImplementedError:
    """The error of an optional method a PDE does not implement."""
    return NotImplementedError(
        f"{type(pde).__name__} does not provide `{method}`; subclass it and implement `{method}` "
        "(see the residual contract in jaxpde.pdes._base)."
    )


class AbstractPDE(eqx.Module):
    r"""A time-dependent PDE $\partial_t u = F(u, t)$.

    Subclasses hold a ``grid`` and implement ``state_shape`` and ``rhs(t, u, args)``; optionally
    ``residual(u_fn, x, t, args=None)`` $= \partial_t u - F[u]$ for a function ``u_fn(x, t)``
    (the contract in the module docstring) and ``exact_solution(x, t)``.
    """

    grid: eqx.AbstractVar[Grid]

    time_dependent: ClassVar[bool] = True

    @property
    @abc.abstractmethod
    def state_shape(self) -> tuple[int, ...]:
        """Shape of one state on the grid, e.g. ``grid.shape`` or ``(2, *grid.shape)``."""

    @abc.abstractmethod
    def rhs(self, t, u: Float[Array, "*state"], args: PyTree = None) -> Float[Array, "*state"]:
        """The semi-discrete right-hand side $F(u, t)$ (for `diffrax.ODETerm`)."""

    def residual(self, u_fn: PointFn, x: Float[ArrayLike, " ndim"], t=None, args: PyTree = None) -> Float[Array, "..."]:
        """$\\partial_t u - F[u]$ at one space-time point for ``u_fn(x, t)`` (optional; see the module)."""
        raise not_provided(self, "residual")

    def exact_solution(self, x: Float[ArrayLike, " ndim"], t) -> Float[Array, "..."]:
        """A closed-form solution at one point ``x`` (shape ``(ndim,)``) and time ``t`` (optional)."""
        raise not_provided(self, "exact_solution")

    def exact_solution_on_grid(self, t, **kwargs) -> Float[Array, "*state"]:
        """`exact_solution` at every grid point (extra keyword arguments are passed on)."""
        points = self.grid.coordinates().reshape(self.grid.ndim, -1).T
        values = jax.vmap(lambda x: self.exact_solution(x, t, **kwargs))(points)
        values = values.reshape(*self.grid.shape, *values.shape[1:])
        return jnp.moveaxis(values, tuple(range(self.grid.ndim)), tuple(range(-self.grid.ndim, 0)))

    def ode_term(self) -> diffrax.ODETerm:
        """``diffrax.ODETerm(self.rhs)``: the method-of-lines term for any explicit/implicit solver."""
        return diffrax.ODETerm(self.rhs)


class AbstractSemiLinearPDE(AbstractPDE):
    r"""$\partial_t u = \mathcal L u + \mathcal N(u, t)$ on a periodic grid, $\mathcal L$ Fourier-diagonal.

    The ``grid`` is periodic; subclasses implement ``linear_symbol()`` and
    ``nonlinear(t, u_hat, args)``. The state shape follows from the symbol:
    ``(*channels, *grid.shape)``.
    """

    @abc.abstractmethod
    def linear_symbol(self) -> Inexact[Array, "..."]:
        """$\\hat L$ on the rfft grid, broadcastable to ``(*channels, *grid.spectral_shape())``."""

    @abc.abstractmethod
    def nonlinear(self, t, u_hat: Complex[Array, "..."], args: PyTree = None):
        """$\\hat{\\mathcal N}$: the rfft of the state in, the rfft of the nonlinear part out."""

    @property
    def state_shape(self) -> tuple[int, ...]:
        symbol_shape = jax.eval_shape(self.linear_symbol).shape
        return (*symbol_shape[: len(symbol_shape) - self.grid.ndim], *self.grid.shape)

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

    def evolve_linear(self, u0: Float[Array, "*state"], t) -> Float[Array, "*state"]:
        """$e^{t\\mathcal L} u_0$ exactly (for a band-limited `u0`): the solution when $\\mathcal N = 0$."""
        u0 = jnp.asarray(u0)
        if u0.shape != self.state_shape:
            raise ValueError(f"{type(self).__name__}: `u0` must have shape {self.state_shape}, got {u0.shape}.")
        term = self.semilinear_term()
        u_hat = term.to_spectral(u0)
        return term.to_physical(jnp.exp(term.symbol_for(u_hat) * t) * u_hat)

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


def require_grid(
    owner: str, grid, ndim: tuple[int, ...] | None = None, periodic: bool = True, hint: str = ""
) -> Grid:
    if not isinstance(grid, Grid):
        raise TypeError(f"{owner}: `grid` must be a jaxpde.Grid, got {type(grid).__name__}.")
    if periodic and grid.boundary != "periodic":
        raise ValueError(f"{owner}: needs a periodic grid, got boundary={grid.boundary!r}{hint}.")
    if ndim is not None and grid.ndim not in ndim:
        raise ValueError(f"{owner}: needs a grid with {' or '.join(map(str, ndim))} dimension(s), got {grid.ndim}.")
    return grid


def check_point(owner: str, x, ndim: int) -> Float[Array, " ndim"]:
    """``x`` as a float array of shape ``(ndim,)`` (one point), or a clear error."""
    return as_point(owner, x, ndim)


def check_space_time(owner: str, x, t, ndim: int) -> tuple[Float[Array, " ndim"], Float[Array, ""]]:
    """One point ``x`` of shape ``(ndim,)`` and a time ``t`` in its dtype, or a clear error."""
    x = check_point(owner, x, ndim)
    if t is None:
        raise ValueError(f"{owner}: `t` is required (a time-dependent PDE), got None.")
    t = jnp.asarray(t)
    if t.shape != ():
        raise ValueError(f"{owner}: `t` must be a scalar time, got shape {t.shape}; use jax.vmap over points.")
    return x, t.astype(x.dtype)


# --------------------------------------------------------------------------------------------
# Spectral helpers
# --------------------------------------------------------------------------------------------


def wavenumber_norm_squared(grid: Grid) -> Float[Array, "*spectral"]:
    """$|k|^2 = \\sum_i k_i^2$ on the rfft grid (the symbol of $-\\Delta$)."""
    return jnp.broadcast_to(-laplacian_symbol(grid), grid.spectral_shape(real=True))
