"""Classical differentiable numerics: spectral derivatives, exponential integrators (diffrax
solvers) and their drivers (`time_integration`: solve / rollout / trajectory), stencil and sparse
operators (lineax operators), Krylov solvers (lineax solvers) geometric multigrid (a
preconditioner for them) and float-float iterative refinement (accurate residuals without x64)."""

from . import etdrk, krylov, multigrid, preconditioning, refinement, sparse, spectral, stencils, time_integration
from .etdrk import ETDRK1, ETDRK2, ETDRK3, ETDRK4, AbstractETDRK, SemiLinearTerm
from .krylov import ConjugateGradient, MixedPrecisionRefinement
from .multigrid import AbstractMultigrid, GeometricMultigrid, MultigridHierarchy
from .refinement import FloatFloat, diffusion_residual, refine, two_product, two_sum
from .sparse import SparseOperator
from .stencils import DiffusionOperator, HelmholtzOperator

__all__ = [
    "etdrk",
    "krylov",
    "multigrid",
    "preconditioning",
    "refinement",
    "sparse",
    "spectral",
    "stencils",
    "time_integration",
    "AbstractETDRK",
    "ETDRK1",
    "ETDRK2",
    "ETDRK3",
    "ETDRK4",
    "SemiLinearTerm",
    "ConjugateGradient",
    "MixedPrecisionRefinement",
    "AbstractMultigrid",
    "GeometricMultigrid",
    "MultigridHierarchy",
    "FloatFloat",
    "diffusion_residual",
    "refine",
    "two_product",
    "two_sum",
    "SparseOperator",
    "DiffusionOperator",
    "HelmholtzOperator",
]
