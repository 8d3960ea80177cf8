"""Conformance of jaxpde's linear solvers with lineax's solver contract, against dense solves.

Every solver in `SOLVERS` is run over the operator kinds lineax offers — matrix, function, pytree,
Jacobian, composed, diagonal, tagged, sum — real and complex, float32 and float64, under default
and strict dtype promotion, through `lineax.linear_solve`, `jax.jvp`, `jax.vmap` (over the
operator and the vector at once), `jax.jit` of `init`, `jax.linear_transpose` and `jax.grad`, and
compared with `jnp.linalg.solve` on the same dense matrix.

The full product (solvers × 8 kinds × 4 dtypes × 2 promotions × 6 transforms) would compile
over a thousand solves; each compile costs about a second. `_cases` instead covers it in a
rotation: each solver meets every operator kind once, every dtype under both promotions and
every transform at least once, and across solvers each transform meets real and complex dtypes.
A new solver (the preconditioners issue adds some) is one more `SolverCase` in `SOLVERS`.

Operators are ``Q diag(λ) Qᴴ`` with ``λ ∈ [1, 10]`` (condition number 10, Hermitian positive
definite as CG needs), ``n = 6``. Tolerances scale with the dtype: the solvers are asked for a
relative residual of ``1e-5`` (single) or ``1e-12`` (double), and answers are compared at
``1e-3`` / ``1e-8`` relative to the norm of the dense answer.
"""

import dataclasses
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from jaxpde.numerics.krylov import ConjugateGradient, MixedPrecisionRefinement
from jaxpde.numerics.preconditioning import Jacobi
from jaxpde.preconditioners._flexible import FGMRES, FlexibleCG
from jaxpde.preconditioners._solver import Preconditioned

N = 6
DTYPES = ("float32", "float64", "complex64", "complex128")
PROMOTIONS = ("standard", "strict")
TRANSFORMS = ("solve", "jvp", "vmap", "jit_init", "transpose", "grad")
KINDS = ("matrix", "function", "pytree", "jacobian", "composed", "diagonal", "tagged", "sum")
PSD = lx.positive_semidefinite_tag


def _single(dtype) -> bool:
    return jnp.dtype(dtype) in (jnp.dtype("float32"), jnp.dtype("complex64"))


# ----------------------------------------------------------------------------------------------
# The solvers under test. `refuses` names the operator kinds a solver rejects by design (at
# `init`, with a ValueError matching `refusal`); those cases check the refusal instead.
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SolverCase:
    name: str
    make: Callable[[str], lx.AbstractLinearSolver]  # dtype name -> solver
    refuses: tuple[str, ...] = ()
    refusal: str = ""
    kinds: tuple[str, ...] = KINDS  # a variant of a solver covered elsewhere may take a subset
    slow: bool = False  # its cases run with `-m slow` only (the default suite's time budget)


SOLVERS = [
    SolverCase("ConjugateGradient", lambda dtype: ConjugateGradient(rtol=1e-5 if _single(dtype) else 1e-12)),
    # The Jacobi variant: the preconditioner built in `init` (from a matrix, a pytree and a
    # function operator's diagonal) is carried, transposed and batched with the state.
    SolverCase(
        "ConjugateGradient-jacobi",
        lambda dtype: ConjugateGradient(rtol=1e-5 if _single(dtype) else 1e-12, preconditioner=Jacobi()),
        kinds=("matrix", "pytree", "function", "diagonal"),
    ),
    SolverCase(
        "MixedPrecisionRefinement",
        lambda dtype: MixedPrecisionRefinement(
            rtol=1e-5 if _single(dtype) else 1e-12, low_dtype=jnp.float16 if _single(dtype) else jnp.float32
        ),
        refuses=("function", "jacobian"),
        refusal=r"MixedPrecisionRefinement: cannot cast the operator \(\w+\) to float\d+: .* Castable operators",
    ),
    # The preconditioners issue: the flexible methods (M rebuilt from the transposed operator in
    # `transpose`) and the solver that carries its preconditioner.
    SolverCase(
        "FlexibleCG-jacobi",
        lambda dtype: FlexibleCG(rtol=1e-5 if _single(dtype) else 1e-12, preconditioner=Jacobi()),
        slow=True,
    ),
    SolverCase(
        "FGMRES-jacobi",
        lambda dtype: FGMRES(rtol=1e-5 if _single(dtype) else 1e-12, preconditioner=Jacobi()),
        slow=True,
    ),
    SolverCase(
        "Preconditioned-cg",
        lambda dtype: Preconditioned(Jacobi(), method="cg", rtol=1e-5 if _single(dtype) else 1e-12),
        kinds=("matrix", "pytree", "diagonal"),
        slow=True,
    ),
    SolverCase(
        "Preconditioned-gmres",
        lambda dtype: Preconditioned(
            Jacobi(), method="gmres", rtol=1e-6 if _single(dtype) else 1e-12, atol=1e-6 if _single(dtype) else 1e-13
        ),
        kinds=("matrix", "function", "sum"),
        slow=True,
    ),
]


