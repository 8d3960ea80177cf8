"""Differentiable solves at constant memory: linear solves, roots, fixed points, steady states.

Every solve returns an `ImplicitSolution` (``value``, ``result``, ``converged``, ``num_steps``,
``stats``, ``aux``) and is differentiated by the implicit function theorem with a matrix-free,
checked Krylov adjoint solve (`matrix_free_adjoint`, `CheckedSolver`): no dense Jacobian, and an
error — never a wrong gradient — when the forward or the adjoint solve does not converge.

- `linear_solve`: lineax's solve with jaxpde's Krylov solvers, gradients guarded.
- `root_find`: Newton–Krylov (optionally preconditioned) for ``F(y, θ) = 0``.
- `fixed_point`: ``z = f(z, θ)``, default solver `AndersonAcceleration` (an optimistix
  fixed-point solver, usable in `optimistix.fixed_point` directly).
- `steady_state`: integrate a diffrax ODE to its steady state, differentiated implicitly.
"""

from ._adjoint import CheckedSolver, matrix_free_adjoint
from ._anderson import AndersonAcceleration
from ._fixed_point import fixed_point
from ._linear import linear_solve
from ._root import root_find
from ._solution import ImplicitSolution
from ._time import steady_state

__all__ = [
    "ImplicitSolution",
    "CheckedSolver",
    "matrix_free_adjoint",
    "AndersonAcceleration",
    "fixed_point",
    "linear_solve",
    "root_find",
    "steady_state",
]
