"""Diffusion and flow samplers: noise schedules, paths, parameterisations, losses, and samplers as
diffrax solvers.

- Processes: `VPLinear`, `VPCosine`, `SubVP`, `VE`, `EDM` (subclasses of `AbstractSchedule`:
  ``x_t = α(t) x₀ + σ(t) ε``, log-SNR and its inverse, SDE drift and diffusion); flow paths
  `LinearPath` (rectified flow) and `StochasticInterpolant`, which are schedules too.
- Parameterisations ``"eps"``, ``"x0"``, ``"v"``, ``"score"``, ``"flow"``: exact `convert`,
  `probability_flow`, `sde_drift`, `classifier_free_guidance`, and `Denoiser` around any model.
- Ground truth: `GaussianMixture` (noised density, score and predictions exact at every time),
  `eight_gaussians`.
- Training (`jaxpde.training.fit` losses): `DenoisingScoreMatching` (ε/x₀/v/EDM/likelihood/λ
  weightings), `FlowMatching` (and reflow on `reflow_pairs`), time laws `UniformTime`,
  `UShapedTime`, `LogNormalSigma`, `LogitNormalTime`.
- Likelihood: `log_likelihood` through the probability-flow ODE (exact or Hutchinson trace).
- Inverse problems: `DPS` (diffusion posterior sampling through a differentiable forward model).
- Samplers as diffrax solvers: `DiffusionTerm` (a Denoiser's probability-flow field), `DDIM`,
  `DPMSolver1/2/3`, `DPMSolverPP2M/3M`, `UniPC`, `DEIS` (the multistep ones take `final_order`, a lower-order
  last step), `EDMHeun`, the reverse SDE (`reverse_sde`,
  `brownian_motion`); time grids `UniformTimeGrid`, `UniformLogSNR`, `TimeQuadratic`, `Karras`,
  `LearnedGrid`; `sample`/`solve` with exact NFE (`evaluations`, `steps_for_nfe`); learned
  few-step schedules (`learn_schedule`).
"""

from ._ddim import DDIM
from ._deis import DEIS
from ._dpm_solver import DPMSolver1, DPMSolver2, DPMSolver3, DPMSolverPP2M, DPMSolverPP3M
from ._edm import EDMHeun
from ._grids import AbstractTimeGrid, Karras, LearnedGrid, TimeQuadratic, UniformLogSNR
from ._grids import UniformTime as UniformTimeGrid  # `UniformTime` is the training-time law of the losses
from ._guidance import DPS
from ._learned_schedule import learn_schedule, mean_l2_error, reference_endpoints
from ._likelihood import log_likelihood, ode_log_likelihood
from ._losses import (
    WEIGHTINGS,
    AbstractTimeDistribution,
    DenoisingScoreMatching,
    FlowMatching,
    LogitNormalTime,
    LogNormalSigma,
    UniformTime,
    UShapedTime,
    reflow_pairs,
)
from ._mixture import GaussianMixture, eight_gaussians
from ._parameterisation import (
    PARAMETERISATIONS,
    Denoiser,
    Parameterisation,
    classifier_free_guidance,
    convert,
    probability_flow,
    sde_drift,
)
from ._paths import LinearPath, StochasticInterpolant, conditional_velocity, integrate_flow, straightness, transport_cost
from ._sample import SampleResult, evaluations, sample, solve, steps_for_nfe
from ._schedules import EDM, VE, AbstractSchedule, SubVP, VPCosine, VPLinear
from ._sde import brownian_motion, reverse_sde
from ._solvers import AbstractDiffusionSolver, DiffusionTerm
from ._unipc import UniPC

__all__ = [
    "AbstractSchedule",
    "VPLinear",
    "VPCosine",
    "SubVP",
    "VE",
    "EDM",
    "LinearPath",
    "StochasticInterpolant",
    "conditional_velocity",
    "integrate_flow",
    "straightness",
    "transport_cost",
    "PARAMETERISATIONS",
    "Parameterisation",
    "convert",
    "probability_flow",
    "sde_drift",
    "classifier_free_guidance",
    "Denoiser",
    "GaussianMixture",
    "eight_gaussians",
    "AbstractTimeDistribution",
    "UniformTime",
    "UShapedTime",
    "LogNormalSigma",
    "LogitNormalTime",
    "WEIGHTINGS",
    "DenoisingScoreMatching",
    "FlowMatching",
    "reflow_pairs",
    "log_likelihood",
    "ode_log_likelihood",
    "DPS",
    "DiffusionTerm",
    "AbstractDiffusionSolver",
    "DDIM",
    "DEIS",
    "DPMSolver1",
    "DPMSolver2",
    "DPMSolver3",
    "DPMSolverPP2M",
    "DPMSolverPP3M",
    "UniPC",
    "EDMHeun",
    "reverse_sde",
    "brownian_motion",
    "AbstractTimeGrid",
    "UniformTimeGrid",
    "UniformLogSNR",
    "TimeQuadratic",
    "Karras",
    "LearnedGrid",
    "sample",
    "solve",
    "evaluations",
    "steps_for_nfe",
    "SampleResult",
    "learn_schedule",
    "reference_endpoints",
    "mean_l2_error",
]
