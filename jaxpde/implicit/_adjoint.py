r"""Matrix-free implicit adjoints: the backward pass of a solve as a checked Krylov solve.

Differentiating ``y(θ)`` defined by ``F(y, θ) = 0`` (a root, or ``F = f(z) - z`` for a fixed
point) by the implicit function theorem costs one linear solve per cotangent ``ḡ``:

.. math::

    \Big(\frac{\partial F}{\partial y}\Big)^{\!\top} \lambda = \bar g, \qquad
    \bar\theta = -\Big(\frac{\partial F}{\partial \theta}\Big)^{\!\top} \lambda,

whatever the number of iterations the forward solve took — constant memory (Bai, Kolter &
Koltun 2019, *Deep Equilibrium Models*; Blondel et al. 2022, *Efficient and modular implicit
differentiation*). `optimistix.ImplicitAdjoint` implements it, but its default linear solver
(`lineax.AutoLinearSolver`) LU-factorises the dense Jacobian: ``n²`` numbers, 8 TB in float64
for ``n = 10⁶``. `matrix_free_adjoint` gives it a Krylov solver instead, which needs only
Jacobian–vector products (`lineax.JacobianLinearOperator`; its transpose is a vector–Jacobian
product), so the backward pass costs ``O(n)`` memory — plus the Krylov basis for GMRES.

`CheckedSolver` wraps that Krylov solver: it scales the right-hand side to unit max norm
(lineax's Krylov stopping tests ``|r_i| ≤ atol + rtol |b_i|`` then need no problem-dependent
``atol``; the tolerances become relative to the cotangent's size) and raises, naming the
adjoint solve, when the solver does not converge — lineax's own error does not say which solve
failed, and optimistix's forward ``throw`` does not cover the backward pass.
"""

import math
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx
import optimistix as optx
from jaxtyping import Array

__all__ = ["CheckedSolver", "matrix_free_adjoint"]


def _size(structure) -> int:
    return sum(math.prod(leaf.shape) for leaf in jtu.tree_leaves(structure))


def _restructure(tree, structure):
    """The entries of `tree`, in order, as a pytree of `structure` (same total size)."""
    flat = jnp.concatenate([jnp.ravel(leaf) for leaf in jtu.tree_leaves(tree)])
    leaves, offset = [], 0
    for leaf in jtu.tree_leaves(structure):
        size = math.prod(leaf.shape)
        leaves.append(flat[offset : offset + size].reshape(leaf.shape).astype(leaf.dtype))
        offset += size
    return jtu.tree_unflatten(jtu.tree_structure(structure), leaves)


def _max_abs(tree) -> Array:
    leaves = [jnp.max(jnp.abs(a), initial=0) for a in jtu.tree_leaves(tree)]
    return jnp.max(jnp.stack(leaves)) if leaves else jnp.zeros(())


# Set by `CheckedSolver.transpose`/`conj` in the options of the solve they prepare: lineax solves
# the transposed system with the same solver object when it differentiates a solve in reverse mode.
_ADJOINT = "jaxpde.implicit.adjoint"


