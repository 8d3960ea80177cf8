"""jaxpde: differentiable physics research in JAX.

Classical differentiable numerics (spectral methods, ETDRK, stencil and sparse operators), the
datasets they generate, and one training engine shared by every learned method — all composing
with diffrax, lineax, optimistix, optax and equinox.
"""

from . import grids
from .grids import Grid

__version__ = "0.1.0"

__all__ = ["Grid", "grids", "__version__"]
