r"""Krylov solvers as lineax solvers: a robust conjugate gradient and mixed-precision refinement.

**Why a CG of our own.** `lineax.CG` has three properties that bite in practice (METHODS.md,
"Pitfalls"): its stopping test is elementwise (``|r_i| ≤ atol + rtol |b_i|`` plus a test on the
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
``max_steps``, and the PDE solvers turn that into an error that says so. The PDE solvers'
float32 default is therefore "to working precision" (``rtol = 0``: iterate until the true
residual stagnates, and call that success). To reach tighter tolerances from float32
arithmetic, use `MixedPrecisionRefinement` (float32 CG inside, float64 residuals outside; needs
``jax_enable_x64``): three sweeps reach ``1e-6`` at 256².
"""

from __future__ import annotations

import math
from typing import Any, Literal

import equinox as eqx
import jax
import jax.flatten_util as jfu
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx
from jaxtyping import Array, PyTree, Scalar

__all__ = ["ConjugateGradient", "MixedPrecisionRefinement"]


# ----------------------------------------------------------------------------------------------
# Pytree arithmetic for the Krylov loops. Dot products are elementwise products and sums rather
# than `jnp.dot`, so no matrix unit (and no reduced-precision TPU matmul pass) is involved.
# ----------------------------------------------------------------------------------------------


def _dot(x: PyTree[Array], y: PyTree[Array]) -> Scalar:
    return sum(jnp.sum(jnp.conj(a) * b) for a, b in zip(jtu.tree_leaves(x), jtu.tree_leaves(y))).real


def _norm(x: PyTree[Array]) -> Scalar:
    return jnp.sqrt(_dot(x, x))


def _axpy(alpha, x: PyTree[Array], y: PyTree[Array]) -> PyTree[Array]:
    return jtu.tree_map(lambda a, b: alpha * a + b, x, y)


def _sub(x: PyTree[Array], y: PyTree[Array]) -> PyTree[Array]:
    return jtu.tree_map(lambda a, b: a - b, x, y)


def _where(pred, x: PyTree[Array], y: PyTree[Array]) -> PyTree[Array]:
    return jtu.tree_map(lambda a, b: jnp.where(pred, a, b), x, y)


def _size(structure: PyTree[jax.ShapeDtypeStruct]) -> int:
    return sum(math.prod(s.shape) for s in jtu.tree_leaves(structure))


# Outcome codes of the CG loop, mapped to lineax RESULTS at the end.
_RUNNING, _CONVERGED, _BREAKDOWN, _STAGNATION, _MAX_STEPS = 0, 1, 2, 3, 4


def _to_results(status):
    return lx.RESULTS.where(
        status == _CONVERGED,
        lx.RESULTS.successful,
        lx.RESULTS.where(
            status == _BREAKDOWN,
            lx.RESULTS.breakdown,
            lx.RESULTS.where(status == _STAGNATION, lx.RESULTS.stagnation, lx.RESULTS.max_steps_reached),
        ),
    )


