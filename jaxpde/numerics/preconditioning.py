r"""The preconditioner extension point: an object that builds ``M ≈ A⁻¹`` from the operator ``A``.

A preconditioner is not an operator but a *recipe* for one: Jacobi needs ``A``'s diagonal, IC(0)
its factor, multigrid its coarse operators, a learned preconditioner its coefficient field. So
a jaxpde preconditioner is an `equinox.Module` with one method,

.. math::

    \texttt{build}: A \mapsto M, \qquad M \approx A^{-1},

returning a `lineax.AbstractLinearOperator` with ``A``'s input structure. Krylov solvers call it
inside their ``init`` — under `jax.jit`, `jax.vmap` and inside the root finders of optimistix and
the implicit steps of diffrax, where the operator is only known at trace time. This is what
lineax's ``options={"preconditioner": M}`` cannot do: ``M`` there is fixed before the solve, is
not differentiable, and never reaches a linear solve that diffrax or optimistix make
internally.

**Contract** (checked by `AbstractPreconditioner.__call__`, which subclasses do not override):
``M``'s input and output structures are those of ``A``'s input — the operator's own structure
(a grid-shaped field stays grid-shaped, a pytree stays a pytree; nothing is flattened); a
preconditioner whose class declares `is_positive_definite` comes back tagged
`lineax.positive_semidefinite_tag` and `lineax.symmetric_tag`, so CG accepts it; one whose class
declares ``is_linear = False`` (a neural network, an inner iteration to a tolerance) may only go
to a flexible Krylov method.

`Jacobi` is the first preconditioner; the rest are in `jaxpde.preconditioners`. `diagonal` extracts
an operator's diagonal in its own structure, cheaply where it can: structured operators (lineax's
matrix/diagonal/tridiagonal, jaxpde's stencil and sparse operators) provide theirs; a matrix-free
operator that couples only nearby grid points — a stencil, its Jacobian, diffrax's ``I - γ h J``
— gets it exactly from ``(2r + 1)^d`` coloured probes (Curtis, Powell & Reid 1974) instead of
``n`` columns.
"""

import abc
import itertools
import math
import numbers
from typing import ClassVar

import equinox as eqx
import jax
import jax.flatten_util as jfu
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx
from jaxtyping import Array, PyTree

__all__ = ["AbstractPreconditioner", "Jacobi", "diagonal"]


def _structure_equal(a, b) -> bool:
    return eqx.tree_equal(a, b) is True


class AbstractPreconditioner(eqx.Module):
    r"""Base class of preconditioners: `build` maps the system operator ``A`` to ``M ≈ A⁻¹``.

    Subclasses implement `build` and declare two class attributes:

    - `is_positive_definite`: ``M`` is symmetric positive definite whenever ``A`` is (Jacobi,
      SSOR, IC(0), a symmetric V-cycle, ``L Lᵀ``). Such an ``M`` is returned tagged
      `lineax.positive_semidefinite_tag`, and CG accepts it; other preconditioners are refused
      by CG with an error that names them.
    - `is_linear`: ``M`` is a fixed linear map. ``False`` for a neural network or an inner
      iteration run to a tolerance: only the flexible Krylov methods accept those.

    Call the preconditioner (``M = preconditioner(A)``), do not call `build` directly: the call
    checks that ``A`` is square and that ``M`` has ``A``'s input structure, and adds the tags.
    """

    is_positive_definite: eqx.AbstractClassVar[bool]
    is_linear: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def build(self, operator: lx.AbstractLinearOperator) -> lx.AbstractLinearOperator:
        """``M ≈ A⁻¹`` as a lineax operator on ``A.in_structure()``."""

    def __call__(self, operator: lx.AbstractLinearOperator) -> lx.AbstractLinearOperator:
        owner = type(self).__name__
        if not isinstance(operator, lx.AbstractLinearOperator):
            raise TypeError(f"{owner}: the operator must be a lineax.AbstractLinearOperator, got {type(operator).__name__}.")
        structure = operator.in_structure()
        if not _structure_equal(structure, operator.out_structure()):
            raise ValueError(
                f"{owner}: a preconditioner needs a square operator (matching in/out structures), got in_structure "
                f"{structure} and out_structure {operator.out_structure()}."
            )
        preconditioner = self.build(operator)
        if not isinstance(preconditioner, lx.AbstractLinearOperator):
            raise TypeError(f"{owner}.build must return a lineax.AbstractLinearOperator, got {type(preconditioner).__name__}.")
        for side, got in (("input", preconditioner.in_structure()), ("output", preconditioner.out_structure())):
            if not _structure_equal(got, structure):
                raise ValueError(
                    f"{owner}: the preconditioner's {side} structure must be the operator's input structure "
                    f"{structure}, got {got}."
                )
        if self.is_positive_definite and not lx.is_positive_semidefinite(preconditioner):
            preconditioner = lx.TaggedLinearOperator(
                preconditioner, frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})
            )
        return preconditioner


# Operators whose `lineax.diagonal` is cheap (read from stored arrays, not n mat-vecs). Sums,
# products, tagged and negated versions qualify when every part does.
_CHEAP = (
    lx.MatrixLinearOperator,
    lx.DiagonalLinearOperator,
    lx.TridiagonalLinearOperator,
    lx.IdentityLinearOperator,
    lx.PyTreeLinearOperator,
)


