"""Preconditioners and the Krylov solvers that carry them.

Every preconditioner is an `AbstractPreconditioner`: a recipe ``A ↦ M ≈ A⁻¹`` that a solver runs
inside its ``init`` — so it follows the operator under jit and vmap, and inside the Newton steps
of optimistix and the implicit stages of diffrax, where lineax's ``options=`` cannot reach.

- Classical: `Jacobi`, `SSOR`, `IncompleteCholesky` (true IC(0), level-scheduled triangular
  solves), `Chebyshev` (polynomial, Lanczos-estimated bounds), `GeometricMultigrid` (symmetric
  V-cycle, Galerkin coarse stencils, any grid size, 1–3D).
- Learned (equinox modules whose fields are the trained parameters): `NeuralIF` (graph network
  → ``L`` on A's lower pattern), `LearnedSPAI` (``G Gᵀ``, mat-vecs only), `SpectralPreconditioner`
  (learned multiplier in the sine basis, coefficient scaling), `LearnedMultigrid` (learned
  prolongation), `DCDM` and `NeuralOperatorPreconditioner` (nonlinear: flexible Krylov only).
- Solvers: `Preconditioned` (CG / GMRES / BiCGStab carrying a preconditioner, with a declared
  structure for untagged operators), `FlexibleCG`, `FGMRES`, and `unrolled_pcg` (a fixed number
  of PCG steps, differentiable by plain reverse mode, for training).
- `FrozenPreconditioner`: ``M`` built once from a reference operator and reused by every solve
  (every Newton iteration of a diffrax implicit step).
- `learn_to_relax`: a bandit choosing SSOR's ω across a sequence of related systems.

`Jacobi`, `diagonal` and the base class live in `jaxpde.numerics.preconditioning` (the Krylov
solvers of `jaxpde.numerics` need them), and geometric multigrid in `jaxpde.numerics.multigrid`
(it needs only grids and numerics, and the data layer's Darcy solver uses it); all are
re-exported here.
"""

from ..numerics.multigrid import AbstractMultigrid, GeometricMultigrid, MultigridHierarchy
from ..numerics.preconditioning import AbstractPreconditioner, Jacobi, diagonal
from ._chebyshev import Chebyshev, estimate_spectrum
from ._dcdm import DCDM, DCDMNetwork, dcdm_loss, residual_like, train_dcdm
from ._flexible import FGMRES, FlexibleCG
from ._frozen import FrozenPreconditioner
from ._incomplete_cholesky import IncompleteCholesky
from ._learned import DarcySystems, GraphNetwork, inverse_residual_loss, train_preconditioner, unrolled_pcg_loss
from ._learned_multigrid import LearnedMultigrid, two_grid_loss
from ._neural_if import NeuralIF, neural_if_loss, train_neural_if
from ._neural_operator_preconditioner import NeuralOperatorPreconditioner
from ._relax import RelaxResult, TsallisINF, cumulative_regret, learn_to_relax, ssor_cg_iterations
from ._solver import Preconditioned
from ._spai import LearnedSPAI, train_spai
from ._spectral import SpectralPreconditioner, train_spectral
from ._ssor import SSOR
from ._unrolled import unrolled_pcg

__all__ = [
    "AbstractPreconditioner",
    "Jacobi",
    "diagonal",
    "SSOR",
    "IncompleteCholesky",
    "Chebyshev",
    "estimate_spectrum",
    "AbstractMultigrid",
    "GeometricMultigrid",
    "MultigridHierarchy",
    "LearnedMultigrid",
    "two_grid_loss",
    "NeuralIF",
    "LearnedSPAI",
    "SpectralPreconditioner",
    "DCDM",
    "DCDMNetwork",
    "NeuralOperatorPreconditioner",
    "DarcySystems",
    "GraphNetwork",
    "train_preconditioner",
    "train_neural_if",
    "train_spai",
    "train_spectral",
    "train_dcdm",
    "neural_if_loss",
    "dcdm_loss",
    "inverse_residual_loss",
    "unrolled_pcg_loss",
    "residual_like",
    "Preconditioned",
    "FrozenPreconditioner",
    "FlexibleCG",
    "FGMRES",
    "unrolled_pcg",
    "RelaxResult",
    "TsallisINF",
    "cumulative_regret",
    "learn_to_relax",
    "ssor_cg_iterations",
]
