r"""Matrix-free finite-volume stencils for elliptic operators, as lineax linear operators.

`DiffusionOperator` is the standard (2d+1)-point discretisation — 3-point in 1D, 5-point in 2D,
7-point in 3D — of

.. math::

    (A u)(x) = -\nabla \cdot \big(a(x) \nabla u(x)\big) + \sigma\, u(x),

on a `jaxpde.Grid`, with the coefficient ``a`` given at the grid's nodes. Along each axis, with
spacing ``h`` and the flux through the face between nodes ``i`` and ``i+1``

.. math::

    F_{i+1/2} = a_{i+1/2}\, \frac{u_{i+1} - u_i}{h}, \qquad
    a_{i+1/2} = \frac{2 a_i a_{i+1}}{a_i + a_{i+1}} \quad\text{(harmonic mean)},

the operator is ``(A u)_i = -Σ_axes (F_{i+1/2} - F_{i-1/2}) / h + σ u_i``. The harmonic mean is
the face conductivity of two cells in series: it keeps the flux continuous across a jump of
``a`` and gives second-order accuracy where ``a`` is smooth (the FNO-paper Darcy data has
piecewise-constant ``a`` ∈ {3, 12}).

Boundaries (from ``grid.boundary``):

* ``"dirichlet"``: homogeneous values ``u = 0`` on the boundary nodes, which are eliminated; the
  conductivity of a boundary face is that of the adjacent interior node (there is no
  coefficient value on the boundary). ``A`` is symmetric positive definite for ``a > 0``,
  ``σ ≥ 0``.
* ``"periodic"``: the faces wrap around. For ``σ = 0`` the operator is only positive
  *semi*-definite: constants are its null space, and ``A u = b`` is solvable only for
  ``mean(b) = 0`` (its solution is then unique up to a constant). CG converges on such a
  consistent system from a mean-zero start (every Krylov vector is mean-zero, up to rounding).
  The PDE solvers in `jaxpde.pdes.elliptic` project the right-hand side onto mean zero and add
  ``(s/n) 11ᵀ`` to lift the constants out of the null space, which makes the system definite
  with the same (mean-zero) solution. Pass ``shift=σ > 0`` for a definite operator instead.

`HelmholtzOperator` is ``-Δ - k²`` with the same Laplacian: symmetric, but indefinite once ``k²``
exceeds the smallest eigenvalue of ``-Δ``, so it is tagged symmetric only.

Both act on fields of shape ``grid.shape`` (``in_structure() == out_structure()``), compute
``diagonal()`` in O(n) (for Jacobi preconditioning), and assemble into a
`jaxpde.numerics.sparse.SparseOperator` with ``to_sparse()`` by index arithmetic (no dense
intermediate), on the row-major flattening of the field. Everything is differentiable with
respect to the coefficient field and the wavenumber.
"""

from __future__ import annotations

import functools as ft
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jax.experimental import sparse as jsparse
from jaxtyping import Array, ArrayLike, Float

from ..grids import BOUNDARY_KINDS, Grid
from .sparse import SparseOperator, register_structure_queries

__all__ = ["DiffusionOperator", "HelmholtzOperator", "face_coefficients"]


def _check_grid(grid: Grid, owner: str) -> None:
    if not isinstance(grid, Grid):
        raise TypeError(f"{owner}: `grid` must be a jaxpde.Grid, got {type(grid).__name__}.")
    # A Grid validates its boundary kind when built; this guards against kinds added to `Grid`
    # later (e.g. Neumann) that these stencils do not implement.
    if grid.boundary not in ("dirichlet", "periodic"):
        raise ValueError(
            f"{owner}: unsupported boundary kind {grid.boundary!r}; the stencils implement "
            f"'dirichlet' and 'periodic' (Grid knows {BOUNDARY_KINDS})."
        )


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _as_field(value: ArrayLike, grid: Grid, name: str, owner: str, dtype=None) -> Float[Array, "..."]:
    """A scalar broadcast to ``grid.shape``, or a field of exactly ``grid.shape``, as a float array."""
    value = jnp.asarray(value, dtype=dtype)
    if not jnp.issubdtype(value.dtype, jnp.floating):
        if jnp.issubdtype(value.dtype, jnp.complexfloating):
            raise ValueError(f"{owner}: `{name}` must be real, got dtype {value.dtype}.")
        value = value.astype(jnp.result_type(float))
    if value.ndim == 0:
        return jnp.broadcast_to(value, grid.shape)
    if value.shape != grid.shape:
        raise ValueError(
            f"{owner}: `{name}` has shape {value.shape}, expected a scalar or {grid.shape} to match "
            f"the grid ({grid.boundary}, shape {grid.shape})."
        )
    return value


