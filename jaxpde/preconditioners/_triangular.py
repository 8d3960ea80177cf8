r"""Sparse entries of an operator, and level-scheduled sparse triangular solves, for SSOR and IC(0).

SSOR and IC(0) need what a matrix-free operator does not give: the entries of ``A``. This module
reads them from the operators that store them — jaxpde's stencil operators (`DiffusionOperator`,
`HelmholtzOperator`: their ``to_sparse()``), `jaxpde.numerics.sparse.SparseOperator` (a BCOO
matrix with a static copy of its pattern) and `lineax.MatrixLinearOperator` (dense; every entry is in the pattern) — and solves
with the triangular factors they build.

**Static pattern, traced values.** The sparsity pattern decides the shape of the computation, so
it is read on the host, at trace time, as NumPy integers: a stencil operator's from its static
grid, a `SparseOperator`'s from its static field `pattern` (a host copy of the BCOO indices,
taken when the operator was built from concrete ones; the indices themselves are traced inside
`jax.jit` and inside `lineax.linear_solve`). The *values* may be traced: the preconditioner is
built inside `jit`, `vmap` and `grad`, and inside a solver's ``init``.

**Level scheduling** (Anderson & Saad 1989; Saad, *Iterative Methods for Sparse Linear Systems*,
2nd ed., §11.6). Row ``i`` of a lower triangular solve ``T y = b``,

.. math::

    y_i = \Big(b_i - \sum_{j < i,\ T_{ij} \ne 0} T_{ij} y_j\Big) / T_{ii},

needs the ``y_j`` it couples to, and nothing else. Its *level* is one more than the largest level
among those ``j`` (0 if none); all rows of one level are independent, so the solve is a
`jax.lax.scan` over levels, each step a padded gather, a row sum and a contiguous write. For the
2-D 5-point stencil in natural order the levels are the anti-diagonals: ``2√n - 1`` sequential
steps instead of ``n``. A level wider than ``⌈2n / levels⌉`` is split into several steps (rows of
one level stay independent in any order), which bounds the padded work by about ``3n`` rows for
any pattern. Measured at 256² (5-point, float32, 2 shared CPU cores): 511 steps of width 256,
one sweep 1.6–1.9 ms, against 0.16 ms for a stencil mat-vec — sequential depth, not arithmetic,
is the cost, which is why the matrix-free `Chebyshev` and multigrid smoothers suit accelerators.
"""

import functools
import hashlib
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array, Float, Int, PyTree

from ..numerics.sparse import SparseOperator, register_structure_queries
from ..numerics.stencils import DiffusionOperator, HelmholtzOperator

SUPPORTED = (
    "jaxpde's stencil operators (DiffusionOperator, HelmholtzOperator), jaxpde.numerics.sparse.SparseOperator "
    "(with a static sparsity pattern) and lineax.MatrixLinearOperator, optionally tagged, negated or scaled "
    "(lineax's Tagged/Neg/Mul/DivLinearOperator)"
)


# ----------------------------------------------------------------------------------------------
# Reading the entries: a static (host) pattern and traced values.
# ----------------------------------------------------------------------------------------------


