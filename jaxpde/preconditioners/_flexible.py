r"""Flexible Krylov methods: CG and GMRES for preconditioners that are not fixed linear maps.

PCG's short recurrence assumes ``M`` is one fixed SPD matrix: it relies on ``r_{k+1} ⊥ z_j``
for all ``j < k``, which holds only if ``z_j = M r_j`` with the same ``M``. A preconditioner that
is an inner iteration run to a tolerance, a neural network, or a V-cycle with a nonlinear
smoother breaks that, and CG loses its convergence (or breaks down). The flexible variants keep
what they need explicitly:

- `FlexibleCG` (Notay, "Flexible conjugate gradients", SIAM J. Sci. Comput. 2000; the deep
  conjugate direction method of Kaneda et al., ICML 2023, is this iteration with a CNN as
  ``M``): the new direction is ``M(r)`` A-orthogonalised against the last `m` directions,

  .. math::

      z_k = M(r_k),\quad p_k = z_k - \sum_{j=k-m}^{k-1} \frac{(A p_j)^H z_k}{p_j^H A p_j}\, p_j,\quad
      \alpha_k = \frac{p_k^H r_k}{p_k^H A p_k},\quad x_{k+1} = x_k + \alpha_k p_k,\quad
      r_{k+1} = r_k - \alpha_k A p_k.

  With a fixed SPD ``M`` and ``m ≥ 1`` it is PCG in exact arithmetic.
- `FGMRES` (Saad, "A flexible inner-outer preconditioned GMRES algorithm", SIAM J. Sci. Comput.
  1993): right-preconditioned GMRES that stores the preconditioned vectors ``z_j = M(v_j)``
  and forms ``x = x_0 + Z_m y_m``, with ``y_m`` minimising the residual over the Krylov-like
  space; restarted every `restart` steps. Any square operator.

Both follow `jaxpde.numerics.krylov.ConjugateGradient`'s conventions: norm-based stopping
``‖b - Ax‖₂ ≤ max(rtol ‖b‖₂, atol)`` decided on the *true* residual; `lineax.RESULTS.breakdown`
on non-positive curvature or any non-finite value, `nonfinite_input` on a NaN/Inf in ``b`` or
``y0``, `max_steps_reached` and `stagnation` (no 10% gain in the true residual over `patience`
checks; success when ``rtol = atol = 0``, "to working precision"), never NaN called success; the
iteration runs on ``b`` scaled by a power of two (no overflow of norms); complex (Hermitian)
systems, pytrees and strict dtype promotion work. As lineax solvers they compose with
`lineax.linear_solve` and its derivatives: the transposed solve rebuilds the preconditioner from
the transposed operator.

The preconditioner is an `AbstractPreconditioner`; its class may declare ``is_linear = False``
(``build`` then returns an operator whose ``mv`` is the nonlinear map ``r ↦ M(r)``, e.g. a
`lineax.FunctionLinearOperator` of a network) and need not be positive definite.
"""

from typing import Any, NamedTuple

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.flatten_util as jfu
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import jax.tree_util as jtu
import lineax as lx
from jaxtyping import Array, PyTree, Scalar

from ..numerics.krylov import (
    _BREAKDOWN,
    _CONVERGED,
    _MAX_STEPS,
    _NONFINITE,
    _RUNNING,
    _STAGNATION,
    _all_finite,
    _check_count,
    _check_tolerance,
    _scale_exponent,
    _size,
    _sub,
    _times_power_of_two,
    _to_results,
)
from ..numerics.preconditioning import AbstractPreconditioner

__all__ = ["FGMRES", "FlexibleCG"]


def _cdot(x: PyTree[Array], y: PyTree[Array]):
    """``⟨x, y⟩ = Σ conj(x_i) y_i`` (complex for complex leaves)."""
    return sum(jnp.sum(jnp.conj(a) * b) for a, b in zip(jtu.tree_leaves(x), jtu.tree_leaves(y)))


def _norm(x: PyTree[Array]) -> Scalar:
    return jnp.sqrt(sum(jnp.sum(jnp.abs(a) ** 2) for a in jtu.tree_leaves(x)))


def _axpy(alpha, x, y):
    return jtu.tree_map(lambda a, b: alpha.astype(a.dtype) * a + b, x, y)