def _has_cheap_diagonal(operator: lx.AbstractLinearOperator) -> bool:
    if isinstance(operator, _CHEAP) or hasattr(operator, "to_sparse"):  # jaxpde's stencil/sparse operators
        return True
    if isinstance(operator, (lx.TaggedLinearOperator, lx.NegLinearOperator, lx.MulLinearOperator, lx.DivLinearOperator)):
        return _has_cheap_diagonal(operator.operator)
    if isinstance(operator, lx.AddLinearOperator):
        return _has_cheap_diagonal(operator.operator1) and _has_cheap_diagonal(operator.operator2)
    return False


def _probe_period(n: int, reach: int) -> int:
    """The smallest period ``p ≥ 2r + 1`` with ``n mod p ∉ {1, …, r}``.

    Colouring an axis by ``i mod p`` separates every two points within ``r`` steps of each other
    for ``p ≥ 2r + 1`` — and, on a periodic axis, also the pairs coupled across the wrap (``i``
    near ``0``, ``j`` near ``n - 1``, ``i + n - j ≤ r``), which share a colour only when
    ``n mod p ∈ {1, …, r}``. Such a ``p`` always exists (``p = n``); it is ``2r + 1`` whenever
    ``n mod (2r + 1)`` is ``0`` or above ``r``."""
    period = 2 * reach + 1
    while period < n and 1 <= n % period <= reach:
        period += 1
    return period


def _probed_diagonal(operator: lx.AbstractLinearOperator, reach: int) -> Array:
    """Exact diagonal of an operator on one grid-shaped array that couples point ``i`` only to
    points within `reach` steps along every axis (periodically or not): with the colouring
    ``c(i) = i mod p`` per axis (`_probe_period`), no two points of one colour are coupled, so
    ``(Σ_{i∈c} e_i) ⊙ A(Σ_{i∈c} e_i)`` is ``A_ii`` on colour ``c``. Costs ``Π p`` mat-vecs:
    ``(2r+1)^d`` (9 for a 2-D 5- or 9-point stencil) unless a periodic wrap needs a longer period."""
    structure = operator.in_structure()
    shape, dtype = structure.shape, structure.dtype
    periods = [_probe_period(n, reach) for n in shape]
    grids = jnp.meshgrid(*[jnp.arange(n) % p for n, p in zip(shape, periods)], indexing="ij")
    colours = list(itertools.product(*[range(p) for p in periods]))
    masks = jnp.stack([math.prod([(g == c).astype(dtype) for g, c in zip(grids, colour)]) for colour in colours])
    return jnp.sum(masks * jax.vmap(operator.mv)(masks), axis=0)


def diagonal(operator: lx.AbstractLinearOperator, stencil_reach: int | None = None) -> PyTree[Array]:
    r"""The diagonal of ``A`` in ``A``'s input structure (a grid-shaped field stays grid-shaped).

    - Operators that store their entries (lineax's matrix, diagonal, tridiagonal, pytree and
      identity operators; jaxpde's stencil and sparse operators; sums, scalings and tagged
      versions of these): read from the stored arrays.
    - With `stencil_reach` ``r`` (an operator on one array that couples points at most ``r``
      grid steps apart along each axis — a stencil operator, its Jacobian, diffrax's
      ``I - γ h ∂f/∂y`` for a method-of-lines right-hand side), periodic or not: exact, from
      ``(2r + 1)^d`` coloured probes (``d`` the array's rank; a periodic axis whose length is
      ``1 … r`` more than a multiple of ``2r + 1`` takes a slightly longer colour period).
    - Otherwise `lineax.diagonal` (``n`` mat-vecs for a matrix-free operator).
    """
    if stencil_reach is not None:
        if isinstance(stencil_reach, bool) or not isinstance(stencil_reach, numbers.Integral) or stencil_reach < 0:
            raise ValueError(f"diagonal: `stencil_reach` must be a non-negative integer or None, got {stencil_reach!r}.")
        structure = operator.in_structure()
        if not isinstance(structure, jax.ShapeDtypeStruct):
            raise ValueError(
                "diagonal: `stencil_reach` needs an operator on a single grid-shaped array, got input structure "
                f"{structure}."
            )
        return _probed_diagonal(operator, int(stencil_reach))
    flat = lx.diagonal(operator) if _has_cheap_diagonal(operator) else lx.diagonal(lx.linearise(operator))
    zeros = jtu.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), operator.in_structure())
    _, unravel = jfu.ravel_pytree(zeros)
    return unravel(flat)


class Jacobi(AbstractPreconditioner):
    r"""Jacobi (diagonal) preconditioning: ``M = diag(A)⁻¹``.

    Symmetric positive definite when ``A`` is (its diagonal is then positive). The diagonal comes
    from `diagonal`: read from a structured operator's stored entries, or — with `stencil_reach`
    — probed exactly in ``(2r+1)^d`` mat-vecs for matrix-free operators that couple only nearby
    grid points (diffrax's implicit-step Jacobians); otherwise ``n`` mat-vecs.

    **Arguments:**

    - `stencil_reach`: ``None`` (default) or the operator's stencil reach ``r ≥ 0``.
    """

    stencil_reach: int | None = eqx.field(static=True, default=None)

    is_positive_definite: ClassVar[bool] = True
    is_linear: ClassVar[bool] = True

    def __check_init__(self):
        r = self.stencil_reach
        if r is not None and (isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 0):
            raise ValueError(f"Jacobi: `stencil_reach` must be a non-negative integer or None, got {r!r}.")

    def build(self, operator: lx.AbstractLinearOperator) -> lx.AbstractLinearOperator:
        return lx.DiagonalLinearOperator(jtu.tree_map(jnp.reciprocal, diagonal(operator, self.stencil_reach)))
