r"""Symmetric successive over-relaxation (SSOR) as a preconditioner; ``ω = 1`` is symmetric Gauss–Seidel."""

import math
import numbers
from typing import ClassVar

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import ArrayLike, Float

from ..numerics.preconditioning import AbstractPreconditioner
from ._triangular import SymmetricTriangularOperator, TriangularSolve, entries, lower_schedules

__all__ = ["SSOR"]


class SSOR(AbstractPreconditioner):
    r"""SSOR preconditioning (Young 1950; Axelsson 1972): with ``A = D + L + Lᵀ`` (``D`` the
    diagonal, ``L`` the strictly lower triangle),

    .. math::

        M^{-1} = \frac{1}{\omega(2-\omega)}\,(D + \omega L)\, D^{-1} (D + \omega L^{T}),
        \qquad
        M = \omega(2-\omega)\,(D + \omega L^{T})^{-1} D\, (D + \omega L)^{-1},

    applied as a forward sweep ``y = (D + ωL)⁻¹ b``, a scaling ``D y`` and a backward sweep
    ``(D + ωLᵀ)⁻¹`` — exactly one symmetric SOR iteration from ``x₀ = 0``. ``ω = 1`` (default) is
    symmetric Gauss–Seidel. ``M`` is symmetric by construction and positive definite for
    ``0 < ω < 2`` whenever ``D > 0`` (so for every SPD ``A``): ``M⁻¹ = Bᵀ D⁻¹ B / (ω(2-ω))`` with
    ``B = D + ωLᵀ`` nonsingular. The scaling ``ω(2-ω)`` makes ``M⁻¹ - A`` positive semidefinite,
    so ``λ(MA) ⊂ (0, 1]`` (Axelsson, *Iterative Solution Methods*, 1994, §7.2).

    Only the lower triangle of ``A`` is read (``A`` is taken to be symmetric, as for every
    CG preconditioner). The sweeps are sparse triangular solves with level scheduling
    (`jaxpde.preconditioners._triangular`): ``2√n - 1`` sequential steps for a 2-D 5-point
    stencil.

    Measured (Darcy 12/3, CG to rtol 1e-6, float64; Jacobi: 198 / 410 / 803 iterations at 64² /
    128² / 256²): ``ω = 1`` 70 / 145 / 285, ``ω = 1.5`` 43 / 86 / 167, ``ω = 1.8`` 31 / 55 / 100,
    ``ω = 1.9`` 38 / 52 / 79 — the best ``ω`` grows towards 2 with the grid (``2 - O(h)``), which
    is what `learn_to_relax` finds across a sequence of systems.

    **Operators**: those that store their entries — jaxpde's `DiffusionOperator` and
    `HelmholtzOperator`, `jaxpde.numerics.sparse.SparseOperator` (with a static pattern) and
    `lineax.MatrixLinearOperator` (a dense lower triangle: ``n`` sequential steps), tagged or not.
    ``M`` works on the operator's own input structure (a grid-shaped field stays grid-shaped).

    **Arguments:**

    - `omega`: the relaxation factor, ``0 < ω < 2`` (a float; it may be a traced scalar, e.g.
      to vmap over several ``ω`` — then it is not checked).
    """

    omega: Float[ArrayLike, ""] = 1.0

    is_positive_definite: ClassVar[bool] = True
    is_linear: ClassVar[bool] = True

    def __check_init__(self):
        omega = self.omega
        if isinstance(omega, jax.core.Tracer):
            return
        is_scalar_array = isinstance(omega, (np.ndarray, np.generic, jax.Array)) and np.ndim(omega) == 0
        if isinstance(omega, bool) or not (isinstance(omega, numbers.Real) or is_scalar_array):
            raise ValueError(f"SSOR: `omega` must be a real number in (0, 2), got {omega!r}.")
        if is_scalar_array and not np.issubdtype(np.asarray(omega).dtype, np.floating):
            raise ValueError(f"SSOR: `omega` must be a real floating-point number in (0, 2), got {omega!r}.")
        value = float(omega)
        if not (math.isfinite(value) and 0 < value < 2):
            raise ValueError(
                f"SSOR: `omega` must lie in the open interval (0, 2) (M is SPD exactly there), got {omega!r}."
            )

    def build(self, operator: lx.AbstractLinearOperator) -> lx.AbstractLinearOperator:
        e = entries(operator, "SSOR")
        lower, forward, backward = lower_schedules(e)
        dtype = e.values.dtype
        omega = jnp.asarray(self.omega, dtype)
        values = jnp.concatenate([e.values, jnp.zeros(1, dtype)])
        diagonal = values[lower.diagonal]  # -1 (a missing diagonal entry) reads the appended 0
        off = omega * e.values[lower.source]
        return SymmetricTriangularOperator(
            TriangularSolve.build(forward, off, diagonal),
            TriangularSolve.build(backward, off, diagonal),
            diagonal,
            omega * (2 - omega),
            operator.in_structure(),
        )
