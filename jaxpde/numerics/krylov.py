r"""Krylov solvers as lineax solvers: a robust conjugate gradient and mixed-precision refinement.

**Why a CG of our own.** `lineax.CG` has three properties that bite in practice: its stopping test is elementwise (``|r_i| ≤ atol + rtol |b_i|`` plus a test on the
update), which takes 5–10% more iterations than the usual ``‖r‖₂ ≤ rtol ‖b‖₂``; its breakdown
test ``pᵀAp > 200 n ε · rᵀz`` is not scale-invariant — ``pᵀAp / rᵀz`` is a Rayleigh quotient of
the preconditioned operator, ``O(h²)`` for smooth residuals, while ``200 n ε ~ h^{-d} ε`` — so in
float32 a Jacobi-preconditioned solve reports breakdown (NaN) after a few steps; and it trusts
the recursively updated residual, which in float32 drifts away from the true residual ``b - Ax``.
`ConjugateGradient` below is a lineax solver (so it composes with `lineax.linear_solve`,
its implicit differentiation, optimistix and diffrax) with scipy's norm-based test, a
breakdown test that only fires when ``pᵀAp ≤ 0`` (scale-invariant: for an SPD operator that
happens only in finite-precision collapse), and a check of the *true* residual before it
reports success.

**What float32 can reach.** A float32 vector ``x`` carries rounding errors ``δx ≈ ε₃₂ |x|``
(``ε₃₂ ≈ 6·10⁻⁸``), and the operator amplifies them like its largest eigenvalue: even the exact
solution rounded to float32 has a relative residual ``‖A δx‖ / ‖b‖`` of about ``2·10⁻⁵`` on the
64² FNO Darcy problem, ``8·10⁻⁵`` at 128² and ``4·10⁻⁴`` at 256² (measured), and float32 CG,
whose updates add rounding of their own, stalls a few times above that (256²: ``6·10⁻⁴`` with
Jacobi, ``3·10⁻³`` without; relative errors of the solution ``1.6·10⁻⁶`` and ``1.6·10⁻⁵``). No
float32 solver can meet ``rtol = 1e-6`` there. `ConjugateGradient` then stops with
`lineax.RESULTS.stagnation` (the true residual no longer decreases) instead of spinning to
``max_steps``, and the PDE solvers turn that into an error that says so; ``rtol = atol = 0``
asks for exactly that point ("to working precision": iterate until the true residual
stagnates, and call that success). To reach tighter tolerances from float32
arithmetic, use `MixedPrecisionRefinement` (float32 CG inside, float64 residuals outside; needs
``jax_enable_x64``): three sweeps reach ``1e-6`` at 256².

**What every solver here guarantees, on any input.** (1) It returns within its step budget:
`ConjugateGradient` within ``max_steps`` iterations, `MixedPrecisionRefinement` within
``max_refinements`` sweeps — a NaN, an Inf or an overflow cannot keep a loop alive, also
inside `jax.vmap`, where one bad sample stops early and the others run on. (2) A non-finite
right-hand side or initial guess is reported as `lineax.RESULTS.nonfinite_input`, a non-finite
value met during the iteration (a NaN in the operator, an overflow) as
`lineax.RESULTS.breakdown`; neither is ever "successful". (3) Norms do not overflow: the
iteration runs on ``b / s`` with ``s = 2^k ≤ max |b_i| < 2s`` (an exact scaling, so iterates
are bitwise those of the unscaled problem whenever that one does not overflow), and ``‖·‖₂``
outside the loop is computed as ``s ‖x / s‖₂`` in the same way.
(4) Solver state is a pytree of arrays with its flags static, so `init` can be jitted and the
state carried through `jax.lax` loops and `custom_jvp`; every solver runs under
``jax.numpy_dtype_promotion("strict")`` and on complex (Hermitian) systems.
"""

import math
import numbers
from typing import Any, NamedTuple

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx
import numpy as np
from jaxtyping import Array, PyTree, Scalar

from .preconditioning import AbstractPreconditioner

__all__ = ["ConjugateGradient", "MixedPrecisionRefinement"]


# ----------------------------------------------------------------------------------------------
# Pytree arithmetic for the Krylov loops. Dot products are elementwise products and sums rather
# than `jnp.dot`, so no matrix unit (and no reduced-precision TPU matmul pass) is involved.
# Scalars are cast to each leaf's dtype explicitly, so the loops run under strict dtype
# promotion and on complex leaves (a real float64 step length times a complex128 vector is an
# implicit promotion that strict mode refuses).
# ----------------------------------------------------------------------------------------------


def _dot(x: PyTree[Array], y: PyTree[Array]) -> Scalar:
    """``Re ⟨x, y⟩ = Re Σ conj(x_i) y_i`` (real for the Hermitian forms CG takes)."""
    return sum(jnp.sum(jnp.conj(a) * b).real for a, b in zip(jtu.tree_leaves(x), jtu.tree_leaves(y)))


def _norm(x: PyTree[Array]) -> Scalar:
    """Plain ``‖x‖₂``, for vectors known to be of order one (the scaled loop variables)."""
    return jnp.sqrt(_dot(x, x))