class ConjugateGradient(lx.AbstractLinearSolver):
    r"""Preconditioned conjugate gradients (Hestenes–Stiefel 1952) with robust stopping, as a lineax solver.

    For ``A x = b`` with ``A`` symmetric positive (or negative) definite and a symmetric positive
    definite preconditioner ``M ≈ A⁻¹``, the iteration is the textbook PCG — operation for
    operation the one of `scipy.sparse.linalg.cg`:

    .. math::

        z_k = M r_k,\quad \gamma_k = r_k^\top z_k,\quad p_k = z_k + (\gamma_k/\gamma_{k-1}) p_{k-1},\quad
        \alpha_k = \gamma_k / p_k^\top A p_k,\quad x_{k+1} = x_k + \alpha_k p_k,\quad
        r_{k+1} = r_k - \alpha_k A p_k.

    It differs from `lineax.CG` in four ways (the module docstring says why):

    1. **Norm-based stopping**, as scipy: converged when ``‖b - A x‖₂ ≤ max(rtol ‖b‖₂, atol)``,
       so iteration counts match scipy's on the same matrix.
    2. **Scale-invariant breakdown test**: breakdown only when ``pᵀAp ≤ 0``, ``rᵀz < 0`` or a
       value is not finite — what an SPD ``A`` and ``M`` rule out in any scaling. The solve stops
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
       working precision" — and is reported as success.

    In exact arithmetic, 3 and 4 never fire, and in float64 on the problems here they do not
    either: iteration counts equal scipy's.

    `stats` has ``num_steps`` (CG iterations = mat-vecs with ``p``), ``num_replacements``,
    ``residual_norm`` (the final true ``‖b - Ax‖₂``), ``rhs_norm`` and ``max_steps``.

    **Arguments:**

    - `rtol`, `atol`: the tolerances of the norm-based test; both ``0`` means "to working
      precision".
    - `max_steps`: cap on the number of iterations (default ``10 n``, as scipy).
    - `preconditioner`: ``None``, ``"jacobi"`` (``M = diag(A)⁻¹``, from `lineax.diagonal`, so it
      follows the operator — including inside implicit differentiation), or a positive
      semidefinite-tagged `lineax.AbstractLinearOperator`. A preconditioner changes the speed,
      not the solution, so an operator passed here is held under `jax.lax.stop_gradient`.
      lineax's ``options={"preconditioner": …, "y0": …}`` are honoured too.
    - `check_every`: steps between true-residual checks (cost: one mat-vec per check).
    - `patience`: checks without improvement before stagnation is declared.
    """

    rtol: float
    atol: float = 0.0
    max_steps: int | None = None
    preconditioner: lx.AbstractLinearOperator | Literal["jacobi"] | None = None
    check_every: int = 50
    patience: int = 3

    def __init__(
        self,
        rtol: float,
        atol: float = 0.0,
        max_steps: int | None = None,
        preconditioner: lx.AbstractLinearOperator | Literal["jacobi"] | None = None,
        check_every: int = 50,
        patience: int = 3,
    ):
        if not (rtol >= 0 and atol >= 0):
            raise ValueError(f"ConjugateGradient: `rtol` and `atol` must be >= 0, got rtol={rtol!r}, atol={atol!r}.")
        if check_every < 1 or patience < 1:
            raise ValueError(
                f"ConjugateGradient: `check_every` and `patience` must be >= 1, got {check_every!r}, {patience!r}."
            )
        if isinstance(preconditioner, str) and preconditioner != "jacobi":
            raise ValueError(
                f"ConjugateGradient: unknown `preconditioner` {preconditioner!r}; expected None, 'jacobi' or a "
                "lineax.AbstractLinearOperator."
            )
        if isinstance(preconditioner, lx.AbstractLinearOperator):
            if not lx.is_positive_semidefinite(preconditioner):
                raise ValueError(
                    "ConjugateGradient: the preconditioner must be tagged positive semidefinite "
                    "(lineax.positive_semidefinite_tag); CG needs a symmetric positive definite M."
                )
            dynamic, static = eqx.partition(preconditioner, eqx.is_array)
            preconditioner = eqx.combine(jax.lax.stop_gradient(dynamic), static)
        elif preconditioner is not None and not isinstance(preconditioner, str):
            raise TypeError(
                f"ConjugateGradient: `preconditioner` must be None, 'jacobi' or a lineax operator, got "
                f"{type(preconditioner).__name__}."
            )
        self.rtol = rtol
        self.atol = atol
        self.max_steps = max_steps
        self.preconditioner = preconditioner
        self.check_every = int(check_every)
        self.patience = int(patience)

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        if eqx.tree_equal(operator.in_structure(), operator.out_structure()) is not True:
            raise ValueError("ConjugateGradient: the operator must be square (matching in/out structures).")
        is_nsd = lx.is_negative_semidefinite(operator)
        if not (lx.is_positive_semidefinite(operator) or is_nsd):
            raise ValueError(
                "ConjugateGradient: the operator must be tagged positive or negative semidefinite "
                "(lineax.positive_semidefinite_tag); for an indefinite operator use lineax.GMRES or lineax.BiCGStab."
            )
        if is_nsd:
            operator = -operator
        operator = lx.linearise(operator)
        preconditioner = self.preconditioner
        if isinstance(preconditioner, str):  # "jacobi"
            diagonal = lx.diagonal(operator)
            _, unravel = jfu.ravel_pytree(jtu.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), operator.in_structure()))
            preconditioner = lx.DiagonalLinearOperator(unravel(1 / diagonal))
        return operator, preconditioner, is_nsd

    def compute(self, state, vector: PyTree[Array], options: dict[str, Any]):
        operator, preconditioner, is_nsd = state
        if "preconditioner" in options:
            if preconditioner is not None:
                raise ValueError("ConjugateGradient: a preconditioner was given both as a field and in `options`.")
            preconditioner = lx.linearise(options["preconditioner"])
            if not lx.is_positive_semidefinite(preconditioner):
                raise ValueError("ConjugateGradient: the preconditioner must be tagged positive semidefinite.")
        apply_m = (lambda r: r) if preconditioner is None else preconditioner.mv
        y0 = options.get("y0", jtu.tree_map(jnp.zeros_like, vector))
        if is_nsd:
            # init negated the operator: solve (-A) y = -b, which has the same solution.
            vector = jtu.tree_map(jnp.negative, vector)
        max_steps = 10 * _size(operator.in_structure()) if self.max_steps is None else self.max_steps
        to_working_precision = self.rtol == 0 and self.atol == 0
        rhs_norm = _norm(vector)
        tol = jnp.maximum(self.atol, self.rtol * rhs_norm)

        def cg_steps(y, r, p, gamma, r_norm, step, reference):
            """Up to `check_every` PCG steps; stop early at ‖r‖ ≤ tol (recursive), breakdown,
            max_steps, or when ‖r‖ has fallen 1000× below the last true residual `reference`.

            The last exit costs one extra mat-vec per three decades of convergence and changes no
            iterate; it bounds how far the recursive residual can drift below the true one before
            a check sees it (else, solving to working precision, it would underflow to a spurious
            zero curvature)."""

            def cond(carry):
                *_, r_norm, step, chunk, broken = carry
                return (
                    (r_norm > tol)
                    & (r_norm > 1e-3 * reference)
                    & (step < max_steps)
                    & (chunk < self.check_every)
                    & ~broken
                )

            def body(carry):
                y, r, p, gamma, r_norm, step, chunk, _ = carry
                q = operator.mv(p)
                curvature = _dot(p, q)
                # Positive curvature and a non-negative M-inner product are what SPD A and M
                # guarantee; their failure is a real breakdown, whatever the scale of A or M.
                # Without positive curvature the step is skipped (a scalar select, so the loop
                # pays no extra passes over the vectors), keeping the last good iterate.
                good_curvature = (curvature > 0) & jnp.isfinite(curvature)
                alpha = jnp.where(good_curvature, gamma / jnp.where(good_curvature, curvature, 1), 0)
                y = _axpy(alpha, p, y)
                r = _axpy(-alpha, q, r)
                z = apply_m(r)
                gamma_new = _dot(r, z)
                p = _axpy(gamma_new / gamma, p, z)
                r_norm = _norm(r)
                broken = ~good_curvature | ~(gamma_new >= 0) | ~jnp.isfinite(r_norm)
                return y, r, p, gamma_new, r_norm, step + 1, chunk + 1, broken

            carry = (y, r, p, gamma, r_norm, step, jnp.asarray(0), jnp.asarray(False))
            y, r, p, gamma, r_norm, step, _, broken = jax.lax.while_loop(cond, body, carry)
            return y, r, p, gamma, r_norm, step, broken

        def restart(r):
            z = apply_m(r)
            return r, z, _dot(r, z), _norm(r)

        def outer_cond(carry):
            return carry[-1] == _RUNNING

        def outer_body(carry):
            y, r, p, gamma, r_norm, step, best, since_best, replaced, replacements, reference, _ = carry
            y, r, p, gamma, r_norm, step, broken = cg_steps(y, r, p, gamma, r_norm, step, reference)
            true_r = _sub(vector, operator.mv(y))
            true_norm = _norm(true_r)
            drifted = (r_norm < 0.5 * true_norm) | (r_norm <= tol)
            improved = true_norm < 0.9 * best
            best = jnp.where(improved, true_norm, best)
            since_best = jnp.where(improved, 0, since_best + 1)
            replaced = jnp.where(improved, drifted, replaced | drifted)
            stagnated = (since_best >= self.patience) & replaced
            status = jnp.select(
                [broken, true_norm <= tol, stagnated, step >= max_steps],
                [_BREAKDOWN, _CONVERGED, _CONVERGED if to_working_precision else _STAGNATION, _MAX_STEPS],
                _RUNNING,
            )
            replace = drifted & (status == _RUNNING)
            r_new, p_new, gamma_new, r_norm_new = restart(true_r)
            r, p = _where(replace, r_new, r), _where(replace, p_new, p)
            gamma = jnp.where(replace, gamma_new, gamma)
            r_norm = jnp.where(replace, r_norm_new, r_norm)
            return y, r, p, gamma, r_norm, step, best, since_best, replaced, replacements + replace, true_norm, status

        r0, p0, gamma0, r_norm0 = restart(_sub(vector, operator.mv(y0)))
        inf = jnp.asarray(jnp.inf, rhs_norm.dtype)
        zero, false = jnp.asarray(0), jnp.asarray(False)
        carry = (y0, r0, p0, gamma0, r_norm0, zero, inf, zero, false, zero, r_norm0, jnp.asarray(_RUNNING))
        carry = jax.lax.while_loop(outer_cond, outer_body, carry)
        y, steps, replacements, true_norm, status = carry[0], carry[5], carry[9], carry[10], carry[11]
        stats = {
            "num_steps": steps,
            "num_replacements": replacements,
            "residual_norm": true_norm,
            "rhs_norm": rhs_norm,
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


def _cast_arrays(tree: PyTree, dtype) -> PyTree:
    return jtu.tree_map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, tree)


