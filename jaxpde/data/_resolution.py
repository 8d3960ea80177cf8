r"""Coarser resolutions by keeping every ``r``-th point (the FNO convention).

The FNO datasets are solved on a fine grid and trained on a coarser one obtained by plain
injection, ``x[::r]`` along each spatial axis — no averaging, so the coarse values are exact
point values of the fine solution. Two kinds of point sets need different divisibility:

- **periodic** (``closed=False``): ``n`` points ``x_j = j L/n``; the point at ``L`` is the one
  at ``0``. Every ``r``-th point is again a uniform periodic grid iff ``r`` divides ``n``:
  ``8192 → 1024`` with ``r = 8``.
- **closed node grids** (``closed=True``): ``n`` nodes ``x_j = j/(n-1)`` including *both* end
  points, as the FNO Darcy data on ``[0, 1]²`` (421 nodes, 2 of them on the boundary). Every
  ``r``-th node is again a node grid with both end points iff ``r`` divides ``n - 1``:
  ``421 → 85`` with ``r = 5`` (``x = 0, 5/420, …, 1``), ``253 → 85`` with ``r = 3``. A 241-node
  grid has no integer factor that gives 85 nodes (``240/84`` is not an integer); ``241 → 81``
  (``r = 3``) or ``241 → 121`` (``r = 2``) are its exact coarsenings.

Any other combination would silently drop the far end point or produce a non-uniform grid, so
it is an error here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jaxtyping import Array, Shaped

__all__ = ["coarse_size", "subsample"]


def coarse_size(n: int, factor: int, closed: bool = False) -> int:
    """The number of points left by keeping every `factor`-th of `n` (see the module docstring)."""
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"subsample: `factor` must be an integer >= 1, got {factor!r}.")
    if closed:
        if n < 2 or (n - 1) % factor:
            raise ValueError(
                f"subsample: a closed node grid of {n} points (both end points included) coarsens by "
                f"`factor`={factor} only if factor divides n - 1 = {n - 1}; "
                f"divisors of {n - 1} that work: {_divisors(n - 1)}."
            )
        return (n - 1) // factor + 1
    if n % factor:
        raise ValueError(
            f"subsample: a periodic grid of {n} points coarsens by `factor`={factor} only if factor divides "
            f"{n}; divisors that work: {_divisors(n)}."
        )
    return n // factor


def subsample(
    array: Shaped[Array | np.ndarray, "..."],
    factor: int,
    *,
    axes: Sequence[int] = (-1,),
    closed: bool = False,
) -> Shaped[Array | np.ndarray, "..."]:
    """Every `factor`-th point along each of `axes` (``array[..., ::factor]``), after checking
    that the coarse points form the same kind of grid (see the module docstring).

    Works on NumPy and JAX arrays (and inside `jax.jit`: it is basic slicing).
    """
    shape = np.shape(array)
    index = [slice(None)] * len(shape)
    for axis in axes:
        if not -len(shape) <= axis < len(shape):
            raise ValueError(f"subsample: axis {axis} is out of range for an array of shape {shape}.")
        coarse_size(shape[axis], factor, closed)
        index[axis] = slice(None, None, factor)
    return array[tuple(index)]


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0][:12]
