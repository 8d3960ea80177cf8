"""Diffusion and flow samplers: noise schedules, paths, parameterisations, losses, and samplers as
diffrax solvers.

- Processes: `VPLinear`, `VPCosine`, `SubVP`, `VE`, `EDM` (subclasses of `AbstractSchedule`:
  ``x_t = α(t) x₀ + σ(t) ε``, log-SNR and its inverse, SDE drift and diffusion); flow paths
  `LinearPath` (rectified flow) and `StochasticInterpolant`, which are schedules too.
- Parameterisations ``"eps"``, ``"x0"``, ``"v"``, ``"score"``, ``"flow"``: exact `convert`,
  `probability_flow`, `sde_drift`, `classifier_free_guidance`, and `Denoiser` around any model.
- Ground truth: `GaussianMixture` (noised density, score and predictions exact at every time),
  `eight_gaussians`.
"""

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
from ._schedules import EDM, VE, AbstractSchedule, SubVP, VPCosine, VPLinear

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
]
