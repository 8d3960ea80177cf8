r"""`FrozenPreconditioner`: ``M`` built once from a reference operator and reused by every solve.

A preconditioner is normally rebuilt from each operator it meets (`AbstractPreconditioner` runs
inside the solver's ``init``). Inside `optimistix.Newton` — the root finder of a diffrax implicit
method such as `diffrax.Kvaerno5` — that means once per *Newton iteration*, on every stage of
every step: each iteration calls `lineax.linear_solve` afresh with the new Jacobian. For a cheap
preconditioner that costs nothing; for one with a real setup (geometric multigrid probes
``3^d`` mat-vecs per level and factorises the coarsest grid) the setup dominates the solve.

A Krylov method needs only *some* fixed SPD ``M ≈ A⁻¹`` for CG's guarantees; ``M`` changes the
iteration count, never the solution the solve converges to. So for the stage Jacobians of a
method-of-lines problem ``u_t = -L u + r(u)`` (``L`` SPD, ``r' ≤ 0``),

.. math::

    A(u, h) = I + γ h\,(L - r'(u)), \qquad M = P\big(I + γ h_{\mathrm{ref}} L\big) \approx \big(I + γ h_{\mathrm{ref}} L\big)^{-1},

built once by a preconditioner ``P`` (e.g. `GeometricMultigrid`) from the reference
``I + γ h_ref L``, preconditions every Newton iteration of every stage and step. With
``r' ≤ 0`` and step sizes ``h`` within a factor ``q`` of ``h_ref``, the eigenvalues of
``(I + γ h_ref L)⁻¹ A`` lie in ``[min(1, h/h_ref), max(1, h/h_ref)]`` up to the ``-γh r'``
part, so PCG converges in ``O(√q)`` iterations; at a constant step size ``h = h_ref`` the
frozen ``M`` is exactly what a rebuild would give for the linear part.

`FrozenPreconditioner` is that ``M`` as an `AbstractPreconditioner`: its `build` ignores the
operator it is handed (beyond the structure check every preconditioner gets) and returns the
stored ``M``, so it drops into `Preconditioned`, `ConjugateGradient`, `optimistix.Newton` and
diffrax unchanged.

**Why not diffrax's chord root finder.** `diffrax.VeryChord` builds the Jacobian once per step
and keeps the linear solver's state, so it would build ``M`` once per step by design. With any
Krylov solver (lineax's own CG included) it fails in diffrax 0.7.2: `VeryChord.step` calls
``jax.lax.stop_gradient`` on the linear solver's state *unfiltered*, and a Krylov state holds
the (linearised, matrix-free) operator, whose closure-converted function is a ``Jaxpr`` leaf
(``TypeError: Argument '{ lambda … }' of type Jaxpr is not a valid JAX type``; `VeryChord.init`
filters the same state with `equinox.partition` first; LU's state is arrays only, so the default
never meets it). Hiding the non-array leaves in a static field does not help either: diffrax's
first-stage Jacobian ``cond`` (``_filter_maybe_cond``) then finds a different static ``Jaxpr``
in each branch and asserts. The fix is diffrax's (a filtered stop-gradient in `VeryChord.step`).

**Measured** (`benchmarks/stiff_reaction_diffusion.py`, Kvaerno5 + Newton, float64, the shared
2-core CPU under load): freezing `GeometricMultigrid` at ``h_ref = 1e-3`` takes 3491 Krylov
iterations and 2.7 s at 31² (rebuilt: 1205 and 8.9 s), 5313 and 15 s at 63² (rebuilt: 1643 and
144 s). Unpreconditioned CG is still faster there (5336 it, 0.24 s; 10384 it, 2.5 s): those
stage systems are well conditioned, and a V-cycle costs about 17 CG iterations at 31².
"""

from typing import ClassVar

import lineax as lx

from ..numerics.preconditioning import AbstractPreconditioner

__all__ = ["FrozenPreconditioner"]


class FrozenPreconditioner(AbstractPreconditioner):
    r"""``M = preconditioner(reference)``, built once, returned for every operator it is given.

    ``FrozenPreconditioner(GeometricMultigrid(), reference)`` builds the multigrid hierarchy of
    `reference` at construction and holds it; inside `Preconditioned` (or `ConjugateGradient`),
    every solve — every Newton iteration of every implicit stage of a diffrax solve — reuses it
    instead of rebuilding it from the Jacobian. See the module docstring for when a frozen ``M``
    is a good one (same structure, step sizes within a modest factor of the reference's).

    Construct it under `equinox.filter_jit` for a costly preconditioner (its build is then one
    compiled program instead of eager dispatch), or inside the jitted function that solves.

    **Arguments:**

    - `preconditioner`: a linear, positive definite `AbstractPreconditioner` (`Jacobi`,
      `SSOR`, `IncompleteCholesky`, `GeometricMultigrid`, a trained `LearnedMultigrid`, …):
      the frozen ``M`` goes to CG, which needs a fixed SPD map.
    - `reference`: the square lineax operator to build ``M`` from (e.g.
      ``DiffusionOperator(grid, γ h_ref, shift=1.0)`` for ``I + γ h_ref (-Δ_h)``). The
      operators of later solves must have its input structure (checked at each solve).

    The field `operator` is the built ``M`` (tagged symmetric positive semidefinite).
    """

    operator: lx.AbstractLinearOperator

    is_positive_definite: ClassVar[bool] = True
    is_linear: ClassVar[bool] = True

    def __init__(self, preconditioner: AbstractPreconditioner, reference: lx.AbstractLinearOperator):
        owner = "FrozenPreconditioner"
        if not isinstance(preconditioner, AbstractPreconditioner):
            raise TypeError(
                f"{owner}: `preconditioner` must be an AbstractPreconditioner, got {type(preconditioner).__name__}."
            )
        kind = type(preconditioner)
        if not (kind.is_linear and kind.is_positive_definite):
            raise ValueError(
                f"{owner}: `preconditioner` must be linear and positive definite (the frozen M goes to CG), got "
                f"{kind.__name__} with is_linear = {kind.is_linear}, is_positive_definite = {kind.is_positive_definite}."
            )
        if not isinstance(reference, lx.AbstractLinearOperator):
            raise TypeError(
                f"{owner}: `reference` must be a lineax.AbstractLinearOperator, got {type(reference).__name__}."
            )
        self.operator = preconditioner(reference)  # checks squareness and M's structure, adds the tags

    def build(self, operator: lx.AbstractLinearOperator) -> lx.AbstractLinearOperator:
        del operator  # frozen: the structure check of `AbstractPreconditioner.__call__` is all it gets
        return self.operator
