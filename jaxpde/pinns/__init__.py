"""Physics-informed neural networks: problems as maths, references, networks and training methods.

- References computed by jaxpde's own solvers and cached on disk: `allen_cahn_reference`,
  `burgers_reference`, `convection_reference` (each a `Reference` ``(x, t, u[t, x])``).
"""

from ._references import Reference, allen_cahn_reference, burgers_reference, convection_reference

__all__ = ["Reference", "allen_cahn_reference", "burgers_reference", "convection_reference"]
