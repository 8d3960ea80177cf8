"""Compatibility shim: geometric multigrid moved to `jaxpde.numerics.multigrid`.

It needs only the grids and the numerics layer, so it lives there (the data layer's Darcy solver
uses it without importing the preconditioners). Kept until `jaxpde.data._darcy`, the
``precond-darcy`` experiment, the stiff reaction–diffusion benchmark and the preconditioners
notebook import from the new path; import `jaxpde.numerics.multigrid` (or
`jaxpde.preconditioners`) in new code.
"""

from ..numerics.multigrid import AbstractMultigrid, GeometricMultigrid, MultigridHierarchy, Transfer

__all__ = ["AbstractMultigrid", "GeometricMultigrid", "MultigridHierarchy", "Transfer"]