def _check_positive(field: Float[Array, "..."], name: str, owner: str) -> Float[Array, "..."]:
    """ValueError for a concrete field with a value that is not positive and finite; under jit an
    `equinox.branched_error_if` runtime check that says which kind of bad value it met.

    Under `equinox.filter_jit` that check raises an `equinox.EquinoxRuntimeError` with the
    message; under a plain `jax.jit` JAX wraps the same message in a `jax.errors.JaxRuntimeError`
    (``INTERNAL: CpuCallback error …``), where it is the last line of the embedded traceback."""
    expected = (
        f"{owner}: `{name}` must be positive and finite everywhere (a symmetric positive definite operator "
        "needs it > 0)"
    )
    if _is_concrete(field):
        values = np.asarray(field)
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            raise ValueError(f"{expected}; {int(bad.sum())} of {values.size} values are not (e.g. {values[bad][0]!r}).")
        return field
    kinds = ("a NaN or infinite value", "a negative value", "a zero value")
    conditions = [~jnp.all(jnp.isfinite(field)), jnp.any(field < 0), jnp.any(field == 0)]
    index = jnp.select(conditions, [0, 1, 2], 0)
    messages = tuple(f"{expected}, got {kind} (checked at run time, under jit)." for kind in kinds)
    return eqx.branched_error_if(field, conditions[0] | conditions[1] | conditions[2], index, messages)


def _harmonic_mean(a, b):
    # 2ab/(a + b), written so that a·b cannot overflow for large (e.g. lognormal) coefficients.
    return 2 * a * (b / (a + b))


def face_coefficients(
    coefficient: Float[Array, "*shape"], grid: Grid
) -> tuple[Float[Array, "..."], ...]:
    r"""Face conductivities ``a_{i+1/2}`` per axis, by harmonic means of neighbouring nodes.

    Along axis ``d`` with ``N`` nodes the result has ``N + 1`` faces for a Dirichlet grid (face
    ``j`` lies between nodes ``j-1`` and ``j``; the two boundary faces take the adjacent node's
    value) and ``N`` faces for a periodic grid (face ``j`` lies between nodes ``j`` and
    ``j+1 mod N``). The other axes keep their length.
    """
    faces = []
    for axis in range(grid.ndim):
        a = jnp.moveaxis(coefficient, axis, 0)
        if grid.boundary == "periodic":
            faces_axis = _harmonic_mean(a, jnp.roll(a, -1, axis=0))
        else:
            faces_axis = jnp.concatenate([a[:1], _harmonic_mean(a[:-1], a[1:]), a[-1:]], axis=0)
        faces.append(jnp.moveaxis(faces_axis, 0, axis))
    return tuple(faces)


@ft.partial(jax.jit, static_argnums=1)
def _face_weights(coefficient: Float[Array, "*shape"], grid: Grid) -> tuple[Float[Array, "..."], ...]:
    """``a_{i+1/2} / h²`` per axis. Compiled once per grid, rather than dispatched op by op, since
    operators are often built outside jit (eager dispatch of these few ops costs ~1 s per shape)."""
    return tuple(f / (h * h) for f, h in zip(face_coefficients(coefficient, grid), grid.spacing))


# The stencil helpers are jitted so that eager use (outside any jit) compiles one fused program
# per shape instead of dispatching a dozen small ops; inside a jit they are simply inlined.
@ft.partial(jax.jit, static_argnums=2)
def _apply_divergence_form(
    weights: tuple[Float[Array, "..."], ...], u: Float[Array, "*shape"], boundary: str
) -> Float[Array, "*shape"]:
    """``-Σ_axes (F_{i+1/2} - F_{i-1/2}) / h`` with ``weights = a_{i+1/2} / h²``."""
    out = jnp.zeros_like(u)
    for axis, w in enumerate(weights):
        if boundary == "periodic":
            flux = w * (jnp.roll(u, -1, axis=axis) - u)
            out = out - (flux - jnp.roll(flux, 1, axis=axis))
        else:
            pad = [(0, 0)] * u.ndim
            pad[axis] = (1, 1)
            flux = w * jnp.diff(jnp.pad(u, pad), axis=axis)
            out = out - jnp.diff(flux, axis=axis)
    return out


@ft.partial(jax.jit, static_argnums=1)
def _divergence_form_diagonal(weights: tuple[Float[Array, "..."], ...], boundary: str) -> Float[Array, "*shape"]:
    diag = 0
    for axis, w in enumerate(weights):
        if boundary == "periodic":
            diag = diag + w + jnp.roll(w, 1, axis=axis)
        else:
            n = w.shape[axis] - 1
            diag = diag + jax.lax.slice_in_dim(w, 1, n + 1, axis=axis) + jax.lax.slice_in_dim(w, 0, n, axis=axis)
    return diag