class Entries:
    """The stored entries of a square operator: ``A[rows[e], cols[e]] = values[e]``.

    `rows`, `cols` are NumPy (static, canonical: unique and sorted by row then column); `values`
    is a JAX array, possibly traced. `shape` is the operator's input (= output) shape: vectors
    are flattened in C order, as `to_sparse` does. Lives only while a preconditioner is built.
    """

    def __init__(self, rows: np.ndarray, cols: np.ndarray, values: Float[Array, " nnz"], shape: tuple[int, ...]):
        self.rows, self.cols, self.values, self.shape = rows, cols, values, tuple(shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _unwrap(operator):
    """The stored operator inside tags, negations and scalings (CG negates a negative definite
    operator; implicit steps scale), and the scalar factor they apply (``None`` for 1)."""
    factor = None
    while isinstance(operator, (lx.TaggedLinearOperator, lx.NegLinearOperator, lx.MulLinearOperator, lx.DivLinearOperator)):
        if isinstance(operator, lx.NegLinearOperator):
            factor = -1 if factor is None else -factor
        elif isinstance(operator, lx.MulLinearOperator):
            factor = operator.scalar if factor is None else factor * operator.scalar
        elif isinstance(operator, lx.DivLinearOperator):
            factor = 1 / operator.scalar if factor is None else factor / operator.scalar
        operator = operator.operator
    return operator, factor


@functools.lru_cache(maxsize=16)
def _stencil_indices(grid) -> np.ndarray:
    """The BCOO indices of a stencil operator's ``to_sparse()``: determined by its static grid
    alone, so computed on a unit-coefficient operator of the same grid — eagerly, also while
    the real (traced) operator's values are being traced."""
    with jax.ensure_compile_time_eval():
        return np.asarray(DiffusionOperator(grid, 1.0).to_sparse().matrix.indices)


def _canonical(indices: np.ndarray, n: int):
    """Unique, row-major-sorted ``(rows, cols)`` of BCOO `indices`, the positions of the stored
    entries that are in range (BCOO pads with out-of-range indices), and where each lands."""
    rows, cols = indices[:, 0].astype(np.int64), indices[:, 1].astype(np.int64)
    keep = np.flatnonzero((rows >= 0) & (rows < n) & (cols >= 0) & (cols < n))
    keys, slot = np.unique(rows[keep] * n + cols[keep], return_inverse=True)
    return (keys // n).astype(np.int32), (keys % n).astype(np.int32), keep, slot.reshape(-1)


def entries(operator: lx.AbstractLinearOperator, owner: str) -> Entries:
    """The stored entries of `operator`, or a `TypeError` that names the supported operators."""
    inner, factor = _unwrap(operator)
    e = _entries(inner, owner)
    if factor is not None:
        e.values = e.values * jnp.asarray(factor).astype(e.values.dtype)
    return e


def _entries(inner, owner: str) -> Entries:
    if isinstance(inner, (DiffusionOperator, HelmholtzOperator)):
        matrix = inner.to_sparse().matrix
        indices = _stencil_indices(inner.grid)
        shape = inner.in_structure().shape
    elif isinstance(inner, SparseOperator):
        matrix = inner.matrix
        # The static copy, not matrix.indices: those are traced once the operator crosses jit or
        # lineax.linear_solve (which traces the operator's leaves before the solver's init).
        if inner.pattern is None:
            raise ValueError(
                f"{owner}: the sparsity pattern of the SparseOperator is traced and it has no static copy, but the "
                "pattern must be static (it decides the shape of the factorisation). Build the SparseOperator "
                "from concrete indices (outside jax.jit, or from NumPy indices), or pass `pattern=` (another "
                "operator's `.pattern`); its values (matrix.data) may be traced."
            )
        indices = inner.pattern.indices
        shape = inner.in_structure().shape
    elif isinstance(inner, lx.MatrixLinearOperator):
        matrix = inner.matrix
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"{owner}: the matrix must be square, got shape {matrix.shape}.")
        n = matrix.shape[0]
        rows, cols = np.divmod(np.arange(n * n, dtype=np.int64), n)
        return Entries(rows.astype(np.int32), cols.astype(np.int32), matrix.reshape(-1), (n,))
    else:
        raise TypeError(
            f"{owner}: needs the entries of the operator, which only {SUPPORTED} provide; got "
            f"{type(inner).__name__}. For a matrix-free operator use Jacobi (with `stencil_reach`) or Chebyshev."
        )
    n = math.prod(shape)
    rows, cols, keep, slot = _canonical(indices, n)
    values = jnp.zeros(rows.shape[0], matrix.dtype).at[slot].add(matrix.data[keep])
    return Entries(rows, cols, values, tuple(shape))


# ----------------------------------------------------------------------------------------------
# Host-side schedules of triangular solves.
# ----------------------------------------------------------------------------------------------


class LowerPattern:
    """The lower triangle of a symmetric pattern: strictly lower entries in row-major order
    (`rows`, `cols`, and `source`, their positions in the full entry list) and the positions of
    the diagonal entries (`diagonal`; ``-1`` where the pattern has none)."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, n: int):
        strict = np.flatnonzero(rows > cols)
        self.n = n
        self.rows, self.cols, self.source = rows[strict], cols[strict], strict
        self.diagonal = np.full(n, -1, np.int64)
        on = np.flatnonzero(rows == cols)
        self.diagonal[rows[on]] = on


class Schedule:
    """A level schedule of the triangular solve ``y_i = (b_i - Σ_e T_e y_{cols[e]}) / d_i`` over
    the entries ``e`` with ``rows[e] = i``; `lower` says whether ``cols[e] < rows[e]`` (forward)
    or ``>`` (backward).

    Arrays (all NumPy; `steps` × `width` slots, padding marked by out-of-range indices):

    - `row[s, w]`: the row solved in slot ``(s, w)``, ``n`` for padding;
    - `entry[s, w, r]`: the entries of that row (sorted by column), ``nnz`` for padding;
    - `gather[s, w, r]`: where ``y_{cols[e]}`` sits in the slot buffer (``steps·width`` — a slot
      that stays zero — for padding);
    - `position[i]`: the slot of row ``i`` in the buffer.
    """

    def __init__(self, rows: np.ndarray, cols: np.ndarray, n: int, lower: bool):
        nnz = rows.shape[0]
        order = np.lexsort((cols, rows))
        rows, cols, ids = rows[order], cols[order], order
        starts = np.searchsorted(rows, np.arange(n + 1))
        level = np.zeros(n, np.int64)
        cols_list, starts_list = cols.tolist(), starts.tolist()
        levels = level.tolist()
        for i in range(n) if lower else range(n - 1, -1, -1):
            a, b = starts_list[i], starts_list[i + 1]
            if a < b:
                levels[i] = 1 + max(levels[j] for j in cols_list[a:b])
        level = np.asarray(levels, np.int64)
        num_levels = int(level.max()) + 1 if n else 0
        counts = np.bincount(level, minlength=num_levels)
        width = int(min(counts.max(), max(1, math.ceil(2 * n / max(num_levels, 1)))))
        steps_per_level = -(-counts // width)
        steps = int(steps_per_level.sum())
        # Rows by level, then by index; chunk each level into `width`-sized steps.
        by_level = np.argsort(level, kind="stable")
        level_start = np.concatenate([[0], np.cumsum(counts)])
        step_start = np.concatenate([[0], np.cumsum(steps_per_level)])
        rank = np.arange(n) - level_start[level[by_level]]
        step = step_start[level[by_level]] + rank // width
        slot = rank % width
        position = np.empty(n, np.int64)
        position[by_level] = step * width + slot
        row = np.full((steps, width), n, np.int64)
        row[step, slot] = by_level
        per_row = np.diff(starts)
        reach = int(per_row.max()) if n and nnz else 0
        entry = np.full((steps, width, max(reach, 1)), nnz, np.int64)
        gather = np.full((steps, width, max(reach, 1)), steps * width, np.int64)
        if nnz:
            k = np.arange(nnz) - starts[rows]  # rank of each entry within its row
            s, w = np.divmod(position[rows], width)
            entry[s, w, k] = ids
            gather[s, w, k] = position[cols]
        self.n, self.nnz, self.lower = n, nnz, lower
        self.steps, self.width, self.num_levels = steps, width, num_levels
        self.row, self.entry, self.gather, self.position = row, entry, gather, position


class _Cache:
    """A small FIFO cache of host-side preprocessing, keyed by a digest of the pattern, so that
    rebuilding a preconditioner for a new matrix with the same pattern costs no host work."""

    def __init__(self, size: int = 16):
        self.size, self.items = size, {}

    def get(self, key, make):
        if key not in self.items:
            if len(self.items) >= self.size:
                self.items.pop(next(iter(self.items)))
            self.items[key] = make()
        return self.items[key]


_CACHE = _Cache()


def pattern_key(tag: str, *arrays: np.ndarray) -> tuple:
    digest = hashlib.sha1()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
        digest.update(str(a.shape).encode())
    return tag, digest.hexdigest()


def cached(key, make):
    return _CACHE.get(key, make)


def lower_schedules(e: Entries) -> tuple[LowerPattern, Schedule, Schedule]:
    """The lower triangle of `e`'s pattern with the forward schedule of ``L`` and the backward
    schedule of ``Lᵀ`` (entry ``k`` of both is lower entry ``k``), cached by pattern."""

    def make():
        lower = LowerPattern(e.rows, e.cols, e.size)
        forward = Schedule(lower.rows, lower.cols, e.size, lower=True)
        backward = Schedule(lower.cols, lower.rows, e.size, lower=False)
        return lower, forward, backward

    return cached(pattern_key("lower", e.rows, e.cols), make)


# ----------------------------------------------------------------------------------------------
# Device side: a scheduled solve, and the symmetric operator  x = s · T⁻ᵀ (m ⊙ T⁻¹ b).
# ----------------------------------------------------------------------------------------------


class TriangularSolve(eqx.Module):
    """One scheduled triangular solve with the values gathered into the schedule's slots."""

    values: Float[Array, "steps width reach"]
    inverse_diagonal: Float[Array, "steps width"]
    row: Int[Array, "steps width"]
    gather: Int[Array, "steps width reach"]
    position: Int[Array, " n"]

    @classmethod
    def build(cls, schedule: Schedule, off_diagonal: Float[Array, " nnz"], diagonal: Float[Array, " n"]):
        dtype = diagonal.dtype
        off = jnp.concatenate([off_diagonal.astype(dtype), jnp.zeros(1, dtype)])
        diag = jnp.concatenate([diagonal, jnp.ones(1, dtype)])
        return cls(
            # int32 indices: NumPy's int64 positions fail under strict dtype promotion (CG's init).
            values=off[jnp.asarray(schedule.entry, jnp.int32)],
            inverse_diagonal=1 / diag[jnp.asarray(schedule.row, jnp.int32)],
            row=jnp.asarray(schedule.row, jnp.int32),
            gather=jnp.asarray(schedule.gather, jnp.int32),
            position=jnp.asarray(schedule.position, jnp.int32),
        )

    def __call__(self, b: Float[Array, " n"]) -> Float[Array, " n"]:
        steps, width = self.row.shape
        dtype = jnp.result_type(b, self.values)
        rhs = jnp.concatenate([b.astype(dtype), jnp.zeros(1, dtype)])[self.row]
        buffer = jnp.zeros(steps * width + 1, dtype)  # the last slot stays 0: padding reads it

        def step(buffer, xs):
            k, values, inverse_diagonal, gather, rhs = xs
            y = (rhs - jnp.sum(values * buffer[gather], axis=-1)) * inverse_diagonal
            return jax.lax.dynamic_update_slice(buffer, y, (k * width,)), None

        xs = (jnp.arange(steps), self.values, self.inverse_diagonal, self.gather, rhs)
        buffer, _ = jax.lax.scan(step, buffer, xs)
        return buffer[self.position]


class AbstractSymmetricOperator(lx.AbstractLinearOperator):
    """A preconditioner's operator that is symmetric positive definite by construction: tagged so,
    its own transpose and conjugate (real), square on `structure`; dense forms by mat-vecs (for
    small problems and tests). Subclasses implement `mv`."""

    structure: eqx.AbstractVar[PyTree[jax.ShapeDtypeStruct]]

    @property
    def tags(self) -> frozenset:
        return frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})

    def as_matrix(self):
        return lx.FunctionLinearOperator(self.mv, self.structure).as_matrix()

    def diagonal(self):
        return jnp.diagonal(self.as_matrix())

    def tridiagonal(self):
        matrix = self.as_matrix()
        return jnp.diagonal(matrix), jnp.diagonal(matrix, -1), jnp.diagonal(matrix, 1)

    def conj(self):
        return self

    def transpose(self):
        return self

    def in_structure(self):
        return self.structure

    def out_structure(self):
        return self.structure


register_structure_queries(AbstractSymmetricOperator)


class SymmetricTriangularOperator(AbstractSymmetricOperator):
    r"""``M b = s · T⁻ᵀ (m ⊙ T⁻¹ b)``: a lower triangular solve, a diagonal scaling and the
    transposed solve — symmetric by construction, positive definite when ``s > 0``, ``m > 0``
    and ``T`` is nonsingular. SSOR (``T = D/ω + L``) and IC(0) (``T = L``, ``m = 1``) are of this
    form. Acts on arrays of the operator's own shape (flattened in C order inside)."""

    forward: TriangularSolve
    backward: TriangularSolve
    middle: Float[Array, " n"] | None
    scale: Float[Array, ""]
    structure: jax.ShapeDtypeStruct = eqx.field(static=True)

    def mv(self, vector):
        y = self.forward(vector.reshape(-1))
        if self.middle is not None:
            y = self.middle * y
        x = self.backward(y) * self.scale.astype(y.dtype)
        return x.reshape(self.structure.shape)