# ----------------------------------------------------------------------------------------------
# Operator kinds: parameters (what jvp/vmap/grad differentiate or batch), the lineax operator
# built from them, and the dense matrix the reference solve uses.
# ----------------------------------------------------------------------------------------------


def _hpd(key, dtype):
    real = jnp.finfo(dtype).dtype
    k1, k2 = jax.random.split(key)
    g = jax.random.normal(k1, (N, N), real)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        g = g + 1j * jax.random.normal(k2, (N, N), real)
    q, _ = jnp.linalg.qr(g.astype(dtype))
    return (q * jnp.linspace(1.0, 10.0, N, dtype=real).astype(dtype)) @ q.conj().T


def _hermitian_tangent(key, dtype):
    g = jax.random.normal(key, (N, N), jnp.finfo(dtype).dtype).astype(dtype)
    return 0.1 * (g + g.conj().T)


def _parameters(kind, dtype, key):
    """(parameters, a tangent of them that keeps the operator Hermitian)."""
    k1, k2 = jax.random.split(key)
    if kind == "diagonal":
        real = jnp.finfo(dtype).dtype
        return jnp.linspace(1.0, 10.0, N, dtype=real).astype(dtype), 0.1 * jax.random.normal(k2, (N,), real).astype(dtype)
    matrix = _hpd(k1, dtype)
    if kind == "composed":  # A = L Lᴴ; a lower-triangular tangent of L
        return jnp.linalg.cholesky(matrix), 0.1 * jnp.tril(jax.random.normal(k2, (N, N), jnp.finfo(dtype).dtype)).astype(dtype)
    return matrix, _hermitian_tangent(k2, dtype)


def _dense(kind, p):
    if kind == "diagonal":
        return jnp.diag(p)
    if kind == "composed":
        return p @ p.conj().T
    return p


def _structure(kind, dtype):
    if kind == "pytree":
        return {"u": jax.ShapeDtypeStruct((2,), dtype), "v": jax.ShapeDtypeStruct((N - 2,), dtype)}
    return jax.ShapeDtypeStruct((N,), dtype)


def _to_tree(kind, x):
    return {"u": x[..., :2], "v": x[..., 2:]} if kind == "pytree" else x


def _from_tree(kind, tree):
    return jnp.concatenate([tree["u"], tree["v"]], axis=-1) if kind == "pytree" else tree


def _operator(kind, p) -> lx.AbstractLinearOperator:
    structure = _structure(kind, p.dtype)
    if kind == "matrix":
        return lx.MatrixLinearOperator(p, PSD)
    if kind == "function":
        return lx.FunctionLinearOperator(lambda v: p @ v, structure, PSD)
    if kind == "pytree":
        blocks = {"u": {"u": p[:2, :2], "v": p[:2, 2:]}, "v": {"u": p[2:, :2], "v": p[2:, 2:]}}
        return lx.PyTreeLinearOperator(blocks, structure, PSD)
    if kind == "jacobian":
        return lx.JacobianLinearOperator(lambda x, a: a @ x, jnp.zeros(N, p.dtype), p, PSD)
    if kind == "composed":
        return lx.TaggedLinearOperator(lx.MatrixLinearOperator(p) @ lx.MatrixLinearOperator(p.conj().T), PSD)
    if kind == "diagonal":
        return lx.TaggedLinearOperator(lx.DiagonalLinearOperator(p), PSD)
    if kind == "tagged":
        return lx.TaggedLinearOperator(lx.MatrixLinearOperator(p), PSD)
    if kind == "sum":
        return lx.MatrixLinearOperator(0.25 * p, PSD) + lx.MatrixLinearOperator(0.75 * p, PSD)
    raise AssertionError(kind)


