"""Every jaxpde linear solver returns within its step budget on any input, and never calls a
non-finite or overflowed answer a success — alone and inside a `jax.vmap` batch, where the bad
samples are flagged and the good ones solved.

Each solver meets the same catalogue of bad inputs: NaN/±Inf in the right-hand side, in the
initial guess and in the operator, a right-hand side whose squared norm overflows (solvable:
must succeed), a solution that overflows (must fail) and an initial guess whose residual
overflows. The catalogue is solved one input at a time (one compiled program per solver) and as
one vmapped batch, and a vmapped Darcy batch with one NaN source. A loop that never ends fails by the timeout instead of blocking the suite. A
new solver is one more entry in `SOLVERS`.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from jaxpde import Grid
from jaxpde.numerics.krylov import ConjugateGradient, MixedPrecisionRefinement
from jaxpde.numerics.preconditioning import Jacobi
from jaxpde.preconditioners._flexible import FGMRES, FlexibleCG
from jaxpde.pdes import Darcy

N = 5
MAX_STEPS = 40


@dataclasses.dataclass(frozen=True)
class SolverCase:
    name: str
    make: Callable[[], lx.AbstractLinearSolver]
    dtype: str
    steps: Callable[[dict], int]  # the stat counted against the budget
    budget: int
    slow: bool = False  # run with `-m slow` only (the default suite's time budget)


SOLVERS = [
    SolverCase(
        "ConjugateGradient", lambda: ConjugateGradient(rtol=1e-5, max_steps=MAX_STEPS), "float32",
        lambda stats: stats["num_steps"], MAX_STEPS,
    ),
    SolverCase(
        "ConjugateGradient-jacobi", lambda: ConjugateGradient(rtol=1e-5, max_steps=MAX_STEPS, preconditioner=Jacobi()),
        "float32", lambda stats: stats["num_steps"], MAX_STEPS,
    ),
    SolverCase(
        "MixedPrecisionRefinement", lambda: MixedPrecisionRefinement(rtol=1e-10, max_refinements=6), "float64",
        lambda stats: stats["num_refinements"], 6,
    ),
    SolverCase(
        "FlexibleCG-jacobi", lambda: FlexibleCG(rtol=1e-5, max_steps=MAX_STEPS, preconditioner=Jacobi()), "float32",
        lambda stats: stats["num_steps"], MAX_STEPS, slow=True,
    ),
    SolverCase(
        "FGMRES-jacobi", lambda: FGMRES(rtol=1e-5, max_steps=MAX_STEPS, restart=4, preconditioner=Jacobi()), "float32",
        lambda stats: stats["num_steps"], MAX_STEPS, slow=True,
    ),
]

_CASES = [pytest.param(case, id=case.name, marks=(pytest.mark.slow,) if case.slow else ()) for case in SOLVERS]

OK, FAILED, NONFINITE, OK_OR_FAILED = "ok", "failed", "nonfinite", "ok or failed"


def _catalogue(dtype):
    """(name, matrix, b, y0, expected outcome) for each bad input, in `dtype`."""
    big = float(jnp.finfo(dtype).max)
    q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(0), (N, N), dtype))
    matrix = (q * jnp.linspace(1.0, 10.0, N, dtype=dtype)) @ q.T
    b = jnp.arange(1.0, N + 1, dtype=dtype)
    zero = jnp.zeros(N, dtype)
    nan, inf = jnp.asarray(jnp.nan, dtype), jnp.asarray(jnp.inf, dtype)
    return [
        ("good", matrix, b, zero, OK),
        ("nan_in_b", matrix, b.at[2].set(nan), zero, NONFINITE),
        ("inf_in_b", matrix, b.at[0].set(inf), zero, NONFINITE),
        ("minus_inf_in_b", matrix, b.at[4].set(-inf), zero, NONFINITE),
        ("nan_in_y0", matrix, b, zero.at[1].set(nan), NONFINITE),
        ("inf_in_y0", matrix, b, zero.at[3].set(inf), NONFINITE),
        ("nan_in_operator", matrix.at[1, 1].set(nan), b, zero, FAILED),
        ("inf_in_operator", matrix.at[0, 2].set(inf).at[2, 0].set(inf), b, zero, FAILED),
        # ‖b‖² overflows (|b_i| ≫ sqrt(max)), the system is perfectly solvable.
        ("huge_b", matrix, b * (0.02 * big / N), zero, OK),
        ("b_next_to_the_largest_float", 10 * matrix, b.at[N - 1].set(0.9 * big), zero, OK),
        # ‖b‖² underflows; b and the solution stay normal numbers (XLA on CPU flushes
        # subnormals to zero, so a subnormal solution could not be represented).
        ("tiny_b", matrix, b * jnp.finfo(dtype).smallest_normal * 2.0**12, zero, OK),
        # The solution exceeds the largest float: no finite answer exists.
        ("overflowing_solution", 1e-2 * matrix, b * (0.1 * big / N), zero, FAILED),
        # A y0 overflows; the solver may fail, but must not return garbage as success.
        ("overflowing_residual", matrix, b, jnp.full(N, 0.5 * big, dtype), OK_OR_FAILED),
    ]


def _solve(solver):
    def solve(matrix, b, y0):
        operator = lx.MatrixLinearOperator(matrix, lx.positive_semidefinite_tag)
        return lx.linear_solve(operator, b, solver, options={"y0": y0}, throw=False)

    return solve


def _check(case, name, expected, matrix, b, value, ok, nonfinite, steps):
    assert int(steps) <= case.budget, f"{name}: {int(steps)} steps > budget {case.budget}"
    if expected == OK or (expected == OK_OR_FAILED and ok):
        assert ok, f"{name}: not solved"
        reference = np.linalg.solve(np.asarray(matrix, np.float64), np.asarray(b, np.float64))
        np.testing.assert_allclose(np.asarray(value, np.float64), reference, rtol=1e-4, err_msg=name)
    elif expected == NONFINITE:
        assert nonfinite, f"{name}: not reported as lineax.RESULTS.nonfinite_input"
    else:
        assert not ok, f"{name}: reported as successful"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", _CASES)
def test_every_bad_input_returns_within_budget_with_a_failed_result(x64, case):
    solve = jax.jit(_solve(case.make()))
    for name, matrix, b, y0, expected in _catalogue(case.dtype):
        solution = solve(matrix, b, y0)
        ok = bool(solution.result == lx.RESULTS.successful)
        nonfinite = bool(solution.result == lx.RESULTS.nonfinite_input)
        _check(case, name, expected, matrix, b, solution.value, ok, nonfinite, case.steps(solution.stats))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", _CASES)
def test_vmapped_batch_flags_the_bad_samples_and_solves_the_good(x64, case):
    catalogue = _catalogue(case.dtype)
    matrices, bs, y0s = (jnp.stack([entry[k] for entry in catalogue]) for k in (1, 2, 3))
    solve = _solve(case.make())

    @jax.jit
    @jax.vmap
    def batch(matrix, b, y0):
        solution = solve(matrix, b, y0)
        ok = solution.result == lx.RESULTS.successful
        return solution.value, ok, solution.result == lx.RESULTS.nonfinite_input, case.steps(solution.stats)

    values, ok, nonfinite, steps = batch(matrices, bs, y0s)
    for i, (name, matrix, b, _, expected) in enumerate(catalogue):
        _check(case, name, expected, matrix, b, values[i], bool(ok[i]), bool(nonfinite[i]), steps[i])


@pytest.mark.timeout(120)
def test_darcy_batch_with_a_nan_source_returns(x64):
    # Issue 13.1: one NaN sample hung a whole vmapped Darcy batch (and Darcy.solve alone).
    grid = Grid((8, 8), boundary="dirichlet")
    a = jnp.ones(grid.shape, jnp.float64)
    sources = jnp.stack([jnp.ones(grid.shape), jnp.ones(grid.shape).at[3, 4].set(jnp.nan), 2 * jnp.ones(grid.shape)])
    batch = jax.vmap(lambda f: Darcy().solve(grid, a, source=f, rtol=1e-10, throw=False))(sources)
    alone = Darcy().solve(grid, a, source=jnp.ones(grid.shape), rtol=1e-10)
    np.testing.assert_allclose(batch[0], alone, rtol=1e-8)
    np.testing.assert_allclose(batch[2], 2 * alone, rtol=1e-8)
    with pytest.raises(Exception, match="Darcy.solve"):
        jax.block_until_ready(Darcy().solve(grid, a, source=sources[1], rtol=1e-10))