def _stopped(tree):
    dynamic, static = eqx.partition(tree, eqx.is_array)
    return eqx.combine(jax.lax.stop_gradient(dynamic), static)


def _check_preconditioner(preconditioner, owner: str):
    if preconditioner is not None and not isinstance(preconditioner, AbstractPreconditioner):
        raise TypeError(
            f"{owner}: `preconditioner` must be an AbstractPreconditioner or None, got {type(preconditioner).__name__}."
        )


def _check_square(operator, owner: str):
    if eqx.tree_equal(operator.in_structure(), operator.out_structure()) is not True:
        raise ValueError(
            f"{owner}: the operator must be square (matching in/out structures), got in_structure "
            f"{operator.in_structure()} and out_structure {operator.out_structure()}."
        )


class _Outer(NamedTuple):
    """The bookkeeping of the true-residual checks shared by both methods."""

    best: Scalar  # smallest true residual norm so far
    since_best: Array  # checks since `best` last improved by 10%
    replaced: Array  # restarted from the true residual since then
    status: Array


def _judge(outer: _Outer, true_norm, tol, broken, drifted, steps, max_steps, rounds, patience, stagnation_code) -> _Outer:
    """Status after a true-residual check (ConjugateGradient's rules): stagnation needs `patience`
    checks without a 10% gain *and* a restart from the true residual in between (a Krylov
    residual may plateau for a while and then fall; after a restart it cannot hide drift)."""
    improved = true_norm < 0.9 * outer.best
    best = jnp.where(improved, true_norm, outer.best)
    since_best = jnp.where(improved, 0, outer.since_best + 1)
    replaced = jnp.where(improved, drifted, outer.replaced | drifted)
    status = jnp.select(
        [
            broken | ~jnp.isfinite(true_norm),
            true_norm <= tol,
            (since_best >= patience) & replaced,
            (steps >= max_steps) | (rounds > max_steps),
        ],
        [_BREAKDOWN, _CONVERGED, stagnation_code, _MAX_STEPS],
        _RUNNING,
    )
    return _Outer(best, since_best, replaced, status)


class _Prepared(NamedTuple):
    vector: PyTree[Array]
    y0: PyTree[Array]
    k: Array
    tol: Scalar
    rhs_norm: Scalar
    status0: Array
    max_steps: int
    stagnation_code: int


def _prepare(solver, operator, vector, options) -> _Prepared:
    """Scale ``b`` (and ``y0``) by the power of two ``2^-k`` near ``1/max|b_i|``; tolerances; input checks."""
    y0 = options.get("y0", jtu.tree_map(jnp.zeros_like, vector))
    finite = _all_finite(vector) & _all_finite(y0)
    k = _scale_exponent(vector)
    vector = _times_power_of_two(vector, -k)
    y0 = _times_power_of_two(y0, -k)
    rhs_norm = _norm(vector)
    tol = jnp.maximum(_times_power_of_two(jnp.asarray(solver.atol, rhs_norm.dtype), -k), solver.rtol * rhs_norm)
    max_steps = max(1, 10 * _size(operator.in_structure())) if solver.max_steps is None else solver.max_steps
    working_precision = solver.rtol == 0 and solver.atol == 0
    return _Prepared(
        vector, y0, k, tol, rhs_norm, jnp.where(finite, _RUNNING, _NONFINITE), max_steps,
        _CONVERGED if working_precision else _STAGNATION,
    )


def _finish(prepared: _Prepared, y, status, steps, true_norm, extra):
    y = _times_power_of_two(y, prepared.k)
    status = jnp.where((status == _CONVERGED) & ~_all_finite(y), _BREAKDOWN, status)
    stats = {
        "num_steps": steps,
        "residual_norm": _times_power_of_two(true_norm, prepared.k),
        "rhs_norm": _times_power_of_two(prepared.rhs_norm, prepared.k),
        "max_steps": prepared.max_steps,
        **extra,
    }
    return y, _to_results(status), stats


