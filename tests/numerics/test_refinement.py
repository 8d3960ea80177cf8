"""Float-float iterative refinement: the error-free transforms are exact (under jit, so a fused
multiply-add or a simplification by XLA would show), the residual matches a float64 one, and the
refined float32 solve is the correctly rounded solution of a float64 dense solve."""

import functools as ft

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from jaxpde.grids import Grid
from jaxpde.numerics.krylov import ConjugateGradient
from jaxpde.numerics.refinement import FloatFloat, diffusion_residual, refine, two_product, two_sum
from jaxpde.numerics.stencils import DiffusionOperator


def _wide_float32(rng, size):
    # random signs and mantissas over 2^±28: cancellation, equal exponents and large ratios
    return (rng.standard_normal(size) * np.exp2(rng.integers(-28, 28, size))).astype(np.float32)


def test_two_sum_and_two_product_are_error_free_under_jit(x64):
    rng = np.random.default_rng(0)
    a, b = _wide_float32(rng, 20000), _wide_float32(rng, 20000)
    b[:100] = -a[:100]  # exact cancellation
    b[100:200] = np.nextafter(-a[100:200], np.float32(0))  # near cancellation
    exact_sum = a.astype(np.float64) + b.astype(np.float64)
    exact_product = a.astype(np.float64) * b.astype(np.float64)  # 48 bits: exact in float64
    s, e = jax.jit(two_sum)(jnp.asarray(a), jnp.asarray(b))
    p, f = jax.jit(two_product)(jnp.asarray(a), jnp.asarray(b))
    assert s.dtype == p.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(s, np.float64) + np.asarray(e, np.float64), exact_sum)
    np.testing.assert_array_equal(np.asarray(p, np.float64) + np.asarray(f, np.float64), exact_product)
    np.testing.assert_array_equal(np.asarray(p), a * b)  # the rounded product is float32's own
    # A float32 product alone is not exact, so the test can tell.
    assert np.any(np.asarray(p, np.float64) != exact_product)


def _float64_copy(operator):
    return eqx.tree_at(lambda o: o.weights, operator, tuple(w.astype(jnp.float64) for w in operator.weights))


@pytest.mark.parametrize("boundary, shift", [("dirichlet", 0.0), ("periodic", 0.5)])
def test_diffusion_residual_is_the_float64_residual(x64, boundary, shift):
    rng = np.random.default_rng(1)
    shape = (13, 9)
    coefficient = jnp.asarray(rng.choice([3.0, 12.0], size=shape), jnp.float32)
    operator = DiffusionOperator(Grid(shape, boundary=boundary), coefficient, shift=shift)
    hi = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    lo = (hi * 1e-8 * jnp.asarray(rng.standard_normal(shape), jnp.float32)).astype(jnp.float32)
    b = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    got = jax.jit(diffusion_residual)(operator, b, FloatFloat(hi, lo))
    x = hi.astype(jnp.float64) + lo.astype(jnp.float64)
    # The same float32 face weights applied by the operator's own mv in float64.
    expected = b.astype(jnp.float64) - _float64_copy(operator).mv(x)
    scale = float(jnp.max(jnp.abs(_float64_copy(DiffusionOperator(operator.grid, coefficient)).mv(jnp.abs(x)))))
    error = np.max(np.abs(np.asarray(got.hi, np.float64) + np.asarray(got.lo, np.float64) - np.asarray(expected)))
    assert error < 1e-13 * scale
    float32_error = np.max(np.abs(np.asarray(b - operator.mv(hi), np.float64) - np.asarray(expected)))
    assert float32_error > 1e-9 * scale  # a float32 residual is not that accurate


def test_refinement_gives_the_correctly_rounded_solution(x64):
    rng = np.random.default_rng(2)
    grid = Grid((16, 16), boundary="dirichlet")
    coefficient = jnp.asarray(rng.choice([3.0, 12.0], size=grid.shape), jnp.float32)
    operator = DiffusionOperator(grid, coefficient)
    b = jnp.ones(grid.shape, jnp.float32)
    dense = np.asarray(_float64_copy(operator).as_matrix())
    exact = np.linalg.solve(dense, np.ones(grid.size)).reshape(grid.shape)

    @jax.jit
    def solves(operator, b):
        # float32 CG to rtol 1e-2: each correction gains about two digits
        solve = lambda r: lx.linear_solve(operator, r, ConjugateGradient(rtol=1e-2)).value  # noqa: E731
        x0 = solve(b)
        residual = ft.partial(diffusion_residual, operator)
        return x0, refine(residual, solve, b, 4, x0=x0), refine(residual, solve, b, 0, x0=x0)

    x0, refined, unrefined = solves(operator, b)
    relative = lambda u: np.linalg.norm(np.asarray(u, np.float64) - exact) / np.linalg.norm(exact)  # noqa: E731
    assert relative(x0) > 1e-4  # one solve to rtol 1e-2: far from the solution
    assert refined.hi.dtype == jnp.float32
    # float32 storage: about 2^-24 per entry; the pair itself is far more accurate.
    assert relative(refined.value) < 1e-7
    assert relative(np.asarray(refined.hi, np.float64) + np.asarray(refined.lo, np.float64)) < 1e-9
    np.testing.assert_array_equal(unrefined.value, x0)


def test_bad_arguments_are_rejected():
    operator = DiffusionOperator(Grid((4, 4), boundary="dirichlet"), 1.0)
    with pytest.raises(ValueError, match="`steps` must be a non-negative int"):
        refine(ft.partial(diffusion_residual, operator), lambda r: r, jnp.ones((4, 4)), -1)
    with pytest.raises(ValueError, match=r"`b` must be float32 of shape \(4, 4\)"):
        diffusion_residual(operator, jnp.ones((3, 4)), FloatFloat.of(jnp.ones((4, 4))))
    with pytest.raises(TypeError, match="must both be float32"):
        two_product(jnp.ones(2, jnp.float16), jnp.ones(2, jnp.float16))
