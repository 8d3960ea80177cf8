"""jaxpde: differentiable physics research in JAX.

Classical differentiable numerics (spectral methods, ETDRK, stencil and sparse operators), the
datasets they generate, and one training engine shared by every learned method — all composing
with diffrax, lineax, optimistix, optax and equinox.

Subpackages: `jaxpde.numerics`, `jaxpde.pdes`, `jaxpde.data`, `jaxpde.training`, the four
families `jaxpde.pinns`, `jaxpde.neural_operators`, `jaxpde.preconditioners`,
`jaxpde.samplers`, and `jaxpde.implicit`; the modules `jaxpde.grids`, `jaxpde.random_fields`,
`jaxpde.autodiff`, `jaxpde.metrics`, `jaxpde.experiment`. They are imported on first access
(``jaxpde.training`` pulls in orbax, which is slow to import).
"""

import importlib

from . import grids
from .grids import Grid

__version__ = "0.1.0"

_SUBMODULES = ("autodiff", "data", "experiment", "implicit", "metrics", "neural_operators", "numerics", "pdes", "pinns", "preconditioners", "random_fields", "samplers", "training")

__all__ = ["Grid", "grids", "__version__", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'jaxpde' has no attribute {name!r}")