class _FlexibleBase(lx.AbstractLinearSolver):
    """`init`, `transpose` and `conj` of the flexible solvers: the state is the operator and
    ``M`` built from it; the transposed (conjugated) state rebuilds ``M`` from the transposed
    (conjugated) operator, which is right for a nonlinear ``M`` too (it has no transpose)."""

    def _build(self, operator):
        preconditioner = self.preconditioner
        if preconditioner is None:
            return None
        return _stopped(preconditioner(operator))

    def _state(self, operator, is_nsd: bool):
        return operator, self._build(operator), eqxi.Static(is_nsd)

    def transpose(self, state, options: dict[str, Any]):
        operator, _, is_nsd = state
        return self._state(operator.transpose(), is_nsd.value), {}

    def conj(self, state, options: dict[str, Any]):
        operator, _, is_nsd = state
        return self._state(lx.conj(operator), is_nsd.value), {}

    def assume_full_rank(self) -> bool:
        return True


class _FCGLoop(NamedTuple):
    y: PyTree[Array]
    r: PyTree[Array]
    r_norm: Scalar
    directions: PyTree[Array]  # the last m directions p_j, stacked along a leading axis (ring buffer)
    images: PyTree[Array]  # A p_j
    curvatures: Array  # p_jᴴ A p_j, zero where no direction is stored
    step: Array
    chunk: Array
    broken: Array


