r"""Observation operators: the map ``𝒪`` from a state on a grid to what a sensor records.

An inverse problem sees its state ``u`` only through ``y = 𝒪(u) + η``. Two operators, both linear
in ``u`` (so their adjoints are what reverse-mode autodiff builds, and the adjoint of the forward
solve carries the misfit back to the parameter):

- `PointObservation` — the values at arbitrary points ``x_j`` inside the domain, by multilinear
  interpolation between grid nodes. On a Dirichlet grid the nodes are the interior ones and the
  field is zero on the boundary, so a point between the last node and the wall interpolates
  towards zero; on a periodic grid the interpolation wraps around.
- `NodeObservation` — the values at a subset of grid nodes (multi-indices), exact sampling.

`add_noise` draws the noise model the misfit assumes: Gaussian, standard deviation ``σ =
level · rms(y)`` (a *relative* noise level, the convention of e.g. Kaipio & Somersalo,
"Statistical and Computational Inverse Problems", Springer 2005, ch. 3).
"""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from ..grids import Grid

__all__ = ["PointObservation", "NodeObservation", "add_noise", "random_points"]


class PointObservation(eqx.Module):
    r"""``𝒪(u)_j = (I_h u)(x_j)``: multilinear interpolation of a grid field at points ``x_j``.

    **Arguments:**

    - `grid`: the `Grid` the state lives on (Dirichlet: interior nodes, zero on the boundary;
      periodic: wraps).
    - `points`: shape ``(m, grid.ndim)`` (or ``(m,)`` in 1D), every point inside the closed
      domain ``[origin, origin + lengths]``; a point outside raises, naming it.

    Called on a field of shape ``grid.shape``, returns shape ``(m,)``.
    """

    grid: Grid = eqx.field(static=True)
    points: Float[Array, "m ndim"]

    def __init__(self, grid: Grid, points: ArrayLike):
        if not isinstance(grid, Grid):
            raise TypeError(f"PointObservation: `grid` must be a jaxpde Grid, got {type(grid).__name__}.")
        if grid.boundary not in ("dirichlet", "periodic"):
            raise ValueError(f"PointObservation: `grid` must be Dirichlet or periodic, got boundary={grid.boundary!r}.")
        values = np.asarray(points, dtype=float)
        if grid.ndim == 1 and values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2 or values.shape[1] != grid.ndim or values.shape[0] == 0:
            raise ValueError(
                f"PointObservation: `points` must have shape (m, {grid.ndim}) with m >= 1 (one row per point), "
                f"got shape {np.shape(points)}."
            )
        low, high = np.asarray(grid.origin, float), np.asarray(grid.origin, float) + np.asarray(grid.lengths, float)
        outside = np.any((values < low) | (values > high) | ~np.isfinite(values), axis=1)
        if outside.any():
            first = int(np.argmax(outside))
            raise ValueError(
                f"PointObservation: `points` must lie inside the domain [{low.tolist()}, {high.tolist()}]; "
                f"{int(outside.sum())} of {len(values)} do not (e.g. row {first}: {values[first].tolist()})."
            )
        self.grid = grid
        self.points = jnp.asarray(values)

    def __call__(self, u: Float[Array, "*shape"]) -> Float[Array, " m"]:
        grid = self.grid
        if tuple(u.shape) != tuple(grid.shape):
            raise ValueError(f"PointObservation: the state must have the grid's shape {grid.shape}, got {u.shape}.")
        dirichlet = grid.boundary == "dirichlet"
        # Dirichlet: pad the zero boundary values, so node i of the padded field sits at origin + i h.
        field = jnp.pad(u, 1) if dirichlet else u
        positions, weights_low = [], []
        for axis in range(grid.ndim):
            h = grid.spacing[axis]
            s = (self.points[:, axis].astype(u.dtype) - grid.origin[axis]) / h
            n = field.shape[axis]
            # Clip so that the last cell (a point on the far wall) interpolates inside the array.
            i = jnp.floor(s).astype(jnp.int32)
            i = jnp.clip(i, 0, n - 2) if dirichlet else i
            positions.append(i)
            weights_low.append(1 - (s - i))
        out = jnp.zeros(self.points.shape[0], u.dtype)
        for corner in itertools.product((0, 1), repeat=grid.ndim):
            index, weight = [], 1.0
            for axis, c in enumerate(corner):
                i = positions[axis] + c
                index.append(i if dirichlet else jnp.mod(i, field.shape[axis]))
                weight = weight * (weights_low[axis] if c == 0 else 1 - weights_low[axis])
            out = out + weight * field[tuple(index)]
        return out


