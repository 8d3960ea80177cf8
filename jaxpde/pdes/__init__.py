"""The PDE catalogue: one module per equation family, each PDE an `equinox.Module`.

Time-dependent PDEs (`AbstractPDE`) provide ``rhs(t, u, args)`` (method of lines); the
semi-linear periodic ones (`AbstractSemiLinearPDE`) also ``linear_symbol()`` and
``nonlinear(t, u_hat, args)`` for the ETDRK solvers in `jaxpde.numerics.etdrk`. Stationary
PDEs (`AbstractStationaryPDE`) provide ``operator``, ``source_on_grid`` and ``solve``. Every PDE
follows one residual contract, ``residual(u_fn, x, t=None, args=None)`` (see
`jaxpde.pdes._base`), and offers ``exact_solution`` where one is known.
"""

from ._base import AbstractPDE, AbstractSemiLinearPDE
from ._stationary import AbstractStationaryPDE
from .allen_cahn import AllenCahn, jaxpi_allen_cahn
from .burgers import Burgers, cole_hopf_solution
from .diffusion import Advection, DirichletHeat, Heat, dirichlet_laplacian
from .elliptic import Darcy, Helmholtz, Poisson
from .gray_scott import GrayScott
from .kdv import KdV
from .kuramoto_sivashinsky import KuramotoSivashinsky
from .navier_stokes import NavierStokes2D

__all__ = [
    "AbstractPDE",
    "AbstractSemiLinearPDE",
    "AbstractStationaryPDE",
    "Heat",
    "DirichletHeat",
    "Advection",
    "dirichlet_laplacian",
    "Burgers",
    "cole_hopf_solution",
    "KdV",
    "KuramotoSivashinsky",
    "AllenCahn",
    "jaxpi_allen_cahn",
    "NavierStokes2D",
    "GrayScott",
    "Poisson",
    "Darcy",
    "Helmholtz",
]
