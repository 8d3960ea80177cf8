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

The module also holds `register_structure_queries`, which teaches lineax's single-dispatch
structure queries (`lineax.is_symmetric`, `lineax.is_positive_semidefinite`, …) to read a
``tags`` field, as `lineax.MatrixLinearOperator` does.
"""

from __future__ import annotations

from collections.abc import Iterable

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import scipy.sparse
from jax.experimental import sparse as jsparse
from jaxtyping import Array, Float, Inexact

__all__ = ["SparseOperator", "register_structure_queries"]


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

    Build one from scipy with `SparseOperator.from_scipy`, from a stencil operator with its
    ``to_sparse()``; go back with `to_scipy`.
    """

    matrix: jsparse.BCOO
    tags: frozenset = eqx.field(static=True)

    def __init__(self, matrix: jsparse.BCOO, tags: object | Iterable[object] = ()):
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
        self.matrix = matrix
        self.tags = _frozen_tags(tags)

    # -- conversions -------------------------------------------------------------------------

    @classmethod
    def from_scipy(
        cls, matrix: scipy.sparse.sparray | scipy.sparse.spmatrix, tags: object | Iterable[object] = (), dtype=None
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
        return cls(bcoo, tags)

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
        return self.matrix @ vector

    def as_matrix(self) -> Inexact[Array, "m n"]:
        return self.matrix.todense()

    def transpose(self) -> SparseOperator:
        if lx.is_symmetric(self):
            return self
        return SparseOperator(self.matrix.T, lx.transpose_tags(self.tags))

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
        return SparseOperator(matrix, self.tags)

    @property
    def nnz(self) -> int:
        """Number of stored entries (including explicit zeros and duplicates)."""
        return int(self.matrix.nse)


register_structure_queries(SparseOperator)
