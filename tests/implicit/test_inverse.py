"""Inverse problems: observation operators, regularisers, the misfit's gradient through the solve
(finite differences), and the minimisers against known optima — the Tikhonov filter of the
backward heat equation in closed form, a boundary control manufactured to be reachable."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde import Grid
from jaxpde.implicit._inverse import DarcyForward, DirichletControlPoisson, HeatForward, InverseProblem, minimise_inverse
from jaxpde.implicit._observations import NodeObservation, PointObservation, add_noise
from jaxpde.implicit._regularisers import DenoiserPrior, Tikhonov, TotalVariation
from jaxpde.pdes import Heat


def test_point_observation_interpolates_bilinear_fields_exactly_and_refuses_points_outside(x64):
    grid = Grid((5, 4), boundary="dirichlet")  # interior nodes at i/6, j/5
    x, y = grid.coordinates().astype(jnp.float64)
    u = 1 + 2 * x + 3 * y + 4 * x * y
    points = np.array([[0.2, 0.3], [0.5, 0.5], [0.7, 0.21], [1 / 6, 0.8]])  # inside the hull of the nodes
    expected = 1 + 2 * points[:, 0] + 3 * points[:, 1] + 4 * points[:, 0] * points[:, 1]
    np.testing.assert_allclose(PointObservation(grid, points)(u), expected, rtol=1e-12)
    # On the wall the Dirichlet field is zero; between the wall and the first node it is linear.
    wall = PointObservation(grid, [[0.0, 0.4], [1 / 12, 0.4]])(u)
    np.testing.assert_allclose(wall, [0.0, 0.5 * (1 + 2 / 6 + 1.2 + 4 * 0.4 / 6)], rtol=1e-12)
    with pytest.raises(ValueError, match="`points` must lie inside the domain"):
        PointObservation(grid, [[0.5, 0.5], [1.2, 0.5]])
    with pytest.raises(ValueError, match=r"`points` must have shape \(m, 2\)"):
        PointObservation(grid, [0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="grid's shape"):
        PointObservation(grid, points)(jnp.ones((4, 4)))


def test_node_observation_and_noise():
    grid = Grid((4, 3), boundary="dirichlet")
    u = jnp.arange(12.0).reshape(4, 3)
    obs = NodeObservation(grid, [[0, 0], [3, 2], [1, 2]])
    np.testing.assert_array_equal(obs(u), [0.0, 11.0, 5.0])
    with pytest.raises(ValueError, match="`indices` must lie inside"):
        NodeObservation(grid, [[4, 0]])
    y, sigma = add_noise(jax.random.key(0), jnp.full(4000, 2.0), 0.05)
    assert float(sigma) == pytest.approx(0.1)
    assert float(jnp.std(y)) == pytest.approx(0.1, rel=0.05)
    with pytest.raises(ValueError, match="`level`"):
        add_noise(jax.random.key(0), y, -0.1)


def test_regularisers_against_hand_computed_values(x64):
    theta = jnp.array([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]])
    h = (0.5, 0.25)
    grad_sq = ((2 / 0.5) ** 2 + (1 / 0.5) ** 2 + (1 / 0.5) ** 2) + ((1 / 0.25) ** 2 + (2 / 0.25) ** 2 + 0 + 0)
    assert float(Tikhonov(3.0, h, order=1)(theta)) == pytest.approx(0.5 * 3.0 * 0.125 * grad_sq)
    assert float(Tikhonov(2.0, h, order=0, reference=1.0)(theta)) == pytest.approx(0.125 * float(jnp.sum((theta - 1) ** 2)))
    # TV of a unit step across a unit-length interface is 1 (its jump times its length), as ε → 0.
    n = 64
    step = jnp.where(jnp.arange(n)[:, None] >= n // 2, 1.0, 0.0) * jnp.ones((1, n))
    tv = TotalVariation(1.0, (1 / n, 1 / n), epsilon=1e-6)(step)
    assert float(tv) == pytest.approx((n - 1) / n, rel=1e-4)
    for make in (lambda: Tikhonov(-1e-3), lambda: TotalVariation(-1.0), lambda: Tikhonov(float("nan"))):
        with pytest.raises(ValueError, match="`weight` must be a non-negative"):
            make()


def test_denoiser_prior_gradient_is_the_gaussian_precision_at_low_noise(x64):
    from jaxpde.samplers import GaussianMixture, VPLinear

    mean = jnp.array([0.5, -1.0, 2.0])
    cov = jnp.array([0.5, 2.0, 1.0])
    denoiser = GaussianMixture(jnp.ones(1), mean[None], cov[None]).denoiser(VPLinear(), "eps")
    prior = DenoiserPrior(denoiser, t=1e-3, weight=2.0)
    theta = jnp.array([1.0, 0.0, -1.0])
    np.testing.assert_allclose(jax.grad(prior)(theta), 2.0 * (theta - mean) / cov, rtol=1e-2)
    with pytest.raises(ValueError, match="`weight`"):
        DenoiserPrior(denoiser, weight=-1.0)


def _darcy_problem(n=5, regulariser=None, seed=0):
    grid = Grid((n, n), boundary="dirichlet")
    x, y = jnp.meshgrid(*(a.astype(jnp.float64) for a in grid.axes()), indexing="ij")
    truth = 0.5 * jnp.sin(2 * jnp.pi * x) * jnp.cos(jnp.pi * y)
    forward = DarcyForward(grid, rtol=1e-13)
    points = jax.random.uniform(jax.random.key(seed), (8, 2), jnp.float64, 0.1, 0.9)
    obs = PointObservation(grid, points)
    return InverseProblem(forward, obs, obs(forward(truth)), 1e-3, regulariser), truth, grid


@pytest.mark.slow  # the CG solve and its adjoint compile, ~8 s single-core
def test_darcy_misfit_gradient_through_the_solve_matches_central_differences(x64):
    problem, truth, grid = _darcy_problem(regulariser=Tikhonov(1e-3, (1 / 6, 1 / 6)))
    theta = 0.3 * jax.random.normal(jax.random.key(3), grid.shape, jnp.float64)
    direction = jax.random.normal(jax.random.key(4), grid.shape, jnp.float64)
    grad = jax.grad(problem.objective)(theta)
    eps = 1e-5
    fd = (problem.objective(theta + eps * direction) - problem.objective(theta - eps * direction)) / (2 * eps)
    assert float(jnp.vdot(grad, direction)) == pytest.approx(float(fd), rel=1e-6)


@pytest.mark.slow  # two optimiser compiles through the Darcy solve, ~10 s single-core
def test_lbfgs_and_gauss_newton_reach_the_same_regularised_minimum(x64):
    problem, truth, grid = _darcy_problem(regulariser=Tikhonov(1e-2, (1 / 6, 1 / 6)))
    theta0 = jnp.zeros(grid.shape)
    lbfgs = minimise_inverse(problem, theta0, "lbfgs", rtol=1e-10, atol=1e-12, max_steps=400)
    gn = minimise_inverse(problem, theta0, "gauss_newton", rtol=1e-10, atol=1e-12, max_steps=50, record=True)
    assert float(gn.objective) < 0.05 * float(problem.objective(theta0))
    np.testing.assert_allclose(lbfgs.value, gn.value, atol=1e-5)
    assert float(jnp.max(jnp.abs(jax.grad(problem.objective)(gn.value)))) < 1e-6
    history = np.asarray(gn.history["objective"])
    assert history.shape == (51,) and history[0] == pytest.approx(float(problem.objective(theta0)))
    assert history[-1] == pytest.approx(float(gn.objective)) and int(gn.num_steps) < 50


def test_bad_input_names_the_argument(x64):
    problem, truth, grid = _darcy_problem()
    with pytest.raises(ValueError, match="`data` has shape"):
        minimise_inverse(InverseProblem(problem.forward, problem.observation, jnp.zeros(3), 0.1), jnp.zeros(grid.shape))
    with pytest.raises(ValueError, match="`noise_std` must be positive"):
        InverseProblem(problem.forward, problem.observation, problem.data, 0.0)
    with pytest.raises(ValueError, match="`method`"):
        minimise_inverse(problem, jnp.zeros(grid.shape), "newton")
    with pytest.raises(NotImplementedError, match="Gauss–Newton"):
        minimise_inverse(InverseProblem(problem.forward, problem.observation, problem.data, 0.1, TotalVariation(1.0)),
                         jnp.zeros(grid.shape), "gauss_newton")


@pytest.mark.slow  # a Gauss–Newton compile through the Poisson solve, ~9 s single-core
def test_boundary_control_recovers_the_manufactured_optimum(x64):
    grid = Grid((6, 5), boundary="dirichlet")
    forward = DirichletControlPoisson(grid, source=1.0, rtol=1e-13)
    g_true = jnp.cos(jnp.arange(forward.control_size, dtype=jnp.float64))
    target = forward(g_true)
    problem = InverseProblem(forward, NodeObservation(grid, np.argwhere(np.ones(grid.shape))), target.reshape(-1), 1.0)
    solution = minimise_inverse(problem, jnp.zeros(forward.control_size), "gauss_newton", rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(solution.value, g_true, atol=1e-8)
    # The lift is the discrete boundary condition: u = x₁(x₀ − h₀)(x₀ − 1 + h₀) solves −Δ_h u = −2x₁
    # exactly (the 5-point stencil is exact on cubics) and vanishes at the end nodes held at 0.
    x0, x1 = np.asarray(grid.coordinates(), dtype=np.float64)
    h0 = grid.spacing[0]
    exact = x1 * (x0 - h0) * (x0 - 1 + h0)
    side = x1[0] * h0 * (1 - h0)
    g = jnp.concatenate([side, side, jnp.zeros(4), (x0[1:-1, 0] - h0) * (x0[1:-1, 0] - 1 + h0)])
    np.testing.assert_allclose(DirichletControlPoisson(grid, -2 * x1, rtol=1e-13)(g), exact, atol=1e-10)


def test_backward_heat_lbfgs_matches_the_closed_form_tikhonov_filter(x64):
    n, kappa, t1, lam, sigma = 16, 0.01, 0.5, 100.0, 0.01
    grid = Grid(n, lengths=1.0)
    (x,) = grid.axes()
    x = x.astype(jnp.float64)
    forward = HeatForward(Heat(grid, kappa), t1, 0.1, lean=True)
    y = forward(jnp.sin(2 * jnp.pi * x) + 0.5 * jnp.cos(6 * jnp.pi * x)) + sigma * jax.random.normal(jax.random.key(0), (n,), jnp.float64)
    problem = InverseProblem(forward, NodeObservation(grid, np.arange(n)), y, sigma, Tikhonov(lam, grid.spacing, order=0))
    solution = minimise_inverse(problem, jnp.zeros(n), rtol=1e-13, atol=1e-14, max_steps=500)
    # min ½|(e^{-κk²T} û − ŷ)/σ|² + (λh/2)|û|²  ⇒  û = e ŷ / (e² + λhσ²), mode by mode.
    k = 2 * np.pi * np.fft.rfftfreq(n, d=1 / n)
    e = np.exp(-kappa * k**2 * t1)
    closed = np.fft.irfft(e * np.fft.rfft(np.asarray(y)) / (e**2 + lam * grid.spacing[0] * sigma**2), n=n)
    np.testing.assert_allclose(solution.value, closed, atol=1e-6)