# ----------------------------------------------------------------------------------------------
# The cases: a rotation that covers every solver × kind, and per solver every dtype under both
# promotions and every transform.
# ----------------------------------------------------------------------------------------------


def _cases():
    cases = []
    for s, solver in enumerate(SOLVERS):
        accepted = [kind for kind in solver.kinds if kind not in solver.refuses]
        for i, kind in enumerate(accepted):
            dtype = DTYPES[(i + s) % len(DTYPES)]
            promotion = PROMOTIONS[(i // len(DTYPES) + s) % len(PROMOTIONS)]
            transform = TRANSFORMS[(i + 2 * s) % len(TRANSFORMS)]
            name = f"{solver.name}-{kind}-{dtype}-{promotion}-{transform}"
            marks = (pytest.mark.slow,) if solver.slow else ()
            cases.append(pytest.param(solver, kind, dtype, promotion, transform, id=name, marks=marks))
        for i, kind in enumerate(solver.refuses):
            # Double precision: there a cast to a lower precision really happens (complex64 has
            # no lower complex partner, so a complex64 operator is left as it is).
            dtype, promotion = ("float64", "complex128")[i % 2], PROMOTIONS[i % len(PROMOTIONS)]
            name = f"{solver.name}-{kind}-{dtype}-{promotion}-refused"
            cases.append(pytest.param(solver, kind, dtype, promotion, "refused", id=name))
    return cases


def _close(actual, expected, dtype):
    tolerance = 1e-3 if _single(dtype) else 1e-8
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype
    error = np.linalg.norm(actual - expected) / max(np.linalg.norm(expected), 1e-30)
    assert error < tolerance, f"relative error {error:.2e} >= {tolerance:.0e}"


@pytest.mark.parametrize("solver_case, kind, dtype, promotion, transform", _cases())
def test_solver_matches_dense_solve(x64, solver_case, kind, dtype, promotion, transform):
    dtype = jnp.dtype(dtype)
    solver = solver_case.make(dtype.name)
    k1, k2, k3 = jax.random.split(jax.random.key(KINDS.index(kind)), 3)
    p, dp = _parameters(kind, dtype, k1)
    real = jnp.finfo(dtype).dtype
    b = jax.random.normal(k2, (N,), real).astype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        b = b + 1j * jax.random.normal(k3, (N,), real).astype(dtype)
    db = jnp.flip(b)

    def solve(p, b, state=None):
        kwargs = {} if state is None else {"state": state}
        x = lx.linear_solve(_operator(kind, p), _to_tree(kind, b), solver, **kwargs).value
        return _from_tree(kind, x)

    def dense_solve(p, b):
        return jnp.linalg.solve(_dense(kind, p), b)

    with jax.numpy_dtype_promotion(promotion):
        if transform == "refused":
            with pytest.raises(ValueError, match=solver_case.refusal):
                solver.init(_operator(kind, p), {})
            return
        if transform == "solve":
            _close(solve(p, b), dense_solve(p, b), dtype)
        elif transform == "jvp":
            (x, dx) = jax.jvp(solve, (p, b), (dp, db))
            (x_ref, dx_ref) = jax.jvp(dense_solve, (p, b), (dp, db))
            _close(x, x_ref, dtype)
            _close(dx, dx_ref, dtype)
        elif transform == "vmap":
            ps, bs = jnp.stack([p, p + dp]), jnp.stack([b, db])
            _close(jax.vmap(solve)(ps, bs), jax.vmap(dense_solve)(ps, bs), dtype)
        elif transform == "jit_init":
            # A plain jax.jit where the operator holds arrays only (the state must then be a
            # pytree of arrays and static data); operators holding functions need filter_jit.
            jit = eqx.filter_jit if kind in ("function", "jacobian") else jax.jit
            state = jit(solver.init)(_operator(kind, p), {})
            _close(solve(p, b, state), dense_solve(p, b), dtype)
        elif transform == "transpose":
            (x_t,) = jax.linear_transpose(lambda v: solve(p, v), b)(db)
            _close(x_t, jnp.linalg.solve(_dense(kind, p).T, db), dtype)
        elif transform == "grad":
            weights = jnp.cos(jnp.arange(N, dtype=real)).astype(dtype)

            def loss(solve_fn):
                return lambda p: jnp.real(jnp.sum(weights * solve_fn(p, b)))

            _close(jax.grad(loss(solve))(p), jax.grad(loss(dense_solve))(p), dtype)
