"""Preconditioners and the Krylov solvers that carry them.

Every preconditioner is an `AbstractPreconditioner`: a recipe ``A ↦ M ≈ A⁻¹`` that a solver runs
inside its ``init`` (so it works under jit and vmap, inside optimistix and diffrax). `Jacobi` and
`diagonal` live in `jaxpde.numerics.preconditioning` and are re-exported here.
"""

from ..numerics.preconditioning import AbstractPreconditioner, Jacobi, diagonal

__all__ = ["AbstractPreconditioner", "Jacobi", "diagonal"]