class NodeObservation(eqx.Module):
    r"""``𝒪(u)_j = u[i_j]``: the state at grid nodes given by their multi-indices.

    **Arguments:**

    - `grid`: the `Grid` the state lives on.
    - `indices`: integer array of shape ``(m, grid.ndim)`` (or ``(m,)`` in 1D), each index inside
      ``grid.shape``.
    """

    grid: Grid = eqx.field(static=True)
    indices: Int[Array, "m ndim"]

    def __init__(self, grid: Grid, indices: ArrayLike):
        if not isinstance(grid, Grid):
            raise TypeError(f"NodeObservation: `grid` must be a jaxpde Grid, got {type(grid).__name__}.")
        values = np.asarray(indices)
        if grid.ndim == 1 and values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2 or values.shape[1] != grid.ndim or values.shape[0] == 0 or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(
                f"NodeObservation: `indices` must be an integer array of shape (m, {grid.ndim}) with m >= 1, "
                f"got shape {values.shape} and dtype {values.dtype}."
            )
        bad = np.any((values < 0) | (values >= np.asarray(grid.shape)), axis=1)
        if bad.any():
            first = int(np.argmax(bad))
            raise ValueError(
                f"NodeObservation: `indices` must lie inside the grid's shape {grid.shape}; "
                f"{int(bad.sum())} do not (e.g. row {first}: {values[first].tolist()})."
            )
        self.grid = grid
        self.indices = jnp.asarray(values, dtype=jnp.int32)

    def __call__(self, u: Float[Array, "*shape"]) -> Float[Array, " m"]:
        if tuple(u.shape) != tuple(self.grid.shape):
            raise ValueError(f"NodeObservation: the state must have the grid's shape {self.grid.shape}, got {u.shape}.")
        return u[tuple(self.indices.T)]


def random_points(key: PRNGKeyArray, grid: Grid, m: int, margin: float = 0.0) -> Float[Array, "m ndim"]:
    """``m`` points drawn uniformly in the domain, at least ``margin · length`` away from each wall."""
    if not (isinstance(m, int) and m >= 1):
        raise ValueError(f"random_points: `m` must be a positive integer, got {m!r}.")
    if not 0 <= margin < 0.5:
        raise ValueError(f"random_points: `margin` must lie in [0, 0.5), got {margin!r}.")
    lengths = jnp.asarray(grid.lengths)
    low = jnp.asarray(grid.origin) + margin * lengths
    return low + (1 - 2 * margin) * lengths * jax.random.uniform(key, (m, grid.ndim))


def add_noise(key: PRNGKeyArray, y: Float[Array, " m"], level: float) -> tuple[Float[Array, " m"], Float[Array, ""]]:
    r"""``y + σ ε``, ``ε ~ N(0, I)``, with ``σ = level · rms(y)``; returns the noisy data and ``σ``."""
    if not (level >= 0 and np.isfinite(level)):
        raise ValueError(f"add_noise: `level` must be a non-negative finite number (a relative noise level), got {level!r}.")
    sigma = level * jnp.sqrt(jnp.mean(y**2))
    return y + sigma * jax.random.normal(key, y.shape, y.dtype), sigma