@ft.partial(jax.jit, static_argnums=2)
def _assemble(
    weights: tuple[Float[Array, "..."], ...], extra_diagonal: Float[Array, "..."], grid: Grid
) -> jsparse.BCOO:
    """BCOO matrix of the divergence-form stencil plus ``extra_diagonal`` (a scalar or a field),
    on the C-order flattening of ``grid.shape``.

    Indices come from NumPy integer arithmetic on the grid at trace time (static, O(n) memory);
    values are the JAX face weights, so the matrix stays differentiable in the coefficient.
    Compiled once per grid, like `_face_weights`.
    """
    diagonal = jnp.broadcast_to(_divergence_form_diagonal(weights, grid.boundary) + extra_diagonal, grid.shape)
    index = np.arange(grid.size, dtype=np.int32).reshape(grid.shape)
    rows, cols, values = [index.ravel()], [index.ravel()], [diagonal.ravel()]
    for axis, w in enumerate(weights):
        n = grid.shape[axis]
        if grid.boundary == "periodic":
            left = index
            right = np.roll(index, -1, axis=axis)
            face = w
        else:
            left = np.take(index, np.arange(n - 1), axis=axis)
            right = np.take(index, np.arange(1, n), axis=axis)
            face = jax.lax.slice_in_dim(w, 1, n, axis=axis)  # interior faces only
        for r, c in ((left, right), (right, left)):
            rows.append(r.ravel())
            cols.append(c.ravel())
            values.append(-face.ravel())
    indices = jnp.asarray(np.stack([np.concatenate(rows), np.concatenate(cols)], axis=1))
    return jsparse.BCOO((jnp.concatenate(values), indices), shape=(grid.size, grid.size))


