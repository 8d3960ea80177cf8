r"""The base of the stationary PDEs $\mathcal L u = f$: operator, source, solve and residual.

A stationary PDE is an `equinox.Module` holding its source $f$ (and its other parameters) and
offering what each consumer needs:

- ``operator(grid, ...)``: the discrete $\mathcal L_h$ on a grid, a `lineax.AbstractLinearOperator`
  (from `jaxpde.numerics.stencils`; matrix-free, differentiable in its coefficients);
- ``source_on_grid(grid, dtype)``: $f$ at the grid points;
- ``solve(grid, ...)``: the discrete solution of $\mathcal L_h u_h = f_h$ through
  `lineax.linear_solve`, differentiable in the coefficients and the source (implicit
  differentiation: one adjoint solve per reverse pass);
- ``residual(u_fn, x, t=None, args=None)``: $(\mathcal L u)(x) - f(x)$ for a function
  ``u_fn(x)``, the residual contract of `jaxpde.pdes._base` (``t`` is ignored; ``args`` carries
  coefficient functions such as Darcy's $a(x)$). It is built from ``pointwise_operator``, the
  only thing a subclass writes for a PINN;
- ``from_solution(u_fn, **fields)`` / ``exact_solution(x)``: the method of manufactured
  solutions (Roache, "Code verification by the method of manufactured solutions", J. Fluids
  Eng. 124, 2002): the source is $f = \mathcal L u$ by autodiff, so ``u_fn`` is exact.

Subclasses declare the fields ``source`` and ``solution`` and implement ``operator`` and
``solve`` (their arguments differ: Darcy's coefficient field is an input of the problem).
"""

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float, PyTree, Scalar

from ..grids import Grid
from ._base import check_point, not_provided

__all__ = ["AbstractStationaryPDE", "Source", "evaluate_on_grid"]

Source = float | Float[Array, "*shape"] | Callable[[Float[Array, " ndim"]], Scalar]


def evaluate_on_grid(fn: Callable[[Float[Array, " ndim"]], Scalar], grid: Grid, dtype=None) -> Float[Array, "*shape"]:
    """``fn`` (a pointwise function of one point ``x`` of shape ``(ndim,)``) at every grid point."""
    points = grid.coordinates().reshape(grid.ndim, -1).T
    if dtype is not None:
        points = points.astype(dtype)
    values = _vmap_points(fn, points)
    return values.reshape(grid.shape) if dtype is None else values.reshape(grid.shape).astype(dtype)


@eqx.filter_jit
def _vmap_points(fn, points):
    # Compiled rather than dispatched op by op: sources built by `from_solution` differentiate
    # twice, which is slow eagerly.
    return jax.vmap(scalar_function(fn, "fn"))(points)


def scalar_function(fn: Callable, name: str) -> Callable:
    """``fn`` with its value checked to be one number at a point, returned with shape ``()``."""

    def scalar_fn(x):
        value = fn(x)
        if jnp.size(value) != 1:
            raise ValueError(f"`{name}` must return a scalar at a point, got shape {jnp.shape(value)}.")
        return jnp.reshape(value, ())

    return scalar_fn


def pointwise_value(value: Source, x: Float[Array, " ndim"], name: str, owner: str) -> Scalar:
    """A scalar or a callable parameter at one point (a grid field has no pointwise value)."""
    if callable(value):
        return scalar_function(value, name)(x)
    value = jnp.asarray(value)
    if value.ndim != 0:
        raise ValueError(
            f"{owner}.residual: `{name}` is a grid field of shape {value.shape}; a pointwise residual needs "
            f"a scalar or a callable `{name}`."
        )
    return value


def sample_on_grid(value: Source, grid: Grid, name: str, dtype=None) -> Float[Array, "*shape"]:
    """A parameter given as a callable, a scalar or a field, as a field on ``grid``."""
    if callable(value):
        return evaluate_on_grid(value, grid, dtype)
    out = jnp.asarray(value, dtype=dtype)
    if out.ndim == 0:
        out = jnp.broadcast_to(out, grid.shape)
    else:
        grid.check_field(out, name)
    if not jnp.issubdtype(out.dtype, jnp.floating):
        out = out.astype(jnp.result_type(float))
    return out


class AbstractStationaryPDE(eqx.Module):
    r"""A stationary PDE $\mathcal L u = f$ (see the module docstring).

    The residual follows the one contract of the catalogue (`jaxpde.pdes._base`):
    ``residual(u_fn, x, t=None, args=None)`` $= (\mathcal L u)(x) - f(x)$ for ``u_fn(x)``,
    one point ``x`` of shape ``(d,)``; ``t`` is ignored, ``args`` carries coefficient functions.
    """

    source: eqx.AbstractVar[Source]
    solution: eqx.AbstractVar[Callable | None]

    time_dependent: ClassVar[bool] = False

    @abc.abstractmethod
    def operator(self, grid: Grid, *args, **kwargs) -> lx.AbstractLinearOperator:
        """The discrete operator $\\mathcal L_h$ on `grid`."""

    @abc.abstractmethod
    def solve(self, grid: Grid, *args, **kwargs) -> Float[Array, "*shape"]:
        """The discrete solution of $\\mathcal L_h u_h = f_h$ on `grid`."""

    def pointwise_operator(self, u_fn: Callable, x: Float[Array, " ndim"], args: PyTree = None) -> Scalar:
        """$(\\mathcal L u)(x)$ by automatic differentiation (optional: needed by `residual`)."""
        raise not_provided(self, "pointwise_operator")

    def source_on_grid(self, grid: Grid, dtype=None) -> Float[Array, "*shape"]:
        """$f$ at the grid points."""
        return sample_on_grid(self.source, grid, "source", dtype)

    def residual(self, u_fn: Callable, x: Float[Array, " ndim"], t=None, args: PyTree = None) -> Scalar:
        """$(\\mathcal L u)(x) - f(x)$ at one point ``x``, for ``u_fn(x)``; ``t`` is ignored."""
        owner = type(self).__name__
        x = jnp.asarray(x)
        if x.ndim != 1:
            raise ValueError(
                f"{owner}.residual: `x` must be one point of shape (ndim,), got shape {x.shape}; "
                "use jax.vmap over points."
            )
        x = check_point(f"{owner}.residual", x, x.shape[0])
        u_fn = scalar_function(u_fn, "u_fn")
        return self.pointwise_operator(u_fn, x, args) - pointwise_value(self.source, x, "source", owner)

    @classmethod
    def from_solution(cls, u_fn: Callable[[Float[Array, " ndim"]], Scalar], **fields):
        """The problem with the given `fields` solved by ``u_fn``: $f = \\mathcal L u$ by autodiff.

        ``u_fn`` must satisfy the boundary condition of the grid it is used on (vanish on the box
        boundary, or be periodic; periodic problems also need ``mean(f) = 0``).
        """
        u_fn = scalar_function(u_fn, "u_fn")
        pde = cls(**fields)
        return cls(**fields, source=lambda x: pde.pointwise_operator(u_fn, x), solution=u_fn)

    def exact_solution(self, x: Float[Array, " ndim"]) -> Scalar:
        """The manufactured solution (see `from_solution`)."""
        if self.solution is None:
            raise ValueError(
                f"{type(self).__name__}.exact_solution: no exact solution is known; build with "
                f"{type(self).__name__}.from_solution."
            )
        return scalar_function(self.solution, "solution")(x)
