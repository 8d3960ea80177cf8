r"""Physics-informed neural networks: problems written as the maths, trained by `jaxpde.training.fit`.

A PINN (Raissi, Perdikaris & Karniadakis, J. Comput. Phys. 378, 2019) minimises the mean squares
of a PDE's pointwise residual and of its conditions' residuals at sampled points. Here a problem
is a PDE of the catalogue — or the user's own residual function — on a domain, with named
conditions; its loss has named terms that `fit` logs::

    import jax, jax.numpy as jnp, optax
    from jaxpde import Grid
    from jaxpde.pdes import Burgers
    from jaxpde.pinns import MLP, Dirichlet, Initial, Interval, Problem, SpaceTime, pinn_loss
    from jaxpde.training import fit

    problem = Problem(
        Burgers(Grid(256, lengths=2.0, origin=-1.0), viscosity=0.01 / jnp.pi),
        SpaceTime(Interval(-1.0, 1.0), (0.0, 1.0)),
        conditions=(Initial(lambda x: -jnp.sin(jnp.pi * x[0])), Dirichlet(0.0, on=("left", "right"))),
        num_points=2540,
    )
    loss_fn, extra = pinn_loss(problem)
    net = MLP(2, "scalar", 20, 3, key=jax.random.key(1))         # u(x, t)
    fit(net, optax.adam(1e-3), loss_fn, problem.sample, extra=extra, steps=10_000, key=jax.random.key(0))

- **Problems** (`Problem`): ``sample``, ``sample_term``, ``residuals``, ``loss_terms``, ``u_fn``;
  domains `Interval`, `Rectangle`, `Box`, `Disk`, `LShape`, `SpaceTime` with named sides and
  normals; conditions `Dirichlet`, `Neumann`, `Robin`, `Periodic`, `Initial`; points `Points`.
- **Inverse problems**: `InverseModel` (a network and unknown parameters, numbers — `Positive`
  for a positive one — or networks for coefficient fields), observations as the term ``"data"``.
- **References** computed by jaxpde's own solvers and cached on disk: `allen_cahn_reference`,
  `burgers_reference`, `convection_reference` (each a `Reference` ``(x, t, u[t, x])``).
- **Networks** (one point in, the solution out): `MLP`, `ModifiedMLP`, `PirateNet` (`AbstractNetwork`),
  with `Dense` layers and `WeightFactorisation`; embeddings `PeriodicEmbedding` (exactly
  periodic), `FourierFeatures`, combined by `Embeddings` (`AbstractEmbedding`); hard constraints
  `DirichletConstraint` (through a distance `box_distance`, `ball_distance`) and
  `InitialCondition`.
- **Training methods**: loss weightings `FixedWeights`, `GradNormWeighting`, `NTKWeighting`
  (`AbstractWeighting`); causal weights `CausalWeighting`; collocation resampling
  `UniformResampling`, `RAR`, `R3` (`AbstractResampling`); time marching `march` (successive
  time windows, each from the last one's solution) giving a piecewise `Marched` model over
  `window_edges`; `pinn_loss` (the loss in `fit`'s
  form) and `pinn_residual_vector`; optimisers `soap` (an optax transform) and `GaussNewton`
  (a matrix-free Gauss–Newton / energy natural gradient `AbstractTrainStep` on lineax CG).
"""

from ._causal import CausalWeighting
from ._conditions import AbstractCondition, Dirichlet, Initial, Neumann, Periodic, Robin
from ._constraints import DirichletConstraint, InitialCondition, ball_distance, box_distance
from ._domains import AbstractDomain, Box, Disk, Interval, LShape, Points, Rectangle, SpaceTime
from ._gauss_newton import GaussNewton
from ._loss import pinn_loss, pinn_residual_vector
from ._marching import Marched, march, window_edges
from ._networks import (
    AbstractEmbedding,
    AbstractNetwork,
    Dense,
    Embeddings,
    FourierFeatures,
    MLP,
    ModifiedMLP,
    PeriodicEmbedding,
    PirateNet,
    WeightFactorisation,
)
from ._problem import InverseModel, Positive, Problem
from ._references import Reference, allen_cahn_reference, burgers_reference, convection_reference
from ._sampling import R3, RAR, AbstractResampling, UniformResampling
from ._soap import SOAPState, soap
from ._weighting import AbstractWeighting, FixedWeights, GradNormWeighting, NTKWeighting

__all__ = [
    # problems
    "Problem",
    "Points",
    "AbstractDomain",
    "Interval",
    "Rectangle",
    "Box",
    "Disk",
    "LShape",
    "SpaceTime",
    "AbstractCondition",
    "Dirichlet",
    "Neumann",
    "Robin",
    "Periodic",
    "Initial",
    # inverse problems
    "InverseModel",
    "Positive",
    # references
    "Reference",
    "allen_cahn_reference",
    "burgers_reference",
    "convection_reference",
    # networks and hard constraints
    "AbstractNetwork",
    "MLP",
    "ModifiedMLP",
    "PirateNet",
    "Dense",
    "WeightFactorisation",
    "AbstractEmbedding",
    "PeriodicEmbedding",
    "FourierFeatures",
    "Embeddings",
    "DirichletConstraint",
    "InitialCondition",
    "box_distance",
    "ball_distance",
    # training methods
    "AbstractWeighting",
    "FixedWeights",
    "GradNormWeighting",
    "NTKWeighting",
    "CausalWeighting",
    "AbstractResampling",
    "UniformResampling",
    "RAR",
    "R3",
    "march",
    "Marched",
    "window_edges",
    "pinn_loss",
    "pinn_residual_vector",
    "soap",
    "SOAPState",
    "GaussNewton",
]
