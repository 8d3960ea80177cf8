r"""A sparse matrix as a `lineax.AbstractLinearOperator`, stored in JAX's BCOO format.

lineax has dense (`MatrixLinearOperator`) and matrix-free (`FunctionLinearOperator`) operators but
no sparse one. `SparseOperator` fills that gap: it holds a
`jax.experimental.sparse.BCOO` matrix ``A`` with ``nnz`` stored entries, so

* ``mv(x) = A x`` costs ``O(nnz)`` (a gather, a multiply and a segment sum),
* it jit-compiles, vmaps over right-hand sides, and differentiates with respect to the stored
  values (``A.data``) — so it can sit inside `lineax.linear_solve` and be differentiated through,
* it converts to and from `scipy.sparse` for comparisons and for direct/AMG baselines.

Vectors are flat, of shape ``(n,)``. The stencil operators of `jaxpde.numerics.stencils` act on
fields of shape ``grid.shape``; their ``to_sparse()`` assembles the same operator on the
row-major (C-order) flattening of that field.

**Layouts.** BCOO's mat-vec is a gather, a multiply and a scatter-add; XLA's CPU scatter is
slow, and it ran 3.6–4.6× slower than scipy's CSR on 5-point matrices (64²–256², float64,
one jitted call each). Stencil matrices have a handful of constant diagonals, so the operator
also keeps a *diagonal* (DIA) copy when that is compact: ``offsets = (o_1, …, o_k)`` (static)
and ``D ∈ R^{k×m}`` with ``D[j, i] = A[i, i + o_j]``, and

.. math::

    (A x)_i = \sum_{j=1}^{k} D[j, i]\, \tilde x[i + o_j],

``x̃`` the zero-padded ``x`` — ``k`` shifted slices and fused multiply-adds, no gather, no
scatter. Measured on 2 shared CPU cores, 5-point Darcy matrices, float64, median time per
jitted call over scipy CSR's ``A @ x`` (`benchmarks/sparse_matvec.py`): 0.69× at 128² and at
256² (dispatch included; 0.24× and 0.17× per mat-vec inside a compiled loop, as in CG); at 64²
the ~20 µs dispatch dominates (1.8× per call, 0.32× in a loop). Also tried at 128²–256²: an ELL
layout (rows padded to the longest, gather and row sum) 1.9×, a CSR segment sum over sorted
rows 2.1×. ``layout="auto"`` (the default) stores the DIA copy
when the pattern is known (below) and the diagonals hold at most twice the stored entries (every
stencil; not a random sparse matrix), and keeps BCOO otherwise; the BCOO `matrix` is always
there, for code that reads it. The DIA values are a scatter of the BCOO values, so gradients
reach ``matrix.data`` exactly as before.

**A static copy of the pattern.** The sparsity pattern decides the *shape* of every computation
planned from it (the DIA offsets, the level schedules of SSOR and IC(0), the edges of the graph
networks), so it must be known at trace time. But the BCOO indices are array leaves: as soon as
the operator crosses a `jax.jit` boundary — or `lineax.linear_solve`, which traces the
operator's leaves before a solver's ``init`` builds a preconditioner from it — they are tracers.
So the operator also keeps `pattern`, a host (NumPy) copy of the indices as a *static* field
(`StaticPattern`: immutable, hashable by a digest of its bytes, so it can sit in a pytree's
structure and in jit's cache key). It is taken whenever the indices are concrete at
construction (NumPy, or closed over); an operator built inside `jit` from traced indices can be
handed the pattern it shares with another (``SparseOperator(matrix, pattern=other.pattern)``),
and without one it stays BCOO and has no pattern to plan from. Static means part of the
treedef: operators with different patterns are different pytree structures, as their
factorisations are different programs.

The module also holds `register_structure_queries`, which teaches lineax's single-dispatch
structure queries (`lineax.is_symmetric`, `lineax.is_positive_semidefinite`, …) to read a
``tags`` field, as `lineax.MatrixLinearOperator` does.
"""

