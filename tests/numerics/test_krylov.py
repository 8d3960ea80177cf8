"""Krylov solvers: regression tests for their contract with lineax and for bad input.

Each test compares with a dense solve or checks a reported result; the hang regressions run
under a timeout (a solver that loops forever fails the test instead of blocking the suite).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from jaxpde.numerics.krylov import ConjugateGradient, MixedPrecisionRefinement


def _spd(n, dtype, key=0):
    """Q diag(λ) Qᴴ with λ in [1, 10]: well conditioned, Hermitian positive definite."""
    k1, k2 = jax.random.split(jax.random.key(key))
    real = jnp.finfo(dtype).dtype
    g = jax.random.normal(k1, (n, n), real)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        g = g + 1j * jax.random.normal(k2, (n, n), real)
    q, _ = jnp.linalg.qr(g.astype(dtype))
    eigenvalues = jnp.linspace(1.0, 10.0, n, dtype=real).astype(dtype)
    return (q * eigenvalues) @ q.conj().T


def _psd(matrix):
    return lx.MatrixLinearOperator(matrix, lx.positive_semidefinite_tag)


# -- issue 13.1: no hang, never "successful" on non-finite input, no overflow -------------------


@pytest.mark.timeout(60)
def test_nan_rhs_returns_nonfinite_input_within_max_steps():
    # Before: the tolerance became NaN, the loop took no steps and never reached max_steps.
    operator = _psd(2.0 * jnp.eye(4))
    for b in (jnp.array([1.0, jnp.nan, 0, 1]), jnp.array([1.0, jnp.inf, 0, 1])):
        solution = lx.linear_solve(operator, b, ConjugateGradient(rtol=1e-5, max_steps=10), throw=False)
        assert solution.result == lx.RESULTS.nonfinite_input
        assert int(solution.stats["num_steps"]) <= 10
    y0 = jnp.array([0.0, 0.0, jnp.nan, 0.0])
    solution = lx.linear_solve(
        operator, jnp.ones(4), ConjugateGradient(rtol=1e-5, max_steps=10), options={"y0": y0}, throw=False
    )
    assert solution.result == lx.RESULTS.nonfinite_input


@pytest.mark.timeout(60)
def test_nan_in_operator_is_a_breakdown_not_a_success():
    matrix = (2.0 * jnp.eye(4)).at[1, 2].set(jnp.nan)
    solution = lx.linear_solve(_psd(matrix), jnp.ones(4), ConjugateGradient(rtol=1e-5, max_steps=10), throw=False)
    assert solution.result == lx.RESULTS.breakdown


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scale", [1e19, 3e19, 1e38])  # 2e38: next to float32's largest, 3.4e38
def test_huge_rhs_does_not_overflow_the_norms(scale):
    # float32: ‖b‖² overflows from |b_i| ≈ 1.8e19. Before: 1e19 hung; 3e19·ones with rtol=1e-5
    # returned x = 0 as "successful" (tolerance = inf).
    b = scale * jnp.array([1.0, 2.0, 0.5, 1.0], jnp.float32)
    matrix = jnp.diag(jnp.array([2.0, 3.0, 4.0, 5.0], jnp.float32))
    solution = lx.linear_solve(_psd(matrix), b, ConjugateGradient(rtol=1e-5, max_steps=10), throw=False)
    assert solution.result == lx.RESULTS.successful
    np.testing.assert_allclose(solution.value, b / jnp.diag(matrix), rtol=1e-5)
    np.testing.assert_allclose(solution.stats["rhs_norm"], scale * np.sqrt(6.25), rtol=1e-5)


@pytest.mark.timeout(60)
def test_tiny_rhs_converges_as_the_scaled_one():
    matrix = _spd(6, jnp.float32)
    b = jnp.arange(1.0, 7.0, dtype=jnp.float32)
    solver = ConjugateGradient(rtol=1e-5)
    big = lx.linear_solve(_psd(matrix), b, solver)
    tiny = lx.linear_solve(_psd(matrix), b * 2.0**-120, solver)
    # The power-of-two scaling is exact: the same iterates, scaled.
    np.testing.assert_array_equal(tiny.value * 2.0**120, big.value)
    assert int(tiny.stats["num_steps"]) == int(big.stats["num_steps"])


@pytest.mark.timeout(60)
def test_vmapped_batch_with_one_nan_sample_returns_and_flags_it():
    matrix = _spd(5, jnp.float32)
    bs = jnp.stack([jnp.arange(1.0, 6.0), jnp.full(5, jnp.nan), jnp.ones(5)])

    def solve(b):
        solution = lx.linear_solve(_psd(matrix), b, ConjugateGradient(rtol=1e-5, max_steps=50), throw=False)
        return solution.value, solution.result == lx.RESULTS.successful, solution.stats["num_steps"]

    values, ok, steps = jax.vmap(solve)(bs)
    np.testing.assert_array_equal(ok, [True, False, True])
    assert np.all(np.asarray(steps) <= 50)
    good = np.array([0, 2])
    expected = jnp.linalg.solve(matrix, bs[good].T).T
    np.testing.assert_allclose(np.asarray(values)[good], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.timeout(60)
def test_mixed_precision_refinement_on_nan_and_huge_input(x64):
    matrix = _spd(5, jnp.float64)
    solver = MixedPrecisionRefinement(rtol=1e-10, max_refinements=6)
    bad = lx.linear_solve(_psd(matrix), jnp.full(5, jnp.nan), solver, throw=False)
    assert bad.result == lx.RESULTS.nonfinite_input
    b = 1e300 * jnp.arange(1.0, 6.0)  # ‖b‖² overflows float64 without scaling
    good = lx.linear_solve(_psd(matrix), b, solver, throw=False)
    assert good.result == lx.RESULTS.successful
    np.testing.assert_allclose(good.value, jnp.linalg.solve(matrix, b), rtol=1e-9)
    nan_operator = lx.linear_solve(_psd(matrix.at[0, 0].set(jnp.nan)), b, solver, throw=False)
    assert nan_operator.result == lx.RESULTS.breakdown


# -- issue 13.7: argument checks ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_steps": 0}, r"`max_steps` must be a positive integer or None, got 0"),
        ({"max_steps": -3}, r"`max_steps` must be a positive integer or None, got -3"),
        ({"max_steps": 2.5}, r"`max_steps` must be a positive integer or None, got 2.5"),
        ({"max_steps": True}, r"`max_steps` must be a positive integer or None, got True"),
        ({"rtol": -1e-3}, r"`rtol` must be a finite real number >= 0, got -0.001"),
        ({"rtol": float("nan")}, r"`rtol` must be a finite real number >= 0, got nan"),
        ({"atol": float("inf")}, r"`atol` must be a finite real number >= 0, got inf"),
        ({"check_every": 0}, r"`check_every` must be a positive integer, got 0"),
        ({"patience": 0}, r"`patience` must be a positive integer, got 0"),
    ],
)
def test_conjugate_gradient_refuses_bad_arguments(kwargs, match):
    kwargs = {"rtol": 1e-5, **kwargs}
    with pytest.raises(ValueError, match=rf"ConjugateGradient: {match}"):
        ConjugateGradient(**kwargs)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"max_refinements": 0}, ValueError, r"`max_refinements` must be a positive integer, got 0"),
        ({"rtol": -1.0}, ValueError, r"`rtol` must be a finite real number >= 0, got -1.0"),
        ({"low_dtype": jnp.int32}, ValueError, r"`low_dtype` must be a real floating dtype"),
        ({"low_dtype": jnp.complex64}, ValueError, r"`low_dtype` must be a real floating dtype"),
        ({"inner": "cg"}, TypeError, r"`inner` must be a lineax.AbstractLinearSolver, got str"),
    ],
)
def test_mixed_precision_refinement_refuses_bad_arguments(kwargs, error, match):
    kwargs = {"rtol": 1e-5, **kwargs}
    with pytest.raises(error, match=rf"MixedPrecisionRefinement: {match}"):
        MixedPrecisionRefinement(**kwargs)


# -- issue 20: the lineax solver contract -----------------------------------------------------


# 20.2 (strict promotion) and 20.3 (complex systems in MixedPrecisionRefinement, complex64 inside)
# are covered, for every solver, by the strict and complex cases of test_lineax_conformance.py;
# 20.1 for positive definite operators by its jit_init cases.


def test_state_survives_jit_of_init_negative_definite():
    # 20.1: `is_nsd` was a Python bool leaf; after jax.jit(init) it is a tracer and `if is_nsd:` fails.
    matrix = _spd(4, jnp.float32)
    operator = lx.MatrixLinearOperator(-matrix, lx.negative_semidefinite_tag)
    b = jnp.arange(1.0, 5.0)
    solver = ConjugateGradient(rtol=1e-6)
    state = jax.jit(solver.init)(operator, {})
    solution = lx.linear_solve(operator, b, solver, state=state)
    np.testing.assert_allclose(solution.value, jnp.linalg.solve(operator.as_matrix(), b), rtol=1e-4, atol=1e-5)
    # The state also passes through a loop carry unchanged.
    carried = jax.lax.fori_loop(0, 2, lambda i, s: s, state)
    np.testing.assert_allclose(lx.linear_solve(operator, b, solver, state=carried).value, solution.value)


class _InitBehindCustomJVP(lx.AbstractLinearSolver):
    """Runs the wrapped solver's `init` inside a `jax.custom_jvp` whose rule fails: lineax must
    apply `stop_gradient` before `init`, and the state must then be a pytree of arrays."""

    solver: lx.AbstractLinearSolver

    def init(self, operator, options):
        wrapped = jax.custom_jvp(lambda operator: self.solver.init(operator, options))
        wrapped.defjvp(lambda primals, tangents: pytest.fail("solver.init was differentiated"))
        return wrapped(operator)

    def compute(self, state, vector, options):
        return self.solver.compute(state, vector, options)

    def transpose(self, state, options):
        return self.solver.transpose(state, options)

    def conj(self, state, options):
        return self.solver.conj(state, options)

    def assume_full_rank(self):
        return self.solver.assume_full_rank()


def test_jvp_does_not_differentiate_init():
    # 20.1: with `is_nsd` a bool leaf, the custom_jvp made it a tracer (TracerBoolConversionError).
    matrix, tangent = _spd(4, jnp.float32), 0.1 * jnp.eye(4)
    b = jnp.arange(1.0, 5.0)
    solver = _InitBehindCustomJVP(ConjugateGradient(rtol=1e-6))

    def solve(m):
        return lx.linear_solve(_psd(m), b, solver).value

    x, dx = jax.jvp(solve, (matrix,), (tangent,))
    x_ref, dx_ref = jax.jvp(lambda m: jnp.linalg.solve(m, b), (matrix,), (tangent,))
    np.testing.assert_allclose(x, x_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-3, atol=1e-5)


def _refusal(name):
    return rf"MixedPrecisionRefinement: cannot cast the operator \({name}\) to float32: .*Castable operators"


def test_mixed_precision_refuses_every_uncastable_operator_with_one_message(x64):
    # 20.4: only FunctionLinearOperator got the intended message; Jacobian, sums and compositions
    # failed deep inside lineax (and only in_structure was checked).
    matrix = _spd(4, jnp.float64)
    structure = jax.ShapeDtypeStruct((4,), jnp.float64)
    function = lx.FunctionLinearOperator(lambda v: matrix @ v, structure, lx.positive_semidefinite_tag)
    jacobian = lx.JacobianLinearOperator(lambda x, args: args @ x, jnp.zeros(4), matrix, lx.positive_semidefinite_tag)
    psd = lx.positive_semidefinite_tag
    uncastable = {
        "FunctionLinearOperator": function,
        "JacobianLinearOperator": jacobian,
        "AddLinearOperator": _psd(matrix) + function,
        "TaggedLinearOperator": lx.TaggedLinearOperator(_psd(matrix) @ function, psd),
        "ComposedLinearOperator": function @ _psd(matrix),
    }
    for name, operator in uncastable.items():
        with pytest.raises(ValueError, match=_refusal(name)):
            MixedPrecisionRefinement(rtol=1e-10).init(operator, {})
    # Operators built from arrays are cast, and solve to float64 accuracy.
    b = jnp.arange(1.0, 5.0)
    castable = [
        lx.TaggedLinearOperator(_psd(0.5 * matrix) + _psd(0.5 * matrix), psd),
        lx.TaggedLinearOperator(_psd(matrix) @ lx.IdentityLinearOperator(structure), psd),
    ]
    for operator in castable:
        solution = lx.linear_solve(operator, b, MixedPrecisionRefinement(rtol=1e-12))
        np.testing.assert_allclose(solution.value, jnp.linalg.solve(operator.as_matrix(), b), rtol=1e-10)


def test_zero_tolerances_with_a_step_cap_report_max_steps_unlike_lineax(x64):
    # 20.5: the documented difference from lineax.CG.
    matrix = _spd(8, jnp.float64)
    b = jnp.arange(1.0, 9.0)
    ours = lx.linear_solve(_psd(matrix), b, ConjugateGradient(rtol=0.0, atol=0.0, max_steps=2), throw=False)
    theirs = lx.linear_solve(_psd(matrix), b, lx.CG(rtol=0.0, atol=0.0, max_steps=2), throw=False)
    assert ours.result == lx.RESULTS.max_steps_reached and int(ours.stats["num_steps"]) == 2
    assert theirs.result == lx.RESULTS.successful
    doc = " ".join(ConjugateGradient.__doc__.split())
    assert "``rtol = atol = 0`` means \"to working precision\", not \"no test\"" in doc
    assert "`lineax.RESULTS.max_steps_reached` if ``k`` steps come first" in doc
    assert "max_steps_reached" in " ".join(MixedPrecisionRefinement.__doc__.split())
