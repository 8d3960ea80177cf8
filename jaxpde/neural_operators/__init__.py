"""Neural operators: learned maps between functions on grids.

Architectures (every model maps **one sample**, channels first, ``(c_in, *grid) -> (c_out,
*grid)``; `jax.vmap` batches, and `jaxpde.training.fit` trains it):

- `SpectralConv`: the truncated spectral convolution in 1/2/3-D (dense or CP/Tucker-factorised
  weights); `Pointwise`: the ``1 × 1`` convolution beside it;
- `FNO`: the Fourier neural operator (Li et al., ICLR 2021): lifting, Fourier layers,
  projection; optional coordinate channels and domain padding; resolution independent;
- `DeepONet`: branch net on sensor values, trunk net on query points (Lu et al., Nature Machine
  Intelligence 2021), evaluated at arbitrary points (`query_grid` for a grid's points);
- `UNet`: a 1-D/2-D U-Net with periodic or zero (Dirichlet) padding, tied to its grid;
- `TransformOnce`: one FFT in, residual layers on the truncated spectrum, one inverse FFT out
  (Poli et al., NeurIPS 2022), exactly resolution invariant on band-limited inputs;
- `FourierMultiplier`: a learned multiplier on the lowest Fourier modes, a pointwise MLP and a
  low-pass projection — the small surrogate of the tour.
"""

from ._deeponet import DeepONet, query_grid
from ._fno import FNO, Pointwise
from ._fourier_multiplier import FourierMultiplier
from ._spectral_conv import SpectralConv
from ._spectral_model import TransformOnce
from ._unet import UNet

__all__ = [
    "DeepONet",
    "FNO",
    "FourierMultiplier",
    "Pointwise",
    "SpectralConv",
    "TransformOnce",
    "UNet",
    "query_grid",
]