def _max_abs(x: PyTree[Array]) -> Scalar:
    return jnp.max(jnp.stack([jnp.max(jnp.abs(a), initial=0) for a in jtu.tree_leaves(x)]))


def _scale_exponent(x: PyTree[Array]) -> Array:
    """The integer ``k`` with ``2^k ≤ max |x_i| < 2^(k+1)`` (``0`` for a zero or non-finite ``x``),
    so that ``|x_i| / 2^k < 2``: ``2^k`` itself never overflows, even next to the largest float."""
    m = _max_abs(x)
    usable = (m > 0) & jnp.isfinite(m)
    _, exponent = jnp.frexp(jnp.where(usable, m, jnp.ones_like(m)))  # m = f·2^e, f ∈ [1/2, 1)
    return jnp.where(usable, exponent - 1, jnp.zeros_like(exponent))


def _times_power_of_two(x: PyTree[Array], k: Array) -> PyTree[Array]:
    """``x · 2^k``, exact in binary floating point (up to over/underflow of the result).

    Applied as two factors ``2^⌊k/2⌋ · 2^(k-⌊k/2⌋)``, each far from the ends of the exponent
    range: one factor ``2^k`` (or a division by ``2^-k``, which XLA turns into a product with the
    reciprocal) would be subnormal for ``|k|`` near the largest exponent, and XLA on CPU flushes
    subnormals to zero."""
    half = k // 2
    rest = k - half

    def scale(a):
        unit = jnp.ones((), jnp.finfo(a.dtype).dtype)
        return a * jnp.ldexp(unit, half).astype(a.dtype) * jnp.ldexp(unit, rest).astype(a.dtype)

    return jtu.tree_map(scale, x)


def _safe_norm(x: PyTree[Array]) -> Scalar:
    """``‖x‖₂ = 2^k ‖x / 2^k‖₂`` with ``2^k ≈ max |x_i|``: no overflow of ``Σ |x_i|²`` (float32
    overflows at ``|x_i| ≈ 1.8·10¹⁹``), no underflow for tiny ``x``; NaN/Inf propagate."""
    k = _scale_exponent(x)
    return _times_power_of_two(_norm(_times_power_of_two(x, -k)), k)


def _axpy(alpha: Scalar, x: PyTree[Array], y: PyTree[Array]) -> PyTree[Array]:
    return jtu.tree_map(lambda a, b: alpha.astype(a.dtype) * a + b, x, y)


def _sub(x: PyTree[Array], y: PyTree[Array]) -> PyTree[Array]:
    return jtu.tree_map(lambda a, b: a - b, x, y)


def _where(pred, x: PyTree[Array], y: PyTree[Array]) -> PyTree[Array]:
    return jtu.tree_map(lambda a, b: jnp.where(pred, a, b), x, y)


def _all_finite(x: PyTree[Array]) -> Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jtu.tree_leaves(x)]))


def _size(structure: PyTree[jax.ShapeDtypeStruct]) -> int:
    return sum(math.prod(s.shape) for s in jtu.tree_leaves(structure))


# Outcome codes of the loops, mapped to lineax RESULTS at the end.
_RUNNING, _CONVERGED, _BREAKDOWN, _STAGNATION, _MAX_STEPS, _NONFINITE = 0, 1, 2, 3, 4, 5


def _to_results(status):
    return lx.RESULTS.where(
        status == _CONVERGED,
        lx.RESULTS.successful,
        lx.RESULTS.where(
            status == _BREAKDOWN,
            lx.RESULTS.breakdown,
            lx.RESULTS.where(
                status == _STAGNATION,
                lx.RESULTS.stagnation,
                lx.RESULTS.where(status == _NONFINITE, lx.RESULTS.nonfinite_input, lx.RESULTS.max_steps_reached),
            ),
        ),
    )


# ----------------------------------------------------------------------------------------------
# Argument checks shared by the solvers ("Owner: `x` must be …, got …").
# ----------------------------------------------------------------------------------------------


