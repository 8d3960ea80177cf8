r"""`Preconditioned`: a lineax solver that carries its preconditioner, for solves made by others.

lineax takes a preconditioner only through ``options={"preconditioner": M}``: ``M`` is fixed before
the solve, is not differentiable, and never reaches a linear solve that optimistix or diffrax
make internally — their Newton steps and implicit stages call `lineax.linear_solve` with a
solver *object* and a Jacobian they build themselves. `Preconditioned` is that object: it holds
an `AbstractPreconditioner` as a field and builds ``M = P(A)`` in `init`, from whatever operator
it is handed, under jit and vmap. Then it runs

- ``"cg"``: `jaxpde.numerics.krylov.ConjugateGradient` (norm-based stopping, robust float32);
- ``"gmres"``: `lineax.GMRES` (Saad & Schultz 1986), ``M`` as its (left) preconditioner;
- ``"bicgstab"``: `lineax.BiCGStab` (van der Vorst 1992), ``M`` as its (right) preconditioner.

**Untagged operators.** diffrax hands optimistix the Jacobian of an implicit stage,
``I - γ h ∂f/∂y``, with no tags, and CG refuses an operator not tagged positive (or negative)
semidefinite. The `structure` field declares what the user knows: ``"spd"`` tags the operator
symmetric positive semidefinite, ``"symmetric"`` symmetric; ``"general"`` and ``None`` leave it
as it comes. For a method-of-lines reaction–diffusion problem ``u_t = DΔu + r(u)`` with
``r' ≤ 0``, ``I - γ h J`` is symmetric positive definite, and ``structure="spd"`` with
``method="cg"`` is right.

**Derivatives.** `lineax.linear_solve` differentiates a solve by solving with the transposed
(or conjugated) operator through the same solver; `transpose` and `conj` here rebuild ``M`` from
the transposed operator's state (``Mᵀ``, ``conj(M)``), so ``x = A⁻¹ b`` is differentiable in ``A``
and ``b`` as for any lineax solver. ``M`` itself is held under `jax.lax.stop_gradient`: it
changes the speed, not the solution.
"""

from typing import Any, ClassVar, Literal

import equinox as eqx
import jax
import lineax as lx
from jaxtyping import Array, PyTree

from ..numerics.krylov import ConjugateGradient
from ..numerics.preconditioning import AbstractPreconditioner

__all__ = ["Preconditioned"]

_TAGS = {
    "spd": frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag}),
    "symmetric": frozenset({lx.symmetric_tag}),
    "general": frozenset(),
    None: frozenset(),
}


def _tagged(operator: lx.AbstractLinearOperator, structure) -> lx.AbstractLinearOperator:
    tags = _TAGS[structure]
    if not tags or all(_has_tag(operator, tag) for tag in tags):
        return operator
    return lx.TaggedLinearOperator(operator, tags)


def _stopped(tree):
    dynamic, static = eqx.partition(tree, eqx.is_array)
    return eqx.combine(jax.lax.stop_gradient(dynamic), static)


def _has_tag(operator, tag) -> bool:
    return lx.is_symmetric(operator) if tag is lx.symmetric_tag else lx.is_positive_semidefinite(operator)


