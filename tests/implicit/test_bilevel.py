"""Hypergradients through an inner minimisation (implicit function theorem, CG on Hessian-vector
products) against closed forms and central finite differences of the whole inner-solve pipeline."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from jaxpde import Grid
from jaxpde.implicit._bilevel import implicit_argmin, tune_weight
from jaxpde.implicit._inverse import HeatForward, InverseProblem
from jaxpde.implicit._observations import NodeObservation
from jaxpde.implicit._regularisers import Tikhonov
from jaxpde.pdes import Heat


def _quadratic(theta, p, a):
    # J = ½θᵀAθ − bᵀθ + ¼ e^s Σθ⁴: strictly convex, nonlinear in θ, with two outer parameters.
    s, b = p
    return 0.5 * theta @ a @ theta - b @ theta + 0.25 * jnp.exp(s) * jnp.sum(theta**4)


def test_hypergradient_matches_central_differences_of_the_inner_solve(x64):
    a = jnp.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.5]])
    target = jnp.array([0.3, -0.2, 0.5])

    @jax.jit
    def outer(p):
        theta = implicit_argmin(_quadratic, jnp.zeros(3), p, a)
        return jnp.sum((theta - target) ** 2)

    p = (jnp.array(0.2), jnp.array([1.0, -0.5, 2.0]))
    grad = jax.grad(outer)(p)
    eps = 1e-5
    fd_s = (outer((p[0] + eps, p[1])) - outer((p[0] - eps, p[1]))) / (2 * eps)
    assert float(grad[0]) == pytest.approx(float(fd_s), rel=1e-6)
    for i in range(3):
        e = jnp.zeros(3).at[i].set(eps)
        fd = (outer((p[0], p[1] + e)) - outer((p[0], p[1] - e))) / (2 * eps)
        assert float(grad[1][i]) == pytest.approx(float(fd), rel=1e-6)
    # At s → −∞ the problem is linear: dθ*/db = A⁻¹, so d/db |θ* − t|² = 2 A⁻¹(θ* − t).
    linear = (jnp.array(-60.0), p[1])
    theta = jnp.linalg.solve(a, p[1])
    np.testing.assert_allclose(jax.grad(outer)(linear)[1], 2 * jnp.linalg.solve(a, theta - target), rtol=1e-8)


def test_a_hessian_solve_that_does_not_converge_raises(x64):
    a = jnp.diag(jnp.array([1.0, 10.0, 100.0, 1000.0]))

    @jax.jit
    def outer(b):
        theta = implicit_argmin(_quadratic, jnp.zeros(4), (jnp.array(-60.0), b), a, linear_solver=lx.CG(rtol=1e-12, atol=1e-14, max_steps=1))
        return jnp.sum(theta**2)

    with pytest.raises(Exception, match="Hessian solve"):
        jax.block_until_ready(jax.grad(outer)(jnp.ones(4)))


def _heat(n=16, kappa=0.01, sigma=0.01):
    grid = Grid(n, lengths=1.0)
    (x,) = grid.axes()
    x = x.astype(jnp.float64)
    truth = jnp.sin(2 * jnp.pi * x) + 0.5 * jnp.cos(6 * jnp.pi * x)
    forward = HeatForward(Heat(grid, kappa), 0.5, 0.1, lean=True)
    clean = forward(truth)
    obs = NodeObservation(grid, np.arange(n))
    noisy = lambda k: clean + sigma * jax.random.normal(jax.random.key(k), (n,), jnp.float64)  # noqa: E731
    train = InverseProblem(forward, obs, noisy(0), sigma, Tikhonov(100.0, grid.spacing, order=0))
    return grid, truth, train, InverseProblem(forward, obs, noisy(1), sigma)


@pytest.mark.slow  # ~6 s single-core: inner L-BFGS solves through the heat equation
def test_hypergradient_in_the_weight_and_the_diffusivity_match_finite_differences(x64):
    grid, truth, train, validation = _heat()

    def inner(theta, p, problem):
        log_weight, kappa = p
        problem = eqx_replace_forward(problem.with_weight(jnp.exp(log_weight)), kappa)
        return problem.objective(theta)

    @jax.jit
    def outer(p):
        theta = implicit_argmin(inner, jnp.zeros(grid.shape), p, train)
        return validation.misfit(theta) + jnp.sum((theta - truth) ** 2)

    p = (jnp.log(100.0), jnp.array(0.012))
    grad = jax.grad(outer)(p)
    for i, eps in ((0, 1e-5), (1, 1e-7)):
        plus = tuple(v + eps if j == i else v for j, v in enumerate(p))
        minus = tuple(v - eps if j == i else v for j, v in enumerate(p))
        fd = (outer(plus) - outer(minus)) / (2 * eps)
        assert float(grad[i]) == pytest.approx(float(fd), rel=1e-6)


def eqx_replace_forward(problem, kappa):
    import equinox as eqx

    return eqx.tree_at(lambda p: p.forward.pde, problem, Heat(problem.forward.pde.grid, kappa))


@pytest.mark.slow  # ~10 s single-core: 12 outer steps
def test_tune_weight_lowers_the_validation_misfit_to_the_best_of_a_grid(x64):
    grid, truth, train, validation = _heat()
    result = tune_weight(train, validation, jnp.zeros(grid.shape), 1e4, steps=12, learning_rate=0.5)
    history = result.history
    assert history["validation_misfit"].min() < 0.8 * history["validation_misfit"][0]
    # The closed-form Tikhonov filter on a fine grid of λ: the tuned λ is within 5% of its best misfit.
    n = grid.shape[0]
    k = 2 * np.pi * np.fft.rfftfreq(n, d=1 / n)
    e = np.exp(-0.01 * k**2 * 0.5)

    def misfit(lam):
        theta = np.fft.irfft(e * np.fft.rfft(np.asarray(train.data)) / (e**2 + lam * grid.spacing[0] * 1e-4), n=n)
        return float(validation.misfit(jnp.asarray(theta)))

    best = min(misfit(lam) for lam in np.logspace(-1, 6, 300))
    assert misfit(result.weight) < 1.05 * best
    with pytest.raises(ValueError, match="`weight0`"):
        tune_weight(train, validation, jnp.zeros(grid.shape), 0.0)