class DiffusionOperator(lx.AbstractLinearOperator):
    r"""``A u = -∇·(a ∇u) + σ u`` on a grid, matrix-free, with harmonic-mean face coefficients.

    Symmetric positive (semi)definite: tagged `lineax.symmetric_tag` and
    `lineax.positive_semidefinite_tag`, so `lineax.CG` accepts it. Definite for Dirichlet grids,
    or for ``shift > 0``; for a periodic grid with ``shift = 0`` constants are its null space (see
    the module docstring).

    **Arguments:**

    - `grid`: a `jaxpde.Grid` (``"dirichlet"`` or ``"periodic"``).
    - `coefficient`: ``a``, a positive scalar or a positive field of shape ``grid.shape``
      (default ``1``: the negative Laplacian). Checked to be positive and finite: a
      `ValueError` for concrete values; under jit a runtime error whose message names the
      argument and the kind of bad value (NaN/Inf, negative, zero) — an
      `equinox.EquinoxRuntimeError` under `equinox.filter_jit`, the same text inside a
      `jax.errors.JaxRuntimeError` under plain `jax.jit`.
    - `shift`: ``σ ≥ 0``, a Python float (it decides the tags, which are static).
    - `dtype`: floating dtype of the operator; defaults to the coefficient's (or JAX's default
      float for a Python scalar).

    The fields are the face weights ``a_{i+1/2} / h²`` per axis (so `mv` is multiplies and adds
    only), the grid and the shift.
    """

    weights: tuple[Float[Array, "..."], ...]
    grid: Grid = eqx.field(static=True)
    shift: float = eqx.field(static=True)
    tags: frozenset = eqx.field(static=True)

    def __init__(self, grid: Grid, coefficient: ArrayLike = 1.0, shift: float = 0.0, dtype=None):
        owner = "DiffusionOperator"
        _check_grid(grid, owner)
        if not isinstance(shift, (int, float, np.integer, np.floating)) or not (math.isfinite(shift) and shift >= 0):
            raise ValueError(
                f"{owner}: `shift` must be a finite Python float >= 0 (it decides the static tags), got {shift!r}; "
                "for -Δ - k² use HelmholtzOperator."
            )
        a = _check_positive(_as_field(coefficient, grid, "coefficient", owner, dtype), "coefficient", owner)
        self.weights = _face_weights(a, grid)
        self.grid = grid
        self.shift = float(shift)
        self.tags = frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})

    @property
    def dtype(self):
        return self.weights[0].dtype

    @property
    def is_singular(self) -> bool:
        """True for a periodic grid without shift (constants are in the null space)."""
        return self.grid.boundary == "periodic" and self.shift == 0.0

    def mv(self, vector: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        out = _apply_divergence_form(self.weights, vector, self.grid.boundary)
        if self.shift:
            out = out + self.shift * vector
        return out

    def diagonal(self) -> Float[Array, " n"]:
        """The diagonal of the matrix (flat, C order), in O(n): what Jacobi needs."""
        return (_divergence_form_diagonal(self.weights, self.grid.boundary) + self.shift).ravel()

    def tridiagonal(self):
        return self.to_sparse().tridiagonal()

    def to_sparse(self) -> SparseOperator:
        """The same operator as a BCOO `SparseOperator` on flattened fields, with the same tags."""
        shift = jnp.asarray(self.shift, self.dtype)
        return SparseOperator(_assemble(self.weights, shift, self.grid), self.tags)

    def as_matrix(self) -> Float[Array, "n n"]:
        """Dense ``(n, n)`` matrix — for small grids and tests only; use `to_sparse` otherwise."""
        return self.to_sparse().as_matrix()

    def transpose(self) -> DiffusionOperator:
        return self

    def conj(self) -> DiffusionOperator:
        return self

    def in_structure(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(self.grid.shape, self.dtype)

    def out_structure(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(self.grid.shape, self.dtype)


class HelmholtzOperator(lx.AbstractLinearOperator):
    r"""``A u = -Δu - k² u`` on a grid, matrix-free (the Laplacian of `DiffusionOperator`, ``a = 1``).

    Symmetric but in general indefinite, so tagged `lineax.symmetric_tag` only: solve it with
    `lineax.GMRES` / `lineax.BiCGStab` (or `lineax.LU` on small grids), not CG. It is singular
    when ``k²`` equals an eigenvalue of the discrete ``-Δ``.

    **Arguments:**

    - `grid`: a `jaxpde.Grid`.
    - `wavenumber`: ``k``, a real scalar or a real field of shape ``grid.shape`` (a
      heterogeneous medium); differentiable.
    - `dtype`: floating dtype; defaults to the wavenumber's (or JAX's default float).
    """

    laplacian: DiffusionOperator
    wavenumber_squared: Float[Array, "..."]
    tags: frozenset = eqx.field(static=True)

    def __init__(self, grid: Grid, wavenumber: ArrayLike, dtype=None):
        owner = "HelmholtzOperator"
        _check_grid(grid, owner)
        k = jnp.asarray(wavenumber, dtype=dtype)
        if not jnp.issubdtype(k.dtype, jnp.floating):
            if jnp.issubdtype(k.dtype, jnp.complexfloating):
                raise ValueError(f"{owner}: `wavenumber` must be real, got dtype {k.dtype}.")
            k = k.astype(jnp.result_type(float))
        if k.ndim != 0 and k.shape != grid.shape:
            raise ValueError(
                f"{owner}: `wavenumber` has shape {k.shape}, expected a scalar or {grid.shape} to match "
                f"the grid ({grid.boundary}, shape {grid.shape})."
            )
        if _is_concrete(k):
            if not np.all(np.isfinite(np.asarray(k))):
                raise ValueError(f"{owner}: `wavenumber` must be finite, got {np.asarray(k)!r}.")
        else:
            k = eqx.error_if(
                k, ~jnp.all(jnp.isfinite(k)), f"{owner}: `wavenumber` must be finite, got a NaN or infinite value "
                "(checked at run time, under jit)."
            )
        self.laplacian = DiffusionOperator(grid, jnp.ones((), k.dtype))
        self.wavenumber_squared = k * k
        self.tags = frozenset({lx.symmetric_tag})

    @property
    def grid(self) -> Grid:
        return self.laplacian.grid

    def mv(self, vector: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        return self.laplacian.mv(vector) - self.wavenumber_squared * vector

    def _diagonal_field(self) -> Float[Array, "*shape"]:
        lap = _divergence_form_diagonal(self.laplacian.weights, self.grid.boundary)
        return lap - jnp.broadcast_to(self.wavenumber_squared, self.grid.shape)

    def diagonal(self) -> Float[Array, " n"]:
        return self._diagonal_field().ravel()

    def tridiagonal(self):
        return self.to_sparse().tridiagonal()

    def to_sparse(self) -> SparseOperator:
        """The same operator as a BCOO `SparseOperator` on flattened fields (tagged symmetric)."""
        matrix = _assemble(self.laplacian.weights, -self.wavenumber_squared, self.grid)
        return SparseOperator(matrix, self.tags)

    def as_matrix(self) -> Float[Array, "n n"]:
        return self.to_sparse().as_matrix()

    def transpose(self) -> HelmholtzOperator:
        return self

    def conj(self) -> HelmholtzOperator:
        return self

    def in_structure(self) -> jax.ShapeDtypeStruct:
        return self.laplacian.in_structure()

    def out_structure(self) -> jax.ShapeDtypeStruct:
        return self.laplacian.out_structure()


register_structure_queries(DiffusionOperator)
register_structure_queries(HelmholtzOperator)
