"""Neural operators: learned maps between functions on grids.

Architectures (every model maps **one sample**, channels first, ``(c_in, *grid) -> (c_out,
*grid)``; `jax.vmap` batches, and `jaxpde.training.fit` trains it):

- `SpectralConv`: the truncated spectral convolution in 1/2/3-D (dense or CP/Tucker-factorised
  weights);
- `FNO`: the Fourier neural operator (Li et al., ICLR 2021): lifting, Fourier layers,
  projection; optional coordinate channels and domain padding; resolution independent;
- `FourierMultiplier`: a learned multiplier on the lowest Fourier modes, a pointwise MLP and a
  low-pass projection — the small surrogate of the tour.
"""

from ._fno import FNO, Pointwise
from ._fourier_multiplier import FourierMultiplier
from ._spectral_conv import SpectralConv

__all__ = ["FNO", "FourierMultiplier", "Pointwise", "SpectralConv"]
