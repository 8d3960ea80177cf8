"""Neural operators: learned maps between functions on grids.

`FourierMultiplier`: a learned multiplier on the lowest Fourier modes, a pointwise MLP and a
low-pass projection — the small surrogate of the tour. Every model maps **one sample**;
`jax.vmap` batches, and `jaxpde.training.fit` trains it.
"""

from ._fourier_multiplier import FourierMultiplier

__all__ = ["FourierMultiplier"]