from __future__ import annotations

from collections.abc import Iterable

import hashlib

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import scipy.sparse
from jax.experimental import sparse as jsparse
from jaxtyping import Array, Float, Inexact

__all__ = ["SparseOperator", "StaticPattern", "register_structure_queries"]

_LAYOUTS = ("auto", "bcoo", "dia")
# "auto" stores the DIA copy when its k·m slots hold at most this many times the stored entries.
_DIA_MAX_FILL = 2.0


def _concrete(x) -> np.ndarray | None:
    """`x` as a NumPy array, or None if it is a tracer (its values are unknown at trace time)."""
    if isinstance(x, jax.core.Tracer):
        return None
    return np.asarray(x)


class StaticPattern:
    """An immutable host copy of a BCOO matrix's ``indices`` (``(nse, 2)`` integers), hashable so
    that it can be a static field: patterns hash and compare by a SHA-1 digest of their bytes,
    shape and dtype (computed once), never element by element.

    `indices` is a read-only NumPy array.
    """

    __slots__ = ("indices", "_key")

    def __init__(self, indices):
        indices = np.array(indices, copy=True)
        if indices.ndim != 2 or indices.shape[1] != 2 or not np.issubdtype(indices.dtype, np.integer):
            raise ValueError(
                f"StaticPattern: `indices` must be an integer array of shape (nse, 2), got dtype {indices.dtype} "
                f"and shape {indices.shape}."
            )
        indices.flags.writeable = False
        self.indices = indices
        digest = hashlib.sha1(np.ascontiguousarray(indices).tobytes()).hexdigest()
        self._key = (indices.shape, indices.dtype.str, digest)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other) -> bool:
        return isinstance(other, StaticPattern) and self._key == other._key

    def __repr__(self) -> str:
        return f"StaticPattern(nse={self.indices.shape[0]}, sha1={self._key[2][:12]})"

    def transpose(self) -> StaticPattern:
        """The pattern of the transposed matrix (BCOO's ``.T`` swaps the index columns in place)."""
        return StaticPattern(self.indices[:, ::-1])


def _static_pattern(matrix: jsparse.BCOO, pattern: StaticPattern | None) -> StaticPattern | None:
    """`pattern`, checked against `matrix`; else a copy of the indices when they are concrete."""
    indices = _concrete(matrix.indices)
    if pattern is None:
        return None if indices is None else StaticPattern(indices)
    if not isinstance(pattern, StaticPattern):
        raise TypeError(f"SparseOperator: `pattern` must be a StaticPattern or None, got {type(pattern).__name__}.")
    if pattern.indices.shape != tuple(matrix.indices.shape):
        raise ValueError(
            f"SparseOperator: `pattern` must have the shape of `matrix.indices`, {tuple(matrix.indices.shape)}, "
            f"got {pattern.indices.shape}."
        )
    if indices is not None and not np.array_equal(indices, pattern.indices):
        raise ValueError("SparseOperator: `pattern` must equal `matrix.indices`, got different indices.")
    return pattern


def _diagonal_layout(matrix: jsparse.BCOO, pattern: StaticPattern | None, max_fill: float | None):
    """``(offsets, D)`` of the DIA layout (see the module docstring), or None.

    None when the pattern is unknown (traced indices, no static copy), or when `max_fill` is
    given and ``k·m > max_fill · nnz``. ``D`` is a scatter-add of ``matrix.data`` by static
    positions, so duplicates sum, padding entries (out-of-range indices) drop, and ``D`` is
    differentiable in the data.
    """
    if pattern is None:
        return None
    indices = pattern.indices
    m, n = matrix.shape
    rows, cols = indices[:, 0].astype(np.int64), indices[:, 1].astype(np.int64)
    keep = (rows >= 0) & (rows < m) & (cols >= 0) & (cols < n)
    offsets, which = np.unique(cols[keep] - rows[keep], return_inverse=True)
    stored = max(int(keep.sum()), 1)
    if max_fill is not None and len(offsets) * m > max_fill * stored:
        return None
    slot = np.full(rows.shape, len(offsets), np.int32)  # padding goes out of range and is dropped
    slot[keep] = which.ravel()
    row = np.where(keep, rows, 0).astype(np.int32)
    data = jnp.zeros((max(len(offsets), 1), m), matrix.dtype).at[slot, row].add(matrix.data, mode="drop")
    return tuple(int(o) for o in offsets), data[: len(offsets)]