class Preconditioned(lx.AbstractLinearSolver):
    r"""A Krylov solve with a preconditioner built from the operator inside `init`.

    ``Preconditioned(Jacobi(stencil_reach=1), method="cg", structure="spd", rtol=1e-6)`` is a
    lineax solver: pass it to `lineax.linear_solve`, as `optimistix.Newton(linear_solver=…)`, or
    as the root finder's linear solver of a diffrax implicit method (``Kvaerno5(root_finder=
    optimistix.Newton(…, linear_solver=…))``). See the module docstring.

    `stats` are the inner solver's (``num_steps`` counts Krylov iterations in all three methods).

    **Arguments:**

    - `preconditioner`: an `AbstractPreconditioner` (e.g. `Jacobi()`, or ``Jacobi(stencil_reach=1)``
      for the matrix-free Jacobians of diffrax and optimistix: exact diagonal in 9 mat-vecs in 2D),
      or ``None`` for an unpreconditioned solve. CG takes only preconditioners whose class is
      ``is_positive_definite`` and ``is_linear``; GMRES and BiCGStab any ``is_linear`` one. A
      nonlinear or variable preconditioner needs `FlexibleCG` or `FGMRES`.
    - `method`: ``"cg"`` (default), ``"gmres"`` or ``"bicgstab"``.
    - `rtol`, `atol`: tolerances (CG: ``‖r‖₂ ≤ max(rtol ‖b‖₂, atol)``; GMRES and BiCGStab use
      lineax's elementwise test ``|r_i| ≤ atol + rtol |b_i|``, and need ``atol > 0`` inside a
      Newton solve: with ``atol = 0`` they report breakdown, or NaN, once the Newton residual is
      at round-off — measured on ``-Δu + u³ = f``).
    - `max_steps`: iteration cap (``None``: each method's default).
    - `structure`: ``"spd"``, ``"symmetric"``, ``"general"`` or ``None`` (default): tags added to
      the operator before the solve (see the module docstring).
    - `restart`: GMRES's restart length (default 20).
    """

    preconditioner: AbstractPreconditioner | None
    method: Literal["cg", "gmres", "bicgstab"] = eqx.field(static=True, default="cg")
    rtol: float = 1e-6
    atol: float = 0.0
    max_steps: int | None = None
    structure: Literal["spd", "symmetric", "general"] | None = eqx.field(static=True, default=None)
    restart: int = 20

    methods: ClassVar[tuple[str, ...]] = ("cg", "gmres", "bicgstab")

    def __check_init__(self):
        owner = "Preconditioned"
        if self.preconditioner is not None and not isinstance(self.preconditioner, AbstractPreconditioner):
            hint = " (wrap a fixed operator M as options={'preconditioner': M})" if isinstance(
                self.preconditioner, lx.AbstractLinearOperator
            ) else ""
            raise TypeError(
                f"{owner}: `preconditioner` must be an AbstractPreconditioner or None, got "
                f"{type(self.preconditioner).__name__}{hint}."
            )
        if self.method not in self.methods:
            raise ValueError(f"{owner}: `method` must be one of {self.methods}, got {self.method!r}.")
        if self.structure not in _TAGS:
            raise ValueError(
                f"{owner}: `structure` must be 'spd', 'symmetric', 'general' or None, got {self.structure!r}."
            )
        if self.preconditioner is not None and not type(self.preconditioner).is_linear:
            raise ValueError(
                f"{owner}: the preconditioner {type(self.preconditioner).__name__} is not a fixed linear map "
                "(is_linear = False); CG, GMRES and BiCGStab need one. Use jaxpde.preconditioners.FlexibleCG or "
                "FGMRES."
            )
        if self.method == "cg":
            self._inner()  # CG's own checks (tolerances, an SPD preconditioner), at construction

    def _inner(self) -> lx.AbstractLinearSolver:
        if self.method == "cg":
            return ConjugateGradient(
                rtol=self.rtol, atol=self.atol, max_steps=self.max_steps, preconditioner=self.preconditioner
            )
        if self.method == "gmres":
            return lx.GMRES(rtol=self.rtol, atol=self.atol, max_steps=self.max_steps, restart=self.restart)
        return lx.BiCGStab(rtol=self.rtol, atol=self.atol, max_steps=self.max_steps)

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        operator = _tagged(operator, self.structure)
        if self.method == "cg" or self.preconditioner is None:
            # CG builds M itself (from the operator it has negated to positive definite, if need be).
            return self._inner().init(operator, options), None
        operator = lx.linearise(operator)
        preconditioner = _stopped(self.preconditioner(operator))  # checks its structure
        return self._inner().init(operator, options), preconditioner

    def compute(self, state, vector: PyTree[Array], options: dict[str, Any]):
        inner_state, preconditioner = state
        if preconditioner is not None:
            if "preconditioner" in options:
                raise ValueError("Preconditioned: a preconditioner was given both as a field and in `options`.")
            options = {**options, "preconditioner": preconditioner}
        return self._inner().compute(inner_state, vector, options)

    def transpose(self, state, options: dict[str, Any]):
        inner_state, preconditioner = state
        inner_state, options = self._inner().transpose(inner_state, options)
        return (inner_state, None if preconditioner is None else preconditioner.transpose()), options

    def conj(self, state, options: dict[str, Any]):
        inner_state, preconditioner = state
        inner_state, options = self._inner().conj(inner_state, options)
        return (inner_state, None if preconditioner is None else lx.conj(preconditioner)), options

    def assume_full_rank(self) -> bool:
        return True
