"""Differentiable solves at constant memory: linear solves, roots, fixed points, steady states.

Every solve returns an `ImplicitSolution` (``value``, ``result``, ``converged``, ``num_steps``,
``stats``, ``aux``) and is differentiated by the implicit function theorem with a matrix-free,
checked Krylov adjoint solve (`matrix_free_adjoint`, `CheckedSolver`): no dense Jacobian, and an
error — never a wrong gradient — when the forward or the adjoint solve does not converge.

- `linear_solve`: lineax's solve with jaxpde's Krylov solvers, gradients guarded.
- `root_find`: Newton–Krylov (optionally preconditioned) for ``F(y, θ) = 0``.
- `fixed_point`: ``z = f(z, θ)``, default solver `AndersonAcceleration` (an optimistix
  fixed-point solver, usable in `optimistix.fixed_point` directly).
- `steady_state`: integrate a diffrax ODE to its steady state, differentiated implicitly.

Built on them:

- Deep equilibrium layers: `DeepEquilibrium` (the fixed point of a learned
  `AbstractEquilibriumCell`), `WeightTied` (the same cell unrolled, for comparison),
  `EquilibriumOperator` (lift → equilibrium → project); contractive cells with a unique fixed
  point: `ContractiveLinearCell` (Convergent Graph Solvers), `FourierCell` (a Fourier layer).
- PDE-constrained inverse problems: `InverseProblem` (forward model, observation, data,
  regulariser) solved by `minimise_inverse` (L-BFGS, Gauss–Newton, Levenberg–Marquardt or optax);
  forward models `DarcyForward`, `HeatForward`, `DirichletControlPoisson`; observations
  `PointObservation`, `NodeObservation`; regularisers `Tikhonov`, `TotalVariation`,
  `DenoiserPrior` (a sampler's denoiser as a prior).
- Bilevel learning: `implicit_argmin` (hypergradients through an inner minimisation),
  `tune_weight` (a regularisation weight by validation misfit).
"""

from ._adjoint import CheckedSolver, matrix_free_adjoint
from ._anderson import AndersonAcceleration
from ._bilevel import WeightTuning, implicit_argmin, tune_weight
from ._contractive import ContractiveLinearCell, FourierCell, spectral_norm
from ._deq import AbstractEquilibriumCell, DeepEquilibrium, EquilibriumOperator, WeightTied
from ._fixed_point import fixed_point
from ._inverse import DarcyForward, DirichletControlPoisson, HeatForward, InverseProblem, InverseSolution, minimise_inverse
from ._linear import linear_solve
from ._observations import NodeObservation, PointObservation, add_noise, random_points
from ._regularisers import AbstractRegulariser, DenoiserPrior, Tikhonov, TotalVariation
from ._root import root_find
from ._solution import ImplicitSolution
from ._time import steady_state

__all__ = [
    "ImplicitSolution",
    "CheckedSolver",
    "matrix_free_adjoint",
    "AndersonAcceleration",
    "fixed_point",
    "linear_solve",
    "root_find",
    "steady_state",
    "AbstractEquilibriumCell",
    "DeepEquilibrium",
    "WeightTied",
    "EquilibriumOperator",
    "ContractiveLinearCell",
    "FourierCell",
    "spectral_norm",
    "InverseProblem",
    "InverseSolution",
    "minimise_inverse",
    "DarcyForward",
    "HeatForward",
    "DirichletControlPoisson",
    "PointObservation",
    "NodeObservation",
    "random_points",
    "add_noise",
    "AbstractRegulariser",
    "Tikhonov",
    "TotalVariation",
    "DenoiserPrior",
    "implicit_argmin",
    "tune_weight",
    "WeightTuning",
]