def _cast_operator(operator: lx.AbstractLinearOperator, dtype) -> lx.AbstractLinearOperator:
    cast = _cast_arrays(operator, dtype)
    structure_dtypes = {s.dtype for s in jtu.tree_leaves(cast.in_structure())}
    if structure_dtypes != {jnp.dtype(dtype)}:
        raise ValueError(
            f"MixedPrecisionRefinement: casting the operator's arrays to {jnp.dtype(dtype).name} left its input "
            f"structure in {sorted(d.name for d in structure_dtypes)}; use an operator whose structure follows its "
            "arrays (jaxpde's stencil and sparse operators, lineax.MatrixLinearOperator)."
        )
    return cast


class MixedPrecisionRefinement(lx.AbstractLinearSolver):
    r"""Iterative refinement: residuals in the operator's precision, corrections in a lower one.

    Classical mixed-precision refinement (Wilkinson 1963; Carson & Higham, SIAM J. Sci. Comput.
    2018): with ``A`` and ``b`` in high precision (float64) and ``A_lo`` the operator cast to
    `low_dtype` (float32),

    .. math::

        x_0 = 0,\quad r_j = b - A x_j,\quad A_{lo}\, d_j \approx r_j / \lVert r_j\rVert \ \text{(inner solver, low precision)},\quad
        x_{j+1} = x_j + \lVert r_j\rVert\, d_j,

    until ``‖r_j‖₂ ≤ max(rtol ‖b‖₂, atol)``. Each sweep reduces the residual by about the inner
    solver's accuracy, so a float32 CG to ``1e-2`` reaches ``1e-6`` in three or four sweeps —
    below the float32 floor of a single solve (module docstring). The mat-vecs of the inner
    solve, where the time goes, run in the low precision; only one high-precision mat-vec per
    sweep is needed. Requires ``jax_enable_x64`` for a float64 operator.

    If a sweep does not reduce the residual by 10%, the solve stops with
    `lineax.RESULTS.stagnation`. `stats`: ``num_refinements``, ``num_steps`` (inner iterations
    summed, when the inner solver reports them), ``residual_norm``, ``rhs_norm``.

    **Arguments:**

    - `rtol`, `atol`: the outer, norm-based tolerances.
    - `inner`: the low-precision solver (default ``ConjugateGradient(rtol=1e-2)``); any lineax
      solver whose ``compute`` returns a usable approximate solution.
    - `low_dtype`: the inner precision (default float32).
    - `max_refinements`: cap on the number of sweeps.
    """

    rtol: float
    atol: float = 0.0
    inner: lx.AbstractLinearSolver = ConjugateGradient(rtol=1e-2)
    low_dtype: Any = eqx.field(static=True, default=jnp.float32)
    max_refinements: int = 20

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        low = _cast_operator(operator, self.low_dtype)
        return operator, self.inner.init(low, _cast_arrays(options, self.low_dtype))

    def compute(self, state, vector: PyTree[Array], options: dict[str, Any]):
        operator, inner_state = state
        # Options (e.g. a preconditioner) go to the inner solver, in its precision; `y0` is the
        # outer initial guess.
        inner_options = _cast_arrays({k: v for k, v in options.items() if k != "y0"}, self.low_dtype)
        rhs_norm = _norm(vector)
        tol = jnp.maximum(self.atol, self.rtol * rhs_norm)
        high = jtu.tree_leaves(vector)[0].dtype

        def cond(carry):
            return carry[-1] == _RUNNING

        def body(carry):
            y, r, r_norm, sweeps, steps, _ = carry
            scaled = jtu.tree_map(lambda x: (x / r_norm).astype(self.low_dtype), r)
            d, _, stats = self.inner.compute(inner_state, scaled, inner_options)
            y = jtu.tree_map(lambda a, b: a + r_norm * b.astype(high), y, d)
            r = _sub(vector, operator.mv(y))
            new_norm = _norm(r)
            steps = steps + stats.get("num_steps", 0)
            status = jnp.select(
                [~jnp.isfinite(new_norm), new_norm <= tol, new_norm > 0.9 * r_norm, sweeps + 1 >= self.max_refinements],
                [_BREAKDOWN, _CONVERGED, _STAGNATION, _MAX_STEPS],
                _RUNNING,
            )
            return y, r, new_norm, sweeps + 1, steps, status

        y0 = options.get("y0", jtu.tree_map(jnp.zeros_like, vector))
        r0 = _sub(vector, operator.mv(y0))
        r0_norm = _norm(r0)
        status0 = jnp.where(r0_norm <= tol, _CONVERGED, _RUNNING)
        carry = (y0, r0, r0_norm, jnp.asarray(0), jnp.asarray(0), status0)
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