class FlexibleCG(_FlexibleBase):
    r"""Flexible conjugate gradients (Notay 2000) with truncated A-orthogonalisation, as a lineax solver.

    For Hermitian positive (or negative) definite ``A`` — tagged, as for CG — and any
    preconditioner, linear or not (see the module docstring for the recurrence and conventions).
    Each step costs one mat-vec, one application of ``M`` and ``m + 2`` inner products; `m`
    directions and their images are stored.

    `stats`: ``num_steps``, ``num_replacements`` (restarts from the true residual, which also
    clear the stored directions), ``residual_norm``, ``rhs_norm``, ``max_steps``.

    **Arguments:**

    - `rtol`, `atol`: tolerances of ``‖b - Ax‖₂ ≤ max(rtol ‖b‖₂, atol)`` (both ``0``: to
      working precision).
    - `max_steps`: iteration cap (default ``10 n``).
    - `preconditioner`: an `AbstractPreconditioner` (``is_linear`` and ``is_positive_definite``
      not required) or ``None``.
    - `m`: directions to A-orthogonalise against (default 2, as DCDM; ``m = 1`` is Notay's
      FCG(1)).
    - `check_every`, `patience`: as in `ConjugateGradient`.
    """

    rtol: float
    atol: float = 0.0
    max_steps: int | None = None
    preconditioner: AbstractPreconditioner | None = None
    m: int = eqx.field(static=True, default=2)
    check_every: int = 50
    patience: int = 3

    def __check_init__(self):
        owner = "FlexibleCG"
        _check_tolerance(self.rtol, "rtol", owner)
        _check_tolerance(self.atol, "atol", owner)
        _check_count(self.max_steps, "max_steps", owner, allow_none=True)
        _check_count(self.m, "m", owner)
        _check_count(self.check_every, "check_every", owner)
        _check_count(self.patience, "patience", owner)
        _check_preconditioner(self.preconditioner, owner)

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        _check_square(operator, "FlexibleCG")
        is_nsd = lx.is_negative_semidefinite(operator)
        if not (lx.is_positive_semidefinite(operator) or is_nsd):
            raise ValueError(
                "FlexibleCG: the operator must be tagged positive or negative semidefinite "
                "(lineax.positive_semidefinite_tag); for an indefinite or non-symmetric operator use FGMRES."
            )
        operator = lx.linearise(-operator if is_nsd else operator)
        return self._state(operator, is_nsd)

    def compute(self, state, vector: PyTree[Array], options: dict[str, Any]):
        operator, preconditioner, is_nsd = state
        apply_m = (lambda r: r) if preconditioner is None else preconditioner.mv
        if is_nsd.value:
            vector = jtu.tree_map(jnp.negative, vector)
        prepared = _prepare(self, operator, vector, options)
        vector, tol, max_steps, m = prepared.vector, prepared.tol, prepared.max_steps, self.m

        def stacked_dot(stack, x):  # ⟨stack_j, x⟩ for every stored j
            return sum(
                jnp.sum(jnp.conj(s) * a[None], axis=tuple(range(1, s.ndim)))
                for s, a in zip(jtu.tree_leaves(stack), jtu.tree_leaves(x))
            )

        def combine(coefficients, stack):  # Σ_j c_j stack_j
            return jtu.tree_map(lambda s: jnp.tensordot(coefficients.astype(s.dtype), s, axes=1), stack)

        def body(s: _FCGLoop) -> _FCGLoop:
            z = apply_m(s.r)
            stored = s.curvatures > 0
            projections = stacked_dot(s.images, z)
            safe = jnp.where(stored, s.curvatures, 1).astype(projections.dtype)
            beta = jnp.where(stored, projections / safe, 0)
            p = _sub(z, combine(beta, s.directions))
            q = operator.mv(p)
            curvature = jnp.real(_cdot(p, q))
            good = (curvature > 0) & jnp.isfinite(curvature)
            step_length = _cdot(p, s.r)
            alpha = jnp.where(good, step_length / jnp.where(good, curvature, 1).astype(step_length.dtype), 0)
            y = _axpy(alpha, p, s.y)
            r = _axpy(-alpha, q, s.r)
            r_norm = _norm(r)
            slot = s.step % m
            directions = jtu.tree_map(lambda b, v: b.at[slot].set(v), s.directions, p)
            images = jtu.tree_map(lambda b, v: b.at[slot].set(v), s.images, q)
            curvatures = s.curvatures.at[slot].set(jnp.where(good, curvature, 0))
            broken = ~good | ~jnp.isfinite(r_norm)
            return _FCGLoop(y, r, r_norm, directions, images, curvatures, s.step + 1, s.chunk + 1, broken)

        def cond(s: _FCGLoop):
            return (s.r_norm > tol) & (s.step < max_steps) & (s.chunk < self.check_every) & ~s.broken

        def outer_body(carry):
            s, outer, replacements, true_norm, rounds = carry
            s = jax.lax.while_loop(cond, body, s._replace(chunk=jnp.zeros_like(s.chunk)))
            true_r = _sub(vector, operator.mv(s.y))
            true_norm = _norm(true_r)
            # Restart from the true residual when the recursive one has drifted (rounding, or a
            # preconditioner so irregular that the recurrence no longer tracks b - Ax).
            drifted = (s.r_norm < 0.5 * true_norm) | (s.r_norm <= tol)
            outer = _judge(
                outer, true_norm, tol, s.broken, drifted, s.step, max_steps, rounds + 1, self.patience,
                prepared.stagnation_code,
            )
            replace = drifted & (outer.status == _RUNNING)
            s = s._replace(
                r=jtu.tree_map(lambda a, b: jnp.where(replace, a, b), true_r, s.r),
                r_norm=jnp.where(replace, true_norm, s.r_norm),
                curvatures=jnp.where(replace, jnp.zeros_like(s.curvatures), s.curvatures),
            )
            return s, outer, replacements + replace.astype(replacements.dtype), true_norm, rounds + 1

        y0 = prepared.y0
        r0 = _sub(vector, operator.mv(y0))
        r0_norm = _norm(r0)
        real = r0_norm.dtype
        buffers = jtu.tree_map(lambda a: jnp.zeros((m, *a.shape), a.dtype), y0)
        zero = jnp.asarray(0)
        status0 = jnp.where((prepared.status0 == _RUNNING) & ~jnp.isfinite(r0_norm), _BREAKDOWN, prepared.status0)
        s0 = _FCGLoop(y0, r0, r0_norm, buffers, buffers, jnp.zeros(m, real), zero, zero, jnp.asarray(False))
        outer0 = _Outer(jnp.full_like(r0_norm, jnp.inf), zero, jnp.asarray(False), status0)
        carry = (s0, outer0, zero, r0_norm, zero)
        s, outer, replacements, true_norm, _ = jax.lax.while_loop(
            lambda c: c[1].status == _RUNNING, outer_body, carry
        )
        return _finish(prepared, s.y, outer.status, s.step, true_norm, {"num_replacements": replacements})


class _Cycle(NamedTuple):
    basis: Array  # (restart + 1, n): orthonormal v_j
    preconditioned: Array  # (restart, n): z_j = M(v_j)
    hessenberg: Array  # (restart + 1, restart), rotated to upper triangular as it is built
    cosines: Array  # (restart,) Givens rotations
    sines: Array
    g: Array  # (restart + 1,): the rotated β e_1
    j: Array  # steps in this cycle
    step: Array
    broken: Array
    happy: Array  # h_{j+1,j} = 0: the solution lies in the space built so far