def _check_tolerance(value, name: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{owner}: `{name}` must be a finite real number >= 0, got {value!r}.")
    return float(value)


def _check_count(value, name: str, owner: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        expected = "a positive integer or None" if allow_none else "a positive integer"
        raise ValueError(f"{owner}: `{name}` must be {expected}, got {value!r}.")
    return int(value)


def _check_flag(value, name: str, owner: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: `{name}` must be True or False, got {value!r}.")
    return bool(value)


def _stopped(tree: PyTree) -> PyTree:
    """`tree` with `jax.lax.stop_gradient` on its arrays (functions and static data untouched)."""
    dynamic, static = eqx.partition(tree, eqx.is_array)
    return eqx.combine(jax.lax.stop_gradient(dynamic), static)


def _check_preconditioner_structure(preconditioner: lx.AbstractLinearOperator, operator, owner: str) -> None:
    structure = operator.in_structure()
    for side, got in (("input", preconditioner.in_structure()), ("output", preconditioner.out_structure())):
        if eqx.tree_equal(got, structure) is not True:
            raise ValueError(
                f"{owner}: the preconditioner's {side} structure must be the operator's input structure "
                f"{structure}, got {got}."
            )


class _CGSteps(NamedTuple):
    """The carry of the inner loop: the PCG recurrences between two true-residual checks."""

    y: PyTree[Array]  # iterate
    r: PyTree[Array]  # recursive residual
    p: PyTree[Array]  # search direction
    gamma: Scalar  # rᴴ M r
    r_norm: Scalar  # ‖r‖₂ (recursive)
    step: Array  # iterations so far (mat-vecs with p)
    chunk: Array  # iterations in this chunk
    broken: Array  # non-positive curvature, negative rᴴMr or a non-finite value met


class _CGState(NamedTuple):
    """The carry of the outer loop: the recurrences plus the bookkeeping of the true-residual checks."""

    y: PyTree[Array]
    r: PyTree[Array]
    p: PyTree[Array]
    gamma: Scalar
    r_norm: Scalar
    step: Array
    best: Scalar  # smallest true residual norm so far
    since_best: Array  # checks since `best` last improved by 10%
    replaced: Array  # a residual was replaced since `best` last improved
    replacements: Array  # residual replacements so far
    true_norm: Scalar  # ‖b - A y‖₂ at the last check
    rounds: Array  # checks so far
    status: Array  # one of the _RUNNING, _CONVERGED, … codes


class ConjugateGradient(lx.AbstractLinearSolver):
    r"""Preconditioned conjugate gradients (Hestenes–Stiefel 1952) with robust stopping, as a lineax solver.

    For ``A x = b`` with ``A`` Hermitian positive (or negative) definite and a Hermitian positive
    definite preconditioner ``M ≈ A⁻¹``, the iteration is the textbook PCG — operation for
    operation the one of `scipy.sparse.linalg.cg`:

    .. math::

        z_k = M r_k,\quad \gamma_k = r_k^H z_k,\quad p_k = z_k + (\gamma_k/\gamma_{k-1}) p_{k-1},\quad
        \alpha_k = \gamma_k / p_k^H A p_k,\quad x_{k+1} = x_k + \alpha_k p_k,\quad
        r_{k+1} = r_k - \alpha_k A p_k.

    It differs from `lineax.CG` in four ways (the module docstring says why):

    1. **Norm-based stopping**, as scipy: converged when ``‖b - A x‖₂ ≤ max(rtol ‖b‖₂, atol)``,
       so iteration counts match scipy's on the same matrix.
    2. **Scale-invariant breakdown test**: breakdown only when ``pᴴAp ≤ 0``, ``rᴴz < 0`` or a
       value is not finite — what an HPD ``A`` and ``M`` rule out in any scaling. The solve stops
       with `lineax.RESULTS.breakdown`, returning the last iterate reached with positive
       curvature.
    3. **True residuals**: every `check_every` steps, whenever the recursive residual meets the
       test, and whenever it has fallen 1000× since the last check, ``b - A x`` is computed (one
       extra mat-vec; none of this changes an iterate). Success is decided on it. When the
       recursive residual has drifted below half the true one — rounding now dominates — CG
       restarts from the true residual (in the spirit of residual replacement, van der Vorst &
       Ye 2000; a replacement that keeps the old search direction diverged in float32 here).
    4. **Stagnation**: if the true residual has not improved by 10% over `patience` checks
       although residuals were replaced, the arithmetic cannot represent a more accurate
       solution (see the module docstring): the solve stops with `lineax.RESULTS.stagnation`
       rather than running to `max_steps`. With ``rtol = atol = 0`` this is the goal — "solve to
       working precision" — and is reported as success; with ``accept_stagnation=True`` it is
       success too ("to `rtol`, or to the precision's floor if that comes first").

    In exact arithmetic, 3 and 4 never fire, and in float64 on the problems here they do not
    either: iteration counts equal scipy's.

    **Bad input** (module docstring): a NaN/Inf in ``b`` or ``y0`` returns at once with
    `lineax.RESULTS.nonfinite_input`; a non-finite value met later (a NaN in the operator, a
    solution too large for the dtype) with `lineax.RESULTS.breakdown`; at most ``max_steps`` iterations run in every case; the loop
    works on ``b`` scaled by a power of two, so ``‖b‖²`` cannot overflow.

    **Differences from lineax a lineax user should know.** ``rtol = atol = 0`` means "to working
    precision", not "no test": with ``max_steps = k`` `lineax.CG` runs ``k`` steps and reports
    success, whereas this solver runs until the true residual stagnates and reports
    `lineax.RESULTS.max_steps_reached` if ``k`` steps come first (a solution cut short is not
    called converged). To run exactly ``k`` steps as a fixed smoother, use `lineax.CG`, or
    `jaxpde.preconditioners.unrolled_pcg` to differentiate through them. The tolerances are on
    ``‖·‖₂``, not lineax's elementwise max-norm test.

    `stats` has ``num_steps`` (CG iterations = mat-vecs with ``p``), ``num_replacements``,
    ``residual_norm`` (the final true ``‖b - Ax‖₂``), ``rhs_norm`` and ``max_steps``.

    **Arguments:**

    - `rtol`, `atol`: the tolerances of the norm-based test, finite and ``≥ 0``; both ``0``
      means "to working precision".
    - `max_steps`: cap on the number of iterations, a positive integer (default ``10 n``, as
      scipy).
    - `preconditioner`: ``None``; a `jaxpde.numerics.preconditioning.AbstractPreconditioner`
      (e.g. `Jacobi()`), built into ``M`` from the operator inside `init` — so it follows the
      operator under `jax.jit`, `jax.vmap` and inside optimistix and diffrax — and refused here
      unless its class declares ``is_positive_definite`` and ``is_linear`` (a nonlinear or
      non-SPD one belongs in `jaxpde.preconditioners.FlexibleCG`); or a positive
      semidefinite-tagged `lineax.AbstractLinearOperator` with the operator's input structure.
      lineax's ``options={"preconditioner": …, "y0": …}`` are honoured too.
    - `check_every`: steps between true-residual checks (cost: one mat-vec per check).
    - `patience`: checks without improvement before stagnation is declared.
    - `accept_stagnation`: report stagnation above the tolerance as success (default
      ``False``: it is `lineax.RESULTS.stagnation`). The float32 default of
      `jaxpde.pdes.Poisson.solve` and `Darcy.solve` sets it: ``1e-5`` or the float32 floor,
      whichever comes first. As a solver option it also governs the adjoint solves of
      `lineax.linear_solve`'s derivatives, where lineax raises on any result but success.
    - `stop_gradient_preconditioner`: hold the preconditioner (its parameters, and ``M`` once
      built) under `jax.lax.stop_gradient` (default ``True``). A preconditioner changes the
      speed, not the solution, and `lineax.linear_solve` refuses tangents in its solver; so a
      preconditioner built from traced parameters (a learned one, inside a training step) needs
      this to pass through `lineax.linear_solve`. ``False`` lets derivatives reach ``M``'s
      parameters where the result does depend on them — `init`/`compute` called directly on a
      solve cut short by `max_steps`, under `jax.jvp`; for reverse-mode training through a fixed
      number of iterations use `jaxpde.preconditioners.unrolled_pcg`.
    """

    rtol: float
    atol: float = 0.0
    max_steps: int | None = None
    preconditioner: AbstractPreconditioner | lx.AbstractLinearOperator | None = None
    check_every: int = 50
    patience: int = 3
    accept_stagnation: bool = eqx.field(static=True, default=False)
    stop_gradient_preconditioner: bool = eqx.field(static=True, default=True)

    def __init__(
        self,
        rtol: float,
        atol: float = 0.0,
        max_steps: int | None = None,
        preconditioner: AbstractPreconditioner | lx.AbstractLinearOperator | None = None,
        check_every: int = 50,
        patience: int = 3,
        accept_stagnation: bool = False,
        stop_gradient_preconditioner: bool = True,
    ):
        owner = "ConjugateGradient"
        self.rtol = _check_tolerance(rtol, "rtol", owner)
        self.atol = _check_tolerance(atol, "atol", owner)
        self.max_steps = _check_count(max_steps, "max_steps", owner, allow_none=True)
        self.check_every = _check_count(check_every, "check_every", owner)
        self.patience = _check_count(patience, "patience", owner)
        self.accept_stagnation = _check_flag(accept_stagnation, "accept_stagnation", owner)
        self.stop_gradient_preconditioner = _check_flag(stop_gradient_preconditioner, "stop_gradient_preconditioner", owner)
        if isinstance(preconditioner, AbstractPreconditioner):
            kind = type(preconditioner)
            if not (kind.is_positive_definite and kind.is_linear):
                reason = "not a fixed linear map (is_linear = False)" if not kind.is_linear else (
                    "not symmetric positive definite (is_positive_definite = False)"
                )
                raise ValueError(
                    f"{owner}: the preconditioner {kind.__name__} is {reason}; CG needs a fixed symmetric positive "
                    "definite M. Use jaxpde.preconditioners.FlexibleCG (or FGMRES), which accept variable and "
                    "nonlinear preconditioners."
                )
        elif isinstance(preconditioner, lx.AbstractLinearOperator):
            if not lx.is_positive_semidefinite(preconditioner):
                raise ValueError(
                    f"{owner}: the preconditioner must be tagged positive semidefinite "
                    "(lineax.positive_semidefinite_tag); CG needs a symmetric positive definite M."
                )
        elif preconditioner is not None:
            raise TypeError(
                f"{owner}: `preconditioner` must be None, an AbstractPreconditioner (e.g. Jacobi()) or a positive "
                f"semidefinite-tagged lineax operator, got {type(preconditioner).__name__}"
                + (" (the 'jacobi' string is now Jacobi())." if isinstance(preconditioner, str) else ".")
            )
        if preconditioner is not None and self.stop_gradient_preconditioner:
            preconditioner = _stopped(preconditioner)
        self.preconditioner = preconditioner

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        if eqx.tree_equal(operator.in_structure(), operator.out_structure()) is not True:
            raise ValueError(
                "ConjugateGradient: the operator must be square (matching in/out structures), got in_structure "
                f"{operator.in_structure()} and out_structure {operator.out_structure()}."
            )
        is_nsd = lx.is_negative_semidefinite(operator)
        if not (lx.is_positive_semidefinite(operator) or is_nsd):
            raise ValueError(
                "ConjugateGradient: the operator must be tagged positive or negative semidefinite "
                "(lineax.positive_semidefinite_tag); for an indefinite operator use lineax.GMRES or lineax.BiCGStab "
                "(jaxpde.preconditioners.Preconditioned tags an untagged operator with a declared `structure`)."
            )
        if is_nsd:
            operator = -operator
        operator = lx.linearise(operator)
        preconditioner = self.preconditioner
        if isinstance(preconditioner, AbstractPreconditioner):
            preconditioner = preconditioner(operator)  # checks the structure, tags it PSD
            if self.stop_gradient_preconditioner:
                preconditioner = _stopped(preconditioner)
        elif preconditioner is not None:
            _check_preconditioner_structure(preconditioner, operator, "ConjugateGradient")
        # The flag is static: a Python bool as a leaf would become a tracer under `jax.jit(init)`,
        # a `custom_jvp` or a loop carry, and `if is_nsd:` would then fail.
        return operator, preconditioner, eqxi.Static(is_nsd)

    def _steps(self, operator, apply_m, state: _CGSteps, tol, max_steps, reference) -> _CGSteps:
        """Up to `check_every` PCG steps; stop early at ‖r‖ ≤ tol (recursive), breakdown,
        max_steps, or when ‖r‖ has fallen 1000× below the last true residual `reference`.

        The last exit costs one extra mat-vec per three decades of convergence and changes no
        iterate; it bounds how far the recursive residual can drift below the true one before a
        check sees it (else, solving to working precision, it would underflow to a spurious zero
        curvature)."""

        def cond(s: _CGSteps):
            return (
                (s.r_norm > tol)
                & (s.r_norm > 1e-3 * reference)
                & (s.step < max_steps)
                & (s.chunk < self.check_every)
                & ~s.broken
            )

        def body(s: _CGSteps):
            q = operator.mv(s.p)
            curvature = _dot(s.p, q)
            # Positive curvature and a non-negative M-inner product are what SPD A and M
            # guarantee; their failure is a real breakdown, whatever the scale of A or M.
            # Without positive curvature the step is skipped (a scalar select, so the loop pays
            # no extra passes over the vectors), keeping the last good iterate.
            good_curvature = (curvature > 0) & jnp.isfinite(curvature)
            alpha = jnp.where(good_curvature, s.gamma / jnp.where(good_curvature, curvature, 1), 0)
            y = _axpy(alpha, s.p, s.y)
            r = _axpy(-alpha, q, s.r)
            z = apply_m(r)
            gamma = _dot(r, z)
            p = _axpy(gamma / s.gamma, s.p, z)
            r_norm = _norm(r)
            broken = ~good_curvature | ~(gamma >= 0) | ~jnp.isfinite(r_norm)
            return _CGSteps(y, r, p, gamma, r_norm, s.step + 1, s.chunk + 1, broken)

        return jax.lax.while_loop(cond, body, state._replace(chunk=jnp.zeros_like(state.chunk), broken=jnp.asarray(False)))

    def compute(self, state, vector: PyTree[Array], options: dict[str, Any]):
        operator, preconditioner, is_nsd = state
        is_nsd = is_nsd.value
        if "preconditioner" in options:
            if preconditioner is not None:
                raise ValueError("ConjugateGradient: a preconditioner was given both as a field and in `options`.")
            preconditioner = lx.linearise(options["preconditioner"])
            if not lx.is_positive_semidefinite(preconditioner):
                raise ValueError("ConjugateGradient: the preconditioner must be tagged positive semidefinite.")
            _check_preconditioner_structure(preconditioner, operator, "ConjugateGradient")
        apply_m = (lambda r: r) if preconditioner is None else preconditioner.mv
        y0 = options.get("y0", jtu.tree_map(jnp.zeros_like, vector))
        if is_nsd:
            # init negated the operator: solve (-A) y = -b, which has the same solution.
            vector = jtu.tree_map(jnp.negative, vector)
        max_steps = max(1, 10 * _size(operator.in_structure())) if self.max_steps is None else self.max_steps
        to_working_precision = self.rtol == 0 and self.atol == 0
        stagnation = _CONVERGED if (to_working_precision or self.accept_stagnation) else _STAGNATION
        finite_input = _all_finite(vector) & _all_finite(y0)
        # The loop solves A (y/s) = b/s with s = 2^k ≈ max |b_i|: an exact scaling that keeps
        # ‖b/s‖² < 4n, so no dot product of residual-sized vectors overflows however large b is.
        k = _scale_exponent(vector)
        vector = _times_power_of_two(vector, -k)
        y0 = _times_power_of_two(y0, -k)
        rhs_norm = _norm(vector)
        tol = jnp.maximum(_times_power_of_two(jnp.asarray(self.atol, rhs_norm.dtype), -k), self.rtol * rhs_norm)

        def restart(r):
            z = apply_m(r)
            return r, z, _dot(r, z), _norm(r)

        def outer_body(s: _CGState) -> _CGState:
            steps = self._steps(
                operator, apply_m, _CGSteps(s.y, s.r, s.p, s.gamma, s.r_norm, s.step, s.step, False),
                tol, max_steps, s.true_norm,
            )
            y, step = steps.y, steps.step
            true_r = _sub(vector, operator.mv(y))
            true_norm = _norm(true_r)
            drifted = (steps.r_norm < 0.5 * true_norm) | (steps.r_norm <= tol)
            improved = true_norm < 0.9 * s.best
            best = jnp.where(improved, true_norm, s.best)
            since_best = jnp.where(improved, 0, s.since_best + 1)
            replaced = jnp.where(improved, drifted, s.replaced | drifted)
            stagnated = (since_best >= self.patience) & replaced
            # Every round but the last takes at least one step, so `rounds` cannot pass
            # `max_steps + 1` in exact logic; the cap makes termination independent of that
            # argument (and of how NaNs compare).
            out_of_steps = (step >= max_steps) | (s.rounds + 1 > max_steps)
            status = jnp.select(
                [steps.broken | ~jnp.isfinite(true_norm), true_norm <= tol, stagnated, out_of_steps],
                [_BREAKDOWN, _CONVERGED, stagnation, _MAX_STEPS],
                _RUNNING,
            )
            replace = drifted & (status == _RUNNING)
            r_new, p_new, gamma_new, r_norm_new = restart(true_r)
            return _CGState(
                y=y,
                r=_where(replace, r_new, steps.r),
                p=_where(replace, p_new, steps.p),
                gamma=jnp.where(replace, gamma_new, steps.gamma),
                r_norm=jnp.where(replace, r_norm_new, steps.r_norm),
                step=step,
                best=best,
                since_best=since_best,
                replaced=replaced,
                replacements=s.replacements + replace.astype(s.replacements.dtype),
                true_norm=true_norm,
                rounds=s.rounds + 1,
                status=status,
            )

        r0, p0, gamma0, r_norm0 = restart(_sub(vector, operator.mv(y0)))
        status0 = jnp.where(
            finite_input, jnp.where(jnp.isfinite(r_norm0) & jnp.isfinite(gamma0), _RUNNING, _BREAKDOWN), _NONFINITE
        )
        zero, false = jnp.asarray(0), jnp.asarray(False)
        initial = _CGState(
            y=y0, r=r0, p=p0, gamma=gamma0, r_norm=r_norm0, step=zero, best=jnp.full_like(rhs_norm, jnp.inf),
            since_best=zero, replaced=false, replacements=zero, true_norm=r_norm0, rounds=zero, status=status0,
        )
        final = jax.lax.while_loop(lambda s: s.status == _RUNNING, outer_body, initial)
        y = _times_power_of_two(final.y, k)
        # The scaled problem may converge to a solution that does not fit the dtype once scaled
        # back (e.g. |x| > 3.4e38 in float32): not a success.
        status = jnp.where((final.status == _CONVERGED) & ~_all_finite(y), _BREAKDOWN, final.status)
        stats = {
            "num_steps": final.step,
            "num_replacements": final.replacements,
            "residual_norm": _times_power_of_two(final.true_norm, k),
            "rhs_norm": _times_power_of_two(rhs_norm, k),
            "max_steps": max_steps,
        }
        return y, _to_results(status), stats

    def transpose(self, state, options: dict[str, Any]):
        operator, preconditioner, is_nsd = state
        transposed = None if preconditioner is None else preconditioner.transpose()
        options = dict(options)
        if "preconditioner" in options:
            options["preconditioner"] = options["preconditioner"].transpose()
        return (operator.transpose(), transposed, is_nsd), options

    def conj(self, state, options: dict[str, Any]):
        operator, preconditioner, is_nsd = state
        conjugated = None if preconditioner is None else lx.conj(preconditioner)
        options = dict(options)
        if "preconditioner" in options:
            options["preconditioner"] = lx.conj(options["preconditioner"])
        return (lx.conj(operator), conjugated, is_nsd), options

    def assume_full_rank(self) -> bool:
        return True


# ----------------------------------------------------------------------------------------------
# Casting an operator to a lower precision, for MixedPrecisionRefinement.
# ----------------------------------------------------------------------------------------------

# The complex partner of each real low precision: the low precision of complex128 is complex64
# (there is no complex32; float16/bfloat16 systems go to complex64).
_COMPLEX_OF = {"float16": "complex64", "bfloat16": "complex64", "float32": "complex64", "float64": "complex128"}


def _low_of(dtype, low_real) -> np.dtype:
    """The dtype an array of `dtype` takes in the low precision `low_real` (complex stays complex)."""
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return jnp.dtype(_COMPLEX_OF[jnp.dtype(low_real).name])
    return jnp.dtype(low_real)


def _cast_arrays(tree: PyTree, low_real) -> PyTree:
    return jtu.tree_map(lambda x: x.astype(_low_of(x.dtype, low_real)) if eqx.is_inexact_array(x) else x, tree)


def _cast_structure(structure: PyTree[jax.ShapeDtypeStruct], low_real) -> PyTree[jax.ShapeDtypeStruct]:
    return jtu.tree_map(lambda s: jax.ShapeDtypeStruct(s.shape, _low_of(s.dtype, low_real)), structure)


def _rebuild_structured(operator, low_real):
    """Operators that store their structure as static data rather than deriving it from arrays are
    rebuilt with a cast structure; every other operator (and every composite) passes through."""
    if isinstance(operator, lx.PyTreeLinearOperator):
        return lx.PyTreeLinearOperator(
            _cast_arrays(operator.pytree, low_real), _cast_structure(operator.out_structure(), low_real), operator.tags
        )
    if isinstance(operator, lx.IdentityLinearOperator):
        return lx.IdentityLinearOperator(
            _cast_structure(operator.in_structure(), low_real), _cast_structure(operator.out_structure(), low_real)
        )
    return operator


def _cast_operator(operator: lx.AbstractLinearOperator, low_real) -> lx.AbstractLinearOperator:
    """`operator` with its arrays in the low precision, or one `ValueError` for every operator
    that cannot be cast this way.

    An operator can be cast when its arrays determine both its structure and its mat-vec: lineax's
    matrix, diagonal, tridiagonal, pytree and identity operators, jaxpde's stencil and sparse
    operators, and sums, products, compositions, negations and tagged versions of these. A
    function or Jacobian operator closes over a function traced in its own precision, which no
    cast reaches. The cast is verified, not assumed: both structures must come out in the low
    precision, and the mat-vec must trace on a low-precision input to the low-precision output.
    """
    is_structured = lambda x: isinstance(x, (lx.PyTreeLinearOperator, lx.IdentityLinearOperator))  # noqa: E731
    expected_in = _cast_structure(operator.in_structure(), low_real)
    expected_out = _cast_structure(operator.out_structure(), low_real)
    reason = None
    try:
        cast = jtu.tree_map(lambda x: _rebuild_structured(x, low_real), operator, is_leaf=is_structured)
        cast = _cast_arrays(cast, low_real)
        if eqx.tree_equal(cast.in_structure(), expected_in) is not True:
            reason = f"its in_structure stays {cast.in_structure()}"
        elif eqx.tree_equal(cast.out_structure(), expected_out) is not True:
            reason = f"its out_structure stays {cast.out_structure()}"
        elif eqx.tree_equal(jax.eval_shape(cast.mv, expected_in), expected_out) is not True:
            reason = f"its mat-vec returns {jax.eval_shape(cast.mv, expected_in)}"
    except Exception as error:  # noqa: BLE001 — any failure to cast is the same refusal, chained below
        reason = f"casting it fails ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        cause = error
    else:
        cause = None
    if reason is not None:
        raise ValueError(
            f"MixedPrecisionRefinement: cannot cast the operator ({type(operator).__name__}) to "
            f"{jnp.dtype(low_real).name}: {reason}. Castable operators are those whose arrays determine their "
            "structure and mat-vec (lineax Matrix, Diagonal, Tridiagonal, PyTree and Identity operators, jaxpde's "
            "stencil and sparse operators, and sums, products and compositions of them); a Function or Jacobian "
            "operator closes over a function traced in its own precision. Materialise a small one "
            "(lineax.materialise), or pass the low-precision operator to the inner solver yourself."
        ) from cause
    return cast


class MixedPrecisionRefinement(lx.AbstractLinearSolver):
    r"""Iterative refinement: residuals in the operator's precision, corrections in a lower one.

    Classical mixed-precision refinement (Wilkinson 1963; Carson & Higham, SIAM J. Sci. Comput.
    2018): with ``A`` and ``b`` in high precision (float64) and ``A_lo`` the operator cast to
    `low_dtype` (float32),

    .. math::

        x_0 = 0,\quad r_j = b - A x_j,\quad A_{lo}\, d_j \approx r_j / s_j \ \text{(inner solver, low precision)},\quad
        x_{j+1} = x_j + s_j\, d_j,

    with ``s_j`` the power of two just below ``max_i |(r_j)_i|`` (an exact scaling that keeps the
    low-precision right-hand side in range), until ``‖r_j‖₂ ≤ max(rtol ‖b‖₂, atol)``. Each sweep reduces the residual by about the inner
    solver's accuracy, so a float32 CG to ``1e-2`` reaches ``1e-6`` in three or four sweeps —
    below the float32 floor of a single solve (module docstring). The mat-vecs of the inner
    solve, where the time goes, run in the low precision; only one high-precision mat-vec per
    sweep is needed. Requires ``jax_enable_x64`` for a float64 operator.

    Complex systems refine in the complex partner of `low_dtype` (complex128 → complex64). The
    operator must be castable — its arrays determine its structure and mat-vec (see
    `_cast_operator`); a function or Jacobian operator is refused with a `ValueError` that says
    so, as is any operator whose cast does not come out in the low precision.

    If a sweep does not reduce the residual by 10%, the solve stops with
    `lineax.RESULTS.stagnation` — or, for ``rtol = atol = 0`` ("to working precision", as in
    `ConjugateGradient`), with success. It returns within ``max_refinements`` sweeps on any
    input; a non-finite ``b`` or ``y0`` gives `lineax.RESULTS.nonfinite_input`, a non-finite
    residual later `lineax.RESULTS.breakdown`; norms are computed scaled (no overflow).
    ``rtol = atol = 0`` with a sweep cap that comes first reports
    `lineax.RESULTS.max_steps_reached` (lineax's solvers would call a capped run with zero
    tolerances a success). `stats`: ``num_refinements``, ``num_steps`` (inner iterations summed,
    when the inner solver reports them), ``residual_norm``, ``rhs_norm``.

    **Arguments:**

    - `rtol`, `atol`: the outer, norm-based tolerances (finite, ``≥ 0``).
    - `inner`: the low-precision solver (default ``ConjugateGradient(rtol=1e-2)``); any lineax
      solver whose ``compute`` returns a usable approximate solution.
    - `low_dtype`: the inner precision, a real floating dtype (default float32).
    - `max_refinements`: cap on the number of sweeps, a positive integer.
    """

    rtol: float
    atol: float = 0.0
    inner: lx.AbstractLinearSolver = ConjugateGradient(rtol=1e-2)
    low_dtype: Any = eqx.field(static=True, default=jnp.float32)
    max_refinements: int = 20

    def __check_init__(self):
        owner = "MixedPrecisionRefinement"
        _check_tolerance(self.rtol, "rtol", owner)
        _check_tolerance(self.atol, "atol", owner)
        _check_count(self.max_refinements, "max_refinements", owner)
        if not isinstance(self.inner, lx.AbstractLinearSolver):
            raise TypeError(f"{owner}: `inner` must be a lineax.AbstractLinearSolver, got {type(self.inner).__name__}.")
        try:
            low = jnp.dtype(self.low_dtype)
        except TypeError:
            low = None
        if low is None or low.name not in _COMPLEX_OF:
            raise ValueError(
                f"{owner}: `low_dtype` must be a real floating dtype (float16, bfloat16, float32, float64), got "
                f"{self.low_dtype!r}."
            )

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        low = _cast_operator(operator, self.low_dtype)
        return operator, self.inner.init(low, _cast_arrays(options, self.low_dtype))

    def compute(self, state, vector: PyTree[Array], options: dict[str, Any]):
        operator, inner_state = state
        # Options (e.g. a preconditioner) go to the inner solver, in its precision; `y0` is the
        # outer initial guess.
        inner_options = _cast_arrays({k: v for k, v in options.items() if k != "y0"}, self.low_dtype)
        to_working_precision = self.rtol == 0 and self.atol == 0
        rhs_norm = _safe_norm(vector)
        tol = jnp.maximum(self.atol, self.rtol * rhs_norm)

        def cond(carry):
            return carry[-1] == _RUNNING

        def body(carry):
            y, r, r_norm, sweeps, steps, _ = carry
            # The correction solves A_lo d = r / 2^k with 2^k ≤ max |r_i| < 2^(k+1): entries below 2,
            # so the cast to the low precision cannot overflow, and the exact power-of-two scaling
            # cannot flush to zero (a division by ‖r‖ near the largest float would: XLA turns it
            # into a product with a subnormal reciprocal).
            k = _scale_exponent(r)
            scaled = jtu.tree_map(lambda x: x.astype(_low_of(x.dtype, self.low_dtype)), _times_power_of_two(r, -k))
            d, _, stats = self.inner.compute(inner_state, scaled, inner_options)
            d = _times_power_of_two(jtu.tree_map(lambda a, b: b.astype(a.dtype), y, d), k)
            y = jtu.tree_map(jnp.add, y, d)
            r = _sub(vector, operator.mv(y))
            new_norm = _safe_norm(r)
            steps = steps + jnp.asarray(stats.get("num_steps", 0)).astype(steps.dtype)
            status = jnp.select(
                [
                    ~jnp.isfinite(new_norm),
                    new_norm <= tol,
                    new_norm > 0.9 * r_norm,
                    sweeps + 1 >= self.max_refinements,
                ],
                [_BREAKDOWN, _CONVERGED, _CONVERGED if to_working_precision else _STAGNATION, _MAX_STEPS],
                _RUNNING,
            )
            return y, r, new_norm, sweeps + 1, steps, status

        y0 = options.get("y0", jtu.tree_map(jnp.zeros_like, vector))
        r0 = _sub(vector, operator.mv(y0))
        r0_norm = _safe_norm(r0)
        status0 = jnp.select(
            [~(_all_finite(vector) & _all_finite(y0)), ~jnp.isfinite(r0_norm), r0_norm <= tol],
            [_NONFINITE, _BREAKDOWN, _CONVERGED],
            _RUNNING,
        )
        zero = jnp.asarray(0)
        carry = (y0, r0, r0_norm, zero, zero, status0)
        y, _, r_norm, sweeps, steps, status = jax.lax.while_loop(cond, body, carry)
        stats = {"num_refinements": sweeps, "num_steps": steps, "residual_norm": r_norm, "rhs_norm": rhs_norm}
        return y, _to_results(status), stats

    def transpose(self, state, options: dict[str, Any]):
        operator, inner_state = state
        inner_state, inner_options = self.inner.transpose(inner_state, options)
        return (operator.transpose(), inner_state), inner_options

    def conj(self, state, options: dict[str, Any]):
        operator, inner_state = state
        inner_state, inner_options = self.inner.conj(inner_state, options)
        return (lx.conj(operator), inner_state), inner_options

    def assume_full_rank(self) -> bool:
        return self.inner.assume_full_rank()