class CheckedSolver(lx.AbstractLinearSolver):
    r"""A lineax solver for the adjoint solves of implicit differentiation: scale-free, checked.

    Solves ``A x = b`` as ``x = s · A⁻¹ (b / s)`` with ``s = max_i |b_i|`` (so the inner solver's
    tolerances are relative to the cotangent's size), and raises — naming `stage` — when the
    inner solver does not report success. Any lineax solver goes inside: `lineax.GMRES`,
    `lineax.BiCGStab`, jaxpde's `ConjugateGradient` or `Preconditioned`.

    **Arguments:**

    - `solver`: the inner lineax solver.
    - `stage`: what the message calls the solve (e.g. ``"fixed_point: the adjoint solve"``).
    - `adjoint_only`: ``False`` (default): every solve is scaled and checked (the solver of an
      `optimistix.ImplicitAdjoint`, which makes only adjoint solves). ``True``: solves made
      directly run unscaled and unchecked (the caller reports their result); only the
      transposed and conjugated solves lineax makes to differentiate them are scaled and
      checked (`jaxpde.implicit.linear_solve`).
    """

    solver: lx.AbstractLinearSolver
    stage: str = eqx.field(static=True, default="the adjoint linear solve of implicit differentiation")
    adjoint_only: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if not isinstance(self.solver, lx.AbstractLinearSolver):
            raise TypeError(f"CheckedSolver: `solver` must be a lineax.AbstractLinearSolver, got {type(self.solver).__name__}.")

    def init(self, operator, options: dict[str, Any]):
        structure, out_structure = operator.in_structure(), operator.out_structure()
        if eqx.tree_equal(structure, out_structure) is True:
            return self.solver.init(operator, options), None
        # Same size, other shapes: diffrax's ImplicitAdjoint hands over the Jacobian of the
        # vector field with respect to the saved states, (1, n) -> (n,). Krylov solvers need a
        # square operator: solve with R A, R the reshape of A's output into its input structure.
        if _size(structure) != _size(out_structure):
            raise ValueError(
                f"CheckedSolver: the operator must have as many inputs as outputs, got input structure {structure} "
                f"and output structure {out_structure}."
            )
        square = lx.FunctionLinearOperator(lambda x: _restructure(operator.mv(x), structure), structure)
        return self.solver.init(square, options), (structure, out_structure, False)

    def compute(self, state, vector, options: dict[str, Any]):
        inner_state, shapes = state
        if shapes is not None:
            structure, out_structure, transposed = shapes
            solution, result, stats = self._compute(inner_state, _restructure(vector, structure), options)
            return (_restructure(solution, out_structure) if transposed else solution), result, stats
        return self._compute(inner_state, vector, options)

    def _compute(self, state, vector, options: dict[str, Any]):
        adjoint = bool(options.get(_ADJOINT, False)) or not self.adjoint_only
        options = {k: v for k, v in options.items() if k != _ADJOINT}
        if not adjoint:
            return self.solver.compute(state, vector, options)
        scale = _max_abs(vector)
        scale = jnp.where((scale > 0) & jnp.isfinite(scale), scale, jnp.ones_like(scale))
        scaled = jtu.tree_map(lambda b: b / scale.astype(b.dtype), vector)
        solution, result, stats = self.solver.compute(state, scaled, options)
        solution = jtu.tree_map(lambda x: x * scale.astype(x.dtype), solution)
        message = (
            f"{self.stage} did not converge (inner solver {type(self.solver).__name__} stopped without success: "
            "out of steps, breakdown or non-finite values); the gradient would be wrong. Loosen its tolerances, "
            "raise its max_steps, precondition it, or check that the Jacobian at the solution is invertible."
        )
        solution = jtu.tree_map(lambda x: eqx.error_if(x, result != lx.RESULTS.successful, message), solution)
        return solution, result, stats

    def transpose(self, state, options: dict[str, Any]):
        inner_state, shapes = state
        options = {k: v for k, v in options.items() if k != _ADJOINT}
        inner_state, options = self.solver.transpose(inner_state, options)
        if shapes is not None:  # (R A)ᵀ = Aᵀ Rᵀ: the solution then needs A's output structure
            shapes = (shapes[0], shapes[1], not shapes[2])
        return (inner_state, shapes), {**options, _ADJOINT: True}

    def conj(self, state, options: dict[str, Any]):
        inner_state, shapes = state
        options = {k: v for k, v in options.items() if k != _ADJOINT}
        inner_state, options = self.solver.conj(inner_state, options)
        return (inner_state, shapes), {**options, _ADJOINT: True}

    def assume_full_rank(self) -> bool:
        return self.solver.assume_full_rank()


def matrix_free_adjoint(
    linear_solver: lx.AbstractLinearSolver | None = None,
    *,
    rtol: float = 1e-8,
    max_steps: int | None = None,
    stage: str = "the adjoint linear solve of implicit differentiation",
) -> optx.ImplicitAdjoint:
    r"""An `optimistix.ImplicitAdjoint` whose backward solve is matrix-free and checked.

    ``optimistix.root_find(..., adjoint=matrix_free_adjoint())`` differentiates by the implicit
    function theorem without ever forming ``∂F/∂y``.

    **Arguments:**

    - `linear_solver`: the adjoint solver (any lineax solver; jaxpde's ``Preconditioned`` to
      precondition it). Default: `lineax.GMRES` (restart 20) with ``rtol = atol = `` `rtol`
      relative to the cotangent's max norm (see `CheckedSolver`).
    - `rtol`, `max_steps`: the default solver's tolerance and iteration cap (ignored when
      `linear_solver` is given).
    - `stage`: the name the error message gives this solve.
    """
    if linear_solver is None:
        linear_solver = lx.GMRES(rtol=rtol, atol=rtol, max_steps=max_steps)
    if not isinstance(linear_solver, CheckedSolver):
        linear_solver = CheckedSolver(linear_solver, stage)
    return optx.ImplicitAdjoint(linear_solver=linear_solver)


def _resolve_adjoint(owner: str, adjoint, rtol: float, max_steps: int | None):
    """``"implicit"`` → `matrix_free_adjoint`; ``"unrolled"`` → reverse mode through the iterations
    (`optimistix.RecursiveCheckpointAdjoint`); an optimistix adjoint passes through, an
    `ImplicitAdjoint` with its solver checked."""
    stage = f"{owner}: the adjoint linear solve (implicit function theorem)"
    if adjoint == "implicit":
        return matrix_free_adjoint(rtol=rtol, max_steps=max_steps, stage=stage)
    if adjoint == "unrolled":
        return optx.RecursiveCheckpointAdjoint()
    if isinstance(adjoint, optx.ImplicitAdjoint):
        return matrix_free_adjoint(adjoint.linear_solver, stage=stage)
    if isinstance(adjoint, optx.AbstractAdjoint):
        return adjoint
    raise ValueError(
        f"{owner}: `adjoint` must be 'implicit', 'unrolled' or an optimistix.AbstractAdjoint, got {adjoint!r}."
    )
