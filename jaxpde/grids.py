"""Uniform grids on boxes: coordinates, spacings and Fourier wavenumbers.

A `Grid` describes where the unknowns of a discretised field live. Two boundary kinds:

* ``"periodic"``: ``N`` points per axis at ``x_j = origin + j h``, ``h = L / N``,
  ``j = 0, …, N-1``; the point at ``origin + L`` is the same as the one at ``origin``.
* ``"dirichlet"``: ``N`` *interior* nodes per axis at ``x_j = origin + j h``,
  ``h = L / (N + 1)``, ``j = 1, …, N``; the two boundary nodes carry the prescribed
  (by default homogeneous) values and are not unknowns.

A field on a grid is an array of shape ``grid.shape`` (one channel) — batching and channels
are added outside with `jax.vmap`, in keeping with equinox's one-sample convention.
"""

from __future__ import annotations

import math
from typing import Literal

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

BoundaryKind = Literal["periodic", "dirichlet"]
BOUNDARY_KINDS: tuple[str, ...] = ("periodic", "dirichlet")


class Grid(eqx.Module):
    """A uniform tensor-product grid on ``[origin, origin + lengths]`` in 1, 2 or 3 dimensions.

    Everything is static (Python ints/floats), so a grid is a hashable, jit-friendly pytree with
    no array leaves.

    **Arguments:**

    - `shape`: number of unknowns per axis, e.g. ``(128,)`` or ``(64, 64)``.
    - `lengths`: side lengths ``L`` per axis (default ``1.0`` for every axis).
    - `boundary`: ``"periodic"`` or ``"dirichlet"`` (the same on every axis).
    - `origin`: lower corner of the box (default ``0.0`` for every axis).
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    lengths: tuple[float, ...] = eqx.field(static=True)
    boundary: str = eqx.field(static=True)
    origin: tuple[float, ...] = eqx.field(static=True)

    def __init__(
        self,
        shape: int | tuple[int, ...],
        lengths: float | tuple[float, ...] = 1.0,
        boundary: BoundaryKind = "periodic",
        origin: float | tuple[float, ...] = 0.0,
    ):
        shape = _shape(shape)
        lengths = _per_axis(lengths, len(shape), "lengths")
        origin = _per_axis(origin, len(shape), "origin")
        if any(not (length > 0 and math.isfinite(length)) for length in lengths):
            raise ValueError(f"Grid: every entry of `lengths` must be positive and finite, got {lengths!r}.")
        if boundary not in BOUNDARY_KINDS:
            raise ValueError(
                f"Grid: unsupported boundary kind {boundary!r}; expected one of {BOUNDARY_KINDS}."
            )
        self.shape = shape
        self.lengths = lengths
        self.boundary = boundary
        self.origin = origin

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def spacing(self) -> tuple[float, ...]:
        """Grid spacing ``h`` per axis."""
        if self.boundary == "periodic":
            return tuple(length / n for length, n in zip(self.lengths, self.shape))
        return tuple(length / (n + 1) for length, n in zip(self.lengths, self.shape))

    @property
    def cell_volume(self) -> float:
        """``prod(h)``: the quadrature weight of one point (trapezoidal / rectangle rule)."""
        return math.prod(self.spacing)

    def axes(self) -> tuple[Float[Array, " n"], ...]:
        """The 1D coordinates of the unknowns along each axis."""
        out = []
        for n, h, x0 in zip(self.shape, self.spacing, self.origin):
            j = jnp.arange(n) if self.boundary == "periodic" else jnp.arange(1, n + 1)
            out.append(x0 + h * j)
        return tuple(out)

    def coordinates(self) -> Float[Array, "ndim *shape"]:
        """All point coordinates, stacked: ``coordinates()[i]`` is the ``i``-th coordinate field."""
        return jnp.stack(jnp.meshgrid(*self.axes(), indexing="ij"))

    def wavenumbers(self, real: bool = False) -> tuple[Float[Array, "..."], ...]:
        """Angular wavenumbers ``k = 2π m / L`` per axis, broadcastable against the spectrum.

        With ``real=True`` the last axis has the ``N // 2 + 1`` non-negative wavenumbers of
        `jnp.fft.rfftn`; otherwise every axis has the ``N`` wavenumbers of `jnp.fft.fftn`.
        Only defined on periodic grids.
        """
        if self.boundary != "periodic":
            raise ValueError(
                f"Grid.wavenumbers: Fourier wavenumbers need a periodic grid, this one is {self.boundary!r}."
            )
        ks = []
        for axis, (n, length) in enumerate(zip(self.shape, self.lengths)):
            last = axis == self.ndim - 1
            freq = jnp.fft.rfftfreq(n, d=length / n) if (real and last) else jnp.fft.fftfreq(n, d=length / n)
            k = 2 * jnp.pi * freq
            broadcast = [1] * self.ndim
            broadcast[axis] = k.shape[0]
            ks.append(k.reshape(broadcast))
        return tuple(ks)

    def spectral_shape(self, real: bool = True) -> tuple[int, ...]:
        """Shape of the (r)fft of a field on this grid."""
        if not real:
            return self.shape
        return (*self.shape[:-1], self.shape[-1] // 2 + 1)

    def check_field(self, field, name: str = "field", batch_dims: int = 0) -> None:
        """Raise a `ValueError` naming `name` if `field`'s trailing shape is not this grid's shape."""
        shape = tuple(np.shape(field))
        expected = self.shape
        if len(shape) != len(expected) + batch_dims or shape[batch_dims:] != expected:
            lead = "(batch..., )" if batch_dims else ""
            raise ValueError(
                f"`{name}` has shape {shape}, expected {lead}{expected} to match the grid "
                f"({self.boundary}, shape {self.shape})."
            )


def _is_int(n) -> bool:
    # bool is an int subclass, but Grid(True) is a mistake, not a grid of one point.
    return isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_))


def _shape(shape) -> tuple[int, ...]:
    """`shape` as a tuple of Python ints, or a `ValueError`/`TypeError` that names it."""
    expected = "an int or a tuple of 1 to 3 ints (points per axis), e.g. 64 or (64, 64)"
    if _is_int(shape):
        shape = (shape,)
    elif isinstance(shape, (tuple, list)):
        shape = tuple(shape)
    else:
        # A float (Grid(64.0)), an array or a string: say what is expected rather than letting
        # `tuple(64.0)` fail with "'float' object is not iterable".
        raise TypeError(f"Grid: `shape` must be {expected}, got {shape!r} ({type(shape).__name__}).")
    if not 1 <= len(shape) <= 3:
        raise ValueError(f"Grid: `shape` must have 1, 2 or 3 axes, got {shape!r}.")
    if any(not _is_int(n) for n in shape):
        raise TypeError(f"Grid: every entry of `shape` must be an int, got {shape!r}; expected {expected}.")
    if any(n < 2 for n in shape):
        raise ValueError(f"Grid: every entry of `shape` must be an integer >= 2, got {shape!r}.")
    return tuple(int(n) for n in shape)


def _per_axis(value, ndim: int, name: str) -> tuple[float, ...]:
    """One finite float per axis, from a number or a sequence; errors name the argument."""
    if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = (float(value),) * ndim
    else:
        try:
            value = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise TypeError(f"Grid: `{name}` must be a number or one number per axis, got {value!r}.") from None
        if len(value) != ndim:
            raise ValueError(f"Grid: `{name}` has {len(value)} entries, expected one per axis ({ndim}).")
    if not all(math.isfinite(v) for v in value):
        raise ValueError(f"Grid: every entry of `{name}` must be finite, got {value!r}.")
    return value