def _dia_mv(offsets: tuple[int, ...], data: Array, vector: Array, n: int) -> Array:
    m = data.shape[1]
    if not offsets:
        return jnp.zeros(m, jnp.result_type(data, vector))
    low = max(0, -min(offsets))
    high = max(0, max(offsets) + m - n)
    padded = jnp.pad(vector, (low, high))
    terms = [data[j] * jax.lax.slice_in_dim(padded, low + o, low + o + m) for j, o in enumerate(offsets)]
    return sum(terms[1:], terms[0])


def _frozen_tags(tags: object) -> frozenset:
    if isinstance(tags, (frozenset, set, tuple, list)):
        return frozenset(tags)
    return frozenset([tags])


def _has_real_dtype(operator: lx.AbstractLinearOperator) -> bool:
    return not jnp.issubdtype(operator.in_structure().dtype, jnp.complexfloating)


def register_structure_queries(cls: type) -> type:
    """Register lineax's structure queries and no-op transforms for an operator class with `tags`.

    lineax answers ``is_symmetric(op)``, ``is_positive_semidefinite(op)``, ``diagonal(op)`` …
    through `functools.singledispatch`, so a new operator class must register itself. This
    registers every tag query against ``operator.tags`` (positive/negative semidefinite imply
    symmetric for real dtypes, as in lineax), and makes `lineax.linearise` and
    `lineax.materialise` the identity (the operator is already cheap to apply).

    `lineax.diagonal`, `lineax.tridiagonal` and `lineax.conj` dispatch to the class's
    ``diagonal()``, ``tridiagonal()`` and ``conj()`` methods.
    """
    def is_symmetric(operator):
        tags = operator.tags
        if lx.symmetric_tag in tags or lx.diagonal_tag in tags:
            return True
        semidefinite = lx.positive_semidefinite_tag in tags or lx.negative_semidefinite_tag in tags
        return semidefinite and _has_real_dtype(operator)

    lx.is_symmetric.register(cls)(is_symmetric)
    for query, tag in (
        (lx.is_diagonal, lx.diagonal_tag),
        (lx.is_tridiagonal, lx.tridiagonal_tag),
        (lx.has_unit_diagonal, lx.unit_diagonal_tag),
        (lx.is_lower_triangular, lx.lower_triangular_tag),
        (lx.is_upper_triangular, lx.upper_triangular_tag),
        (lx.is_positive_semidefinite, lx.positive_semidefinite_tag),
        (lx.is_negative_semidefinite, lx.negative_semidefinite_tag),
    ):
        query.register(cls)(lambda operator, tag=tag: tag in operator.tags)
    lx.linearise.register(cls)(lambda operator: operator)
    lx.materialise.register(cls)(lambda operator: operator)
    lx.diagonal.register(cls)(lambda operator: operator.diagonal())
    lx.tridiagonal.register(cls)(lambda operator: operator.tridiagonal())
    lx.conj.register(cls)(lambda operator: operator.conj())
    return cls


