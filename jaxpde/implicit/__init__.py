"""Differentiable solves at constant memory: linear solves, roots, fixed points, time integration.

Every solve returns an `ImplicitSolution` and is differentiated by the implicit function theorem
with a matrix-free, checked Krylov adjoint solve (`matrix_free_adjoint`, `CheckedSolver`): no
dense Jacobian, no wrong gradient from an unconverged solve.

- `fixed_point` (default solver `AndersonAcceleration`, an optimistix fixed-point solver).
"""

from ._adjoint import CheckedSolver, matrix_free_adjoint
from ._anderson import AndersonAcceleration
from ._fixed_point import fixed_point
from ._solution import ImplicitSolution

__all__ = [
    "ImplicitSolution",
    "CheckedSolver",
    "matrix_free_adjoint",
    "AndersonAcceleration",
    "fixed_point",
]
