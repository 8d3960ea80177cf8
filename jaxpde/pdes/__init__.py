"""The PDE catalogue: one module per equation family, each PDE an `equinox.Module`.

Every PDE provides ``rhs(t, u, args)`` (method of lines), ``residual(u_fn, x, t)`` (PINNs) and,
where one exists, ``exact_solution(x, t)``; the semi-linear periodic ones also provide
``linear_symbol()`` and ``nonlinear(t, u_hat, args)`` for the ETDRK solvers in
`jaxpde.numerics.etdrk`.
"""

from ._base import AbstractPDE, AbstractSemiLinearPDE
from .allen_cahn import AllenCahn, jaxpi_allen_cahn
from .burgers import Burgers, cole_hopf_solution
from .diffusion import Advection, Heat, dirichlet_laplacian
from .elliptic import Darcy, Helmholtz, Poisson
from .gray_scott import GrayScott
from .kdv import KdV
from .kuramoto_sivashinsky import KuramotoSivashinsky
from .navier_stokes import NavierStokes2D

__all__ = [
    "AbstractPDE",
    "AbstractSemiLinearPDE",
    "Heat",
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
