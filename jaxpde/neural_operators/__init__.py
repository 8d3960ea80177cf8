"""Neural operators: learned maps between functions on grids.

Architectures (every model maps **one sample**, channels first, ``(c_in, *grid) -> (c_out,
*grid)``; `jax.vmap` batches, and `jaxpde.training.fit` trains it):

- `SpectralConv`: the truncated spectral convolution in 1/2/3-D (dense or CP/Tucker-factorised
  weights; the retained spectrum by truncated-DFT products or FFTs, whichever is cheaper);
  `Pointwise`: the ``1 × 1`` convolution beside it, on `channel_mix` (a channel contraction
  whose `jax.vmap` is one batched matrix product, no transposed copies of the field);
- `FNO`: the Fourier neural operator (Li et al., ICLR 2021): lifting, Fourier layers,
  projection; optional coordinate channels and domain padding; resolution independent;
- `DeepONet`: branch net on sensor values, trunk net on query points (Lu et al., Nature Machine
  Intelligence 2021), evaluated at arbitrary points (`query_grid` for a grid's points);
- `UNet`: a 1-D/2-D U-Net with periodic or zero (Dirichlet) padding, tied to its grid;
- `TransformOnce`: one FFT in, residual layers on the truncated spectrum, one inverse FFT out
  (Poli et al., NeurIPS 2022), exactly resolution invariant on band-limited inputs;
- `FourierMultiplier`: a learned multiplier on the lowest Fourier modes, a pointwise MLP and a
  low-pass projection, on bare 1-D fields (no channel axis) — the smallest baseline.

Training (any of the models above; losses in `fit`'s ``loss_fn(model, batch, key)`` form):

- `operator_loss`, `relative_l2_loss`, `relative_h1_loss`: supervised operator learning;
- `Emulator`, `SolverStep`, `trajectory_windows`: autoregressive emulators trained one-step,
  unrolled or with a differentiable solver step in the loop, predicting the state or the increment;
- `physics_informed_loss`, `semilinear_residual`: the PDE's residual of a rollout;
- `stationary_physics_loss`, `stationary_residual`: the discrete residual of a predicted
  solution of a stationary PDE (Darcy), the solver's own operator;
- `PDERefiner`: a one-step emulator refined by K denoising steps (Lippe et al., NeurIPS 2023);
- `breakeven`, `Breakeven`, `SolverSetting`, `evaluate_settings`, `match_solver`,
  `breakeven_rollouts`, `seconds_per_call`, `fourier_resample`: the classical solver that matches
  an emulator's error and the rollouts after which training and data are paid back.
"""

from ._breakeven import (
    Breakeven,
    SolverSetting,
    breakeven,
    breakeven_rollouts,
    evaluate_settings,
    fourier_resample,
    match_solver,
    seconds_per_call,
)
from ._deeponet import DeepONet, query_grid
from ._emulator import Emulator, SolverStep, trajectory_windows
from ._channel_mix import channel_mix
from ._fno import FNO, Pointwise
from ._fourier_multiplier import FourierMultiplier
from ._losses import operator_loss, relative_h1_loss, relative_l2_loss
from ._physics_loss import physics_informed_loss, semilinear_residual
from ._refiner import PDERefiner
from ._spectral_conv import SpectralConv
from ._spectral_model import TransformOnce
from ._stationary_loss import stationary_physics_loss, stationary_residual
from ._unet import UNet

__all__ = [
    "Breakeven",
    "DeepONet",
    "Emulator",
    "FNO",
    "FourierMultiplier",
    "PDERefiner",
    "Pointwise",
    "SolverSetting",
    "SolverStep",
    "SpectralConv",
    "TransformOnce",
    "UNet",
    "breakeven",
    "breakeven_rollouts",
    "channel_mix",
    "evaluate_settings",
    "fourier_resample",
    "match_solver",
    "operator_loss",
    "physics_informed_loss",
    "query_grid",
    "relative_h1_loss",
    "relative_l2_loss",
    "semilinear_residual",
    "seconds_per_call",
    "stationary_physics_loss",
    "stationary_residual",
    "trajectory_windows",
]