class FGMRES(_FlexibleBase):
    r"""Flexible GMRES (Saad 1993), right-preconditioned and restarted, as a lineax solver.

    Any square operator; any preconditioner, linear or not (module docstring). Per step: one
    mat-vec, one application of ``M``, Gram–Schmidt twice against the basis (classical, with one
    reorthogonalisation: a single pass in float32 loses orthogonality), a Givens rotation that
    updates the residual norm without forming ``x``. Each cycle ends with the true residual,
    on which convergence is decided; `restart` basis vectors and as many preconditioned vectors
    are stored.

    `stats`: ``num_steps`` (mat-vecs with basis vectors), ``num_cycles``, ``residual_norm``,
    ``rhs_norm``, ``max_steps``.

    **Arguments:**

    - `rtol`, `atol`: tolerances of ``‖b - Ax‖₂ ≤ max(rtol ‖b‖₂, atol)`` (both ``0``: to
      working precision).
    - `max_steps`: cap on the total number of steps (default ``10 n``).
    - `preconditioner`: an `AbstractPreconditioner` or ``None``.
    - `restart`: the cycle length ``m`` (default 30; capped at ``n``).
    - `patience`: cycles without a 10% gain in the true residual before stagnation.
    """

    rtol: float
    atol: float = 0.0
    max_steps: int | None = None
    preconditioner: AbstractPreconditioner | None = None
    restart: int = eqx.field(static=True, default=30)
    patience: int = 3

    def __check_init__(self):
        owner = "FGMRES"
        _check_tolerance(self.rtol, "rtol", owner)
        _check_tolerance(self.atol, "atol", owner)
        _check_count(self.max_steps, "max_steps", owner, allow_none=True)
        _check_count(self.restart, "restart", owner)
        _check_count(self.patience, "patience", owner)
        _check_preconditioner(self.preconditioner, owner)

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        _check_square(operator, "FGMRES")
        return self._state(lx.linearise(operator), False)

    def compute(self, state, vector: PyTree[Array], options: dict[str, Any]):
        operator, preconditioner, _ = state
        prepared = _prepare(self, operator, vector, options)
        vector, tol, max_steps = prepared.vector, prepared.tol, prepared.max_steps
        flat_b, unravel = jfu.ravel_pytree(vector)
        dtype, n = flat_b.dtype, flat_b.size
        real = jnp.finfo(dtype).dtype
        m = min(self.restart, n)

        def flat(fn):
            return lambda v: jfu.ravel_pytree(fn(unravel(v)))[0]

        a_mv = flat(operator.mv)
        m_mv = (lambda v: v) if preconditioner is None else flat(preconditioner.mv)

        def rotate(c, s, x1, x2):
            return c * x1 + s * x2, -jnp.conj(s) * x1 + c * x2

        def givens(a, b):
            """(c, s) with c real, zeroing b in (a, b): c = |a|/ρ, s = (a/|a|) conj(b)/ρ."""
            rho = jnp.sqrt(jnp.abs(a) ** 2 + jnp.abs(b) ** 2)
            safe_rho = jnp.where(rho > 0, rho, 1)
            abs_a = jnp.abs(a)
            phase = jnp.where(abs_a > 0, a / jnp.where(abs_a > 0, abs_a, 1).astype(dtype), jnp.ones((), dtype))
            c = jnp.where(rho > 0, abs_a / safe_rho, 1).astype(dtype)
            s = jnp.where(rho > 0, phase * jnp.conj(b) / safe_rho.astype(dtype), 0).astype(dtype)
            return c, s

        def arnoldi(cycle: _Cycle) -> _Cycle:
            j = cycle.j
            z = m_mv(cycle.basis[j])
            w = a_mv(z)
            mask = (jnp.arange(m + 1) <= j).astype(dtype)
            h = mask * (jnp.conj(cycle.basis) @ w)
            w = w - h @ cycle.basis
            correction = mask * (jnp.conj(cycle.basis) @ w)  # reorthogonalisation
            w = w - correction @ cycle.basis
            h = h + correction
            norm = jnp.sqrt(jnp.sum(jnp.abs(w) ** 2))
            happy = ~(norm > 0)
            v = w / jnp.where(happy, 1, norm).astype(dtype)
            h = h.at[j + 1].set(norm.astype(dtype))

            def previous(i, h):  # apply the earlier rotations to the new column
                x1, x2 = rotate(cycle.cosines[i], cycle.sines[i], h[i], h[i + 1])
                keep = i < j
                return h.at[i].set(jnp.where(keep, x1, h[i])).at[i + 1].set(jnp.where(keep, x2, h[i + 1]))

            h = jax.lax.fori_loop(0, m, previous, h)
            c, s = givens(h[j], h[j + 1])
            h = h.at[j].set(c * h[j] + s * h[j + 1]).at[j + 1].set(jnp.zeros((), dtype))
            g_j, g_next = rotate(c, s, cycle.g[j], cycle.g[j + 1])
            finite = jnp.all(jnp.isfinite(h)) & jnp.all(jnp.isfinite(v))
            return _Cycle(
                basis=cycle.basis.at[j + 1].set(v),
                preconditioned=cycle.preconditioned.at[j].set(z),
                hessenberg=cycle.hessenberg.at[:, j].set(h),
                cosines=cycle.cosines.at[j].set(c),
                sines=cycle.sines.at[j].set(s),
                g=cycle.g.at[j].set(g_j).at[j + 1].set(g_next),
                j=j + 1,
                step=cycle.step + 1,
                broken=~finite,
                happy=happy,
            )

        def running(cycle: _Cycle):
            return (
                (cycle.j < m)
                & (jnp.abs(cycle.g[cycle.j]) > tol)
                & (cycle.step < max_steps)
                & ~cycle.broken
                & ~cycle.happy
            )

        def run_cycle(carry):
            y, r, r_norm, step, outer, cycles = carry
            basis = jnp.zeros((m + 1, n), dtype).at[0].set(r / jnp.where(r_norm > 0, r_norm, 1).astype(dtype))
            cycle = _Cycle(
                basis=basis,
                preconditioned=jnp.zeros((m, n), dtype),
                hessenberg=jnp.zeros((m + 1, m), dtype),
                cosines=jnp.ones((m,), dtype),
                sines=jnp.zeros((m,), dtype),
                g=jnp.zeros((m + 1,), dtype).at[0].set(r_norm.astype(dtype)),
                j=jnp.asarray(0),
                step=step,
                broken=jnp.asarray(False),
                happy=jnp.asarray(False),
            )
            cycle = jax.lax.while_loop(running, arnoldi, cycle)
            # y_m solves the leading j×j triangle; unused rows get a unit diagonal and zero g.
            used = jnp.arange(m) < cycle.j
            triangle = jnp.where(used[:, None] & used[None, :], cycle.hessenberg[:m], 0)
            triangle = triangle + jnp.diag(jnp.where(used, 0, 1).astype(dtype))
            coefficients = jsl.solve_triangular(triangle, jnp.where(used, cycle.g[:m], 0), lower=False)
            coefficients = jnp.where(used, coefficients, 0)
            y = y + coefficients @ cycle.preconditioned
            r = flat_b - a_mv(y)
            r_norm = jnp.sqrt(jnp.sum(jnp.abs(r) ** 2))
            broken = cycle.broken | ~jnp.all(jnp.isfinite(coefficients))
            # Every cycle restarts from the true residual (`drifted` is always true).
            outer = _judge(
                outer, r_norm, tol, broken, True, cycle.step, max_steps, cycles + 1, self.patience,
                prepared.stagnation_code,
            )
            return y, r, r_norm, cycle.step, outer, cycles + 1

        y0 = jfu.ravel_pytree(prepared.y0)[0]
        r0 = flat_b - a_mv(y0)
        r0_norm = jnp.sqrt(jnp.sum(jnp.abs(r0) ** 2)).astype(real)
        zero = jnp.asarray(0)
        status0 = jnp.select(
            [prepared.status0 != _RUNNING, ~jnp.isfinite(r0_norm), r0_norm <= tol],
            [prepared.status0, _BREAKDOWN, _CONVERGED],
            _RUNNING,
        )
        outer0 = _Outer(jnp.full_like(r0_norm, jnp.inf), zero, jnp.asarray(False), status0)
        y, _, r_norm, steps, outer, cycles = jax.lax.while_loop(
            lambda c: c[4].status == _RUNNING, run_cycle, (y0, r0, r0_norm, zero, outer0, zero)
        )
        return _finish(prepared, unravel(y), outer.status, steps, r_norm, {"num_cycles": cycles})