class SparseOperator(lx.AbstractLinearOperator):
    r"""A sparse matrix ``A ∈ R^{m×n}`` (BCOO) as a lineax linear operator on flat vectors.

    ``mv(x) = A x`` for ``x`` of shape ``(n,)``. Tags (e.g. `lineax.symmetric_tag`,
    `lineax.positive_semidefinite_tag`) are promises the caller makes, unchecked, exactly as for
    `lineax.MatrixLinearOperator`; `lineax.CG` needs the positive-semidefinite tag.

    **Arguments:**

    - `matrix`: a two-dimensional `jax.experimental.sparse.BCOO` matrix (duplicate entries
      are summed, as in BCOO itself).
    - `tags`: a tag or an iterable of tags.
    - `layout`: ``"auto"`` (default: a DIA copy for mat-vecs when the diagonals are compact and
      the pattern known, see the module docstring), ``"bcoo"`` (mat-vecs through BCOO), or
      ``"dia"`` (always the DIA copy; an error if the pattern is unknown). The resolved choice
      is the static field `layout` (``"bcoo"`` or ``"dia"``).
    - `pattern`: the static copy of ``matrix.indices`` (a `StaticPattern`), needed only to build
      the operator from traced indices inside `jax.jit`: pass ``other.pattern`` of an operator
      with the same indices. By default it is copied from the indices when they are concrete.
      Either way it is the static field `pattern` (None for traced indices without one), which
      the preconditioners that plan from the pattern (SSOR, IC(0), the graph networks) read.

    Build one from scipy with `SparseOperator.from_scipy`, from a stencil operator with its
    ``to_sparse()``; go back with `to_scipy`.
    """

    matrix: jsparse.BCOO
    tags: frozenset = eqx.field(static=True)
    layout: str = eqx.field(static=True)
    pattern: StaticPattern | None = eqx.field(static=True)
    dia_offsets: tuple[int, ...] = eqx.field(static=True)
    dia_data: Array | None

    def __init__(
        self,
        matrix: jsparse.BCOO,
        tags: object | Iterable[object] = (),
        layout: str = "auto",
        pattern: StaticPattern | None = None,
    ):
        if not isinstance(matrix, jsparse.BCOO):
            raise TypeError(
                f"SparseOperator: `matrix` must be a jax.experimental.sparse.BCOO, got {type(matrix).__name__}; "
                "use SparseOperator.from_scipy for scipy.sparse matrices."
            )
        if matrix.ndim != 2 or matrix.n_batch != 0 or matrix.n_dense != 0:
            raise ValueError(
                f"SparseOperator: `matrix` must be a plain 2D BCOO matrix (no batch or dense dimensions), "
                f"got shape {matrix.shape} with n_batch={matrix.n_batch}, n_dense={matrix.n_dense}."
            )
        if not jnp.issubdtype(matrix.dtype, jnp.inexact):
            matrix = jsparse.BCOO((matrix.data.astype(jnp.result_type(float)), matrix.indices), shape=matrix.shape)
        if layout not in _LAYOUTS:
            raise ValueError(f"SparseOperator: `layout` must be one of {_LAYOUTS}, got {layout!r}.")
        self.matrix = matrix
        self.tags = _frozen_tags(tags)
        self.pattern = _static_pattern(matrix, pattern)
        max_fill = _DIA_MAX_FILL if layout == "auto" else None
        dia = None if layout == "bcoo" else _diagonal_layout(matrix, self.pattern, max_fill)
        if layout == "dia" and dia is None:
            raise ValueError(
                "SparseOperator: `layout='dia'` needs a static pattern (its diagonals are static), got traced "
                "indices and no `pattern`; build the operator outside jit, from NumPy indices or with `pattern=`, "
                "or use layout='auto'."
            )
        self.layout = "bcoo" if dia is None else "dia"
        self.dia_offsets, self.dia_data = ((), None) if dia is None else dia

    # -- conversions -------------------------------------------------------------------------

    @classmethod
    def from_scipy(
        cls,
        matrix: scipy.sparse.sparray | scipy.sparse.spmatrix,
        tags: object | Iterable[object] = (),
        dtype=None,
        layout: str = "auto",
    ) -> SparseOperator:
        """Copy a `scipy.sparse` matrix (any format) into a `SparseOperator`.

        `dtype` defaults to JAX's default floating dtype (float32 unless x64 is enabled), so a
        float64 scipy matrix is not silently truncated only when x64 is on.
        """
        if not scipy.sparse.issparse(matrix):
            raise TypeError(f"SparseOperator.from_scipy: `matrix` must be a scipy.sparse matrix, got {type(matrix).__name__}.")
        coo = scipy.sparse.coo_matrix(matrix)
        coo.sum_duplicates()
        dtype = jnp.result_type(float) if dtype is None else dtype
        indices = np.stack([coo.row, coo.col], axis=1).astype(np.int32)
        bcoo = jsparse.BCOO((jnp.asarray(coo.data, dtype=dtype), jnp.asarray(indices)), shape=coo.shape)
        return cls(bcoo, tags, layout)

    def to_scipy(self) -> scipy.sparse.csr_matrix:
        """The same matrix as a `scipy.sparse.csr_matrix` (duplicates summed, padding dropped)."""
        data = np.asarray(self.matrix.data)
        rows, cols = np.asarray(self.matrix.indices).T
        m, n = self.matrix.shape
        # BCOO may carry padding entries with out-of-range indices (e.g. after sum_duplicates
        # under jit); they hold zeros and are not part of the matrix.
        keep = (rows < m) & (cols < n)
        return scipy.sparse.coo_matrix((data[keep], (rows[keep], cols[keep])), shape=(m, n)).tocsr()

    # -- the lineax interface ------------------------------------------------------------------

    def mv(self, vector: Inexact[Array, " n"]) -> Inexact[Array, " m"]:
        if self.layout == "dia":
            return _dia_mv(self.dia_offsets, self.dia_data, vector, self.matrix.shape[1])
        return self.matrix @ vector

    def as_matrix(self) -> Inexact[Array, "m n"]:
        return self.matrix.todense()

    def transpose(self) -> SparseOperator:
        if lx.is_symmetric(self):
            return self
        layout = "auto" if self.layout == "dia" else "bcoo"
        pattern = None if self.pattern is None else self.pattern.transpose()
        return SparseOperator(self.matrix.T, lx.transpose_tags(self.tags), layout, pattern)

    def in_structure(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((self.matrix.shape[1],), self.matrix.dtype)

    def out_structure(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((self.matrix.shape[0],), self.matrix.dtype)

    # -- structure -----------------------------------------------------------------------------

    def _entries_on(self, offset: int) -> Float[Array, " k"]:
        """The ``offset``-th diagonal (``A[i, i + offset]``), summing duplicates, in O(nnz)."""
        m, n = self.matrix.shape
        rows, cols = self.matrix.indices[:, 0], self.matrix.indices[:, 1]
        start = max(0, -offset)
        length = max(0, min(m, n - offset) - start)
        on_diagonal = (cols - rows) == offset
        data = jnp.where(on_diagonal, self.matrix.data, 0)
        # Off-diagonal entries are sent out of range and dropped.
        position = jnp.where(on_diagonal, rows - start, length)
        return jnp.zeros(length, self.matrix.dtype).at[position].add(data, mode="drop")

    def diagonal(self) -> Float[Array, " n"]:
        """The main diagonal, ``A[i, i]``."""
        return self._entries_on(0)

    def tridiagonal(self) -> tuple[Float[Array, " n"], Float[Array, " n-1"], Float[Array, " n-1"]]:
        """``(main, lower, upper)`` diagonals, as `lineax.tridiagonal` returns them."""
        return self._entries_on(0), self._entries_on(-1), self._entries_on(1)

    def conj(self) -> SparseOperator:
        matrix = jsparse.BCOO((jnp.conj(self.matrix.data), self.matrix.indices), shape=self.matrix.shape)
        return SparseOperator(matrix, self.tags, "auto" if self.layout == "dia" else "bcoo", self.pattern)

    @property
    def nnz(self) -> int:
        """Number of stored entries (including explicit zeros and duplicates)."""
        return int(self.matrix.nse)


register_structure_queries(SparseOperator)
