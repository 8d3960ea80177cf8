"""ETDRK solvers: coefficients, convergence orders, the diffrax integration, gradients, errors."""

import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest

from jaxpde import Grid
from jaxpde.numerics import etdrk
from jaxpde.numerics.etdrk import ETDRK1, ETDRK2, ETDRK3, ETDRK4, SemiLinearTerm, phi_functions
from jaxpde.pdes import Advection, Burgers, Heat, KdV


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _phi_direct(z):
    phi1 = np.expm1(z) / z
    phi2 = (phi1 - 1) / z
    phi3 = (phi2 - 0.5) / z
    return phi1, phi2, phi3


def test_phi_functions_match_closed_forms(x64):
    # Far from 0 the closed forms are accurate; the contour mean must reproduce them, complex
    # values included (a dispersive symbol i*k^3*dt is far out on the imaginary axis).
    z = np.array([-40.0, -3.0 + 0.5j, 2.5j, -7.0 - 30.0j, 1.5, 60j])
    for computed, expected in zip(phi_functions(jnp.asarray(z)), _phi_direct(z)):
        np.testing.assert_allclose(np.asarray(computed), expected, rtol=1e-12)
    # The imaginary parts are genuinely there: dropping them (as a real-only implementation
    # does) would be wrong by O(1).
    phi1 = np.asarray(phi_functions(jnp.asarray(2.5j), 1)[0])
    assert abs(phi1.imag) > 0.3


def test_phi_functions_near_zero_avoid_cancellation(x64):
    z = jnp.asarray([0.0, 1e-9, -1e-5, 1.0, -1.0, 1e-7j])
    phi1, phi2, phi3 = (np.asarray(p) for p in phi_functions(z))
    zn = np.asarray(z)
    # Taylor series: phi_k(z) = sum_j z^j / (j + k)!
    taylor = [sum(zn**j / math.factorial(j + k) for j in range(25)) for k in (1, 2, 3)]
    for computed, expected in zip((phi1, phi2, phi3), taylor):
        np.testing.assert_allclose(computed, expected, rtol=1e-13, atol=1e-15)
    assert np.isrealobj(np.asarray(phi_functions(jnp.asarray([0.0, -2.0]))[0]))


def _burgers_problem(n=256):
    pde = Burgers(Grid(n, lengths=2 * np.pi), viscosity=0.1)
    u0 = pde.exact_solution_on_grid(0.0, amplitude=0.9)
    u1 = pde.exact_solution_on_grid(1.0, amplitude=0.9)
    return pde, u0, u1


@pytest.mark.parametrize(
    "solver, order, lo, hi", [(ETDRK1(), 1, 0.9, 1.1), (ETDRK2(), 2, 1.85, 2.15), (ETDRK3(), 3, 2.8, 3.2), (ETDRK4(), 4, 3.7, 4.3)]
)
def test_convergence_order_against_cole_hopf(x64, solver, order, lo, hi):
    pde, u0, u1 = _burgers_problem()
    term = pde.semilinear_term()

    @jax.jit
    def final(dt0):
        sol = diffrax.diffeqsolve(term, solver, 0.0, 1.0, dt0, u0, max_steps=64)
        return sol.ys[-1]

    steps = np.array([8, 16, 32, 64])
    errors = np.array([_rel(final(1.0 / n), u1) for n in steps])
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert solver.order(term) == order
    assert lo <= slope <= hi, (errors, slope)


def test_solve_hits_final_time_without_a_sliver_step(x64):
    pde = Advection(Grid(32), velocity=0.7)
    u0 = pde.exact_solution_on_grid(0.0)
    # 1.0 / 0.3 is not an integer: 3 equal steps of 1/3, never a fourth tiny one.
    sol = etdrk.solve(pde, u0, 1.0, 0.3, ETDRK2(), saveat=diffrax.SaveAt(steps=True))
    assert int(sol.stats["num_steps"]) == 3
    np.testing.assert_allclose(np.asarray(sol.ts), [1 / 3, 2 / 3, 1.0], rtol=1e-14)
    np.testing.assert_allclose(sol.ys[-1], pde.exact_solution_on_grid(1.0), atol=1e-12)


def test_variable_steps_recompute_coefficients(x64):
    # Advection is linear, so every ETDRK step is exact -- but only if each step uses the
    # weights of its own size. A stale cache would shift the profile by the wrong distance.
    pde = Advection(Grid(64, lengths=2.0), velocity=1.3)
    u0 = jnp.exp(jnp.sin(jnp.pi * pde.grid.axes()[0]))
    ts = jnp.asarray([0.0, 0.1, 0.35, 0.4, 0.9, 1.0, 1.6])
    sol = diffrax.diffeqsolve(
        pde.semilinear_term(), ETDRK4(), ts[0], ts[-1], None, u0,
        stepsize_controller=diffrax.StepTo(ts=ts), saveat=diffrax.SaveAt(ts=ts[1:]),
    )
    for t, y in zip(ts[1:], sol.ys):
        np.testing.assert_allclose(y, pde.evolve_exact(u0, t), atol=1e-12)


@pytest.mark.slow
def test_adaptive_steps_via_half_solver(x64):
    pde, u0, u1 = _burgers_problem(128)
    sol = diffrax.diffeqsolve(
        pde.semilinear_term(), diffrax.HalfSolver(ETDRK4()), 0.0, 1.0, 0.1, u0,
        stepsize_controller=diffrax.PIDController(rtol=1e-9, atol=1e-11),
    )
    assert _rel(sol.ys[-1], u1) < 1e-7
    assert 2 < int(sol.stats["num_accepted_steps"]) < 500  # it adapted, from the 0.1 first guess


@pytest.mark.slow
def test_reverse_time_integration(x64):
    # KdV is time-reversible: integrate a soliton forward, then backward with dt0 < 0.
    pde = KdV(Grid(128, lengths=40.0, origin=-20.0))
    u0 = pde.exact_solution_on_grid(0.0, speed=2.0)
    forward = etdrk.solve(pde, u0, 0.5, 0.01).ys[-1]
    back = diffrax.diffeqsolve(pde.semilinear_term(), ETDRK4(), 0.5, 0.0, -0.01, forward).ys[-1]
    np.testing.assert_allclose(back, u0, atol=1e-6)  # two O(dt^4) solves; a wrong direction is O(1)
    assert _rel(forward, pde.exact_solution_on_grid(0.5, speed=2.0)) < 1e-4


def test_rollout_equals_diffrax_solve_and_saves_snapshots(x64):
    pde, u0, _ = _burgers_problem(64)
    via_diffrax = etdrk.solve(pde, u0, 0.4, 0.05, ETDRK3(), saveat=diffrax.SaveAt(steps=True)).ys
    snapshots = etdrk.rollout(pde, u0, 0.05, 8, ETDRK3(), save_every=2)
    assert snapshots.shape == (4, 64)
    np.testing.assert_allclose(snapshots, via_diffrax[1::2], atol=1e-13)
    np.testing.assert_allclose(etdrk.rollout(pde, u0, 0.05, 8, ETDRK3()), via_diffrax[-1], atol=1e-13)


def test_vmap_over_initial_conditions_and_float32_stays_float32():
    pde = Burgers(Grid(64), viscosity=0.05)
    x = pde.grid.axes()[0]
    u0 = jnp.stack([jnp.sin(2 * jnp.pi * x), 0.5 * jnp.cos(4 * jnp.pi * x)])
    batched = jax.vmap(lambda u: etdrk.solve(pde, u, 0.2, 0.01, ETDRK2()).ys[-1])(u0)
    assert batched.dtype == jnp.float32
    for i in range(2):
        single = etdrk.solve(pde, u0[i], 0.2, 0.01, ETDRK2()).ys[-1]
        np.testing.assert_allclose(batched[i], single, atol=1e-6)


def test_method_of_lines_tsit5(x64):
    pde, u0, u1 = _burgers_problem(128)
    controller = diffrax.PIDController(rtol=1e-10, atol=1e-12)
    tsit = diffrax.diffeqsolve(pde.ode_term(), diffrax.Tsit5(), 0.0, 1.0, 0.01, u0, stepsize_controller=controller)
    assert _rel(tsit.ys[-1], u1) < 1e-8


@pytest.mark.slow
def test_method_of_lines_imex_kencarp(x64):
    pde, u0, u1 = _burgers_problem(128)
    # A fixed step with an implicit solver needs the Newton tolerances spelled out (diffrax's
    # rule). The implicit part is linear: Newton converges in one iteration, whereas diffrax's
    # default VeryChord misreads the round-off-level second increment as divergence.
    kencarp = diffrax.KenCarp4(root_finder=optx.Newton(rtol=1e-8, atol=1e-10))
    imex = etdrk.solve(pde, u0, 1.0, 0.01, kencarp)
    assert _rel(imex.ys[-1], u1) < 1e-6


def test_gradients_match_central_differences(x64):
    grid = Grid(32, lengths=2 * np.pi)
    x = grid.axes()[0]
    u0 = 0.3 * jnp.sin(x) + 0.1 * jnp.cos(2 * x)
    weight = jnp.cos(x) + 0.5 * jnp.sin(3 * x)
    direction = jnp.sin(2 * x) - 0.2 * jnp.cos(x)

    @jax.jit
    def loss(u_init, nu):
        final = etdrk.solve(Burgers(grid, nu), u_init, 0.5, 0.05, ETDRK4()).ys[-1]
        return jnp.sum(weight * final**2)

    g_u, g_nu = jax.grad(loss, argnums=(0, 1))(u0, 0.1)
    eps = 1e-6
    fd_u = (loss(u0 + eps * direction, 0.1) - loss(u0 - eps * direction, 0.1)) / (2 * eps)
    fd_nu = (loss(u0, 0.1 + eps) - loss(u0, 0.1 - eps)) / (2 * eps)
    np.testing.assert_allclose(jnp.vdot(g_u, direction), fd_u, rtol=1e-7)
    np.testing.assert_allclose(g_nu, fd_nu, rtol=1e-7)
    # The lean scan path differentiates too.
    g_roll = jax.jit(jax.grad(lambda u: jnp.sum(weight * etdrk.rollout(Burgers(grid, 0.1), u, 0.05, 10) ** 2)))(u0)
    np.testing.assert_allclose(g_roll, g_u, rtol=1e-10, atol=1e-12)


def test_bad_inputs_raise_clear_errors():
    pde = Burgers(Grid(32), viscosity=0.1)
    u0 = jnp.zeros(32)
    with pytest.raises(ValueError, match=r"`dt` must be positive and finite, got -0.1"):
        etdrk.solve(pde, u0, 1.0, -0.1)
    with pytest.raises(ValueError, match=r"`dt` must be positive"):
        etdrk.solve(pde, u0, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"`dt` must be positive"):
        etdrk.rollout(pde, u0, float("nan"), 3)
    with pytest.raises(ValueError, match=r"`t1 - t0` must be positive"):
        etdrk.solve(pde, u0, 0.0, 0.1)
    with pytest.raises(ValueError, match=r"`u0` has shape \(33,\), expected \(32,\)"):
        etdrk.solve(pde, jnp.zeros(33), 1.0, 0.1)
    with pytest.raises(ValueError, match=r"`u0` has shape \(2, 32\)"):
        etdrk.rollout(pde, jnp.zeros((2, 32)), 0.1, 3)
    with pytest.raises(ValueError, match="num_steps"):
        etdrk.rollout(pde, u0, 0.1, 0)
    with pytest.raises(ValueError, match="save_every"):
        etdrk.rollout(pde, u0, 0.1, 10, save_every=3)
    with pytest.raises(TypeError, match="concrete Python number"):
        jax.jit(lambda dt: etdrk.solve(pde, u0, 1.0, dt).ys)(0.1)
    with pytest.raises(ValueError, match="periodic grid"):
        SemiLinearTerm(jnp.zeros(17), lambda t, u, a: u, Grid(32, boundary="dirichlet"))
    with pytest.raises(ValueError, match=r"rfft shape \(17,\)"):
        SemiLinearTerm(jnp.zeros(32), lambda t, u, a: u, Grid(32))
    with pytest.raises(ValueError, match="periodic grid"):
        Heat(Grid(8, boundary="dirichlet")).semilinear_term()
    with pytest.raises(ValueError, match="max_order"):
        phi_functions(jnp.zeros(3), 4)


def test_non_finite_initial_state_is_refused_eagerly_and_under_jit():
    # Used to integrate silently into an all-NaN solution.
    pde = Burgers(Grid(32), viscosity=0.1)
    smooth = jnp.sin(2 * jnp.pi * jnp.arange(32) / 32)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"solve: `u0` must be finite everywhere.*1 of 32 values"):
            etdrk.solve(pde, smooth.at[5].set(bad), 0.1, 0.01)
        with pytest.raises(ValueError, match=r"rollout: `u0` must be finite everywhere"):
            etdrk.rollout(pde, smooth.at[5].set(bad), 0.01, 3)
    # Under jit the same check is an equinox runtime error.
    u0 = smooth.at[5].set(jnp.nan)
    solve = jax.jit(lambda u: etdrk.solve(pde, u, 0.05, 0.01).ys[-1])
    rollout = jax.jit(lambda u: etdrk.rollout(pde, u, 0.01, 5))
    with pytest.raises(Exception, match=r"solve: `u0` must be finite everywhere"):
        jax.block_until_ready(solve(u0))
    with pytest.raises(Exception, match=r"rollout: `u0` must be finite everywhere"):
        jax.block_until_ready(rollout(u0))
    # The same compiled programs run a finite state as before (vmap and grad: tests above).
    np.testing.assert_allclose(solve(smooth), rollout(smooth), atol=1e-5)


def test_time_integration_is_one_module_reexported_by_etdrk():
    from jaxpde.numerics import time_integration

    assert etdrk.solve is time_integration.solve and etdrk.rollout is time_integration.rollout
    pde = Burgers(Grid(32), viscosity=0.1)
    u0 = jnp.sin(2 * jnp.pi * jnp.arange(32) / 32)
    frames = time_integration.trajectory(pde, u0, 0.01, 2, 3, ETDRK4(), burn_in_steps=4)
    # Frame k is the state after 4 + 2k steps: diffrax's solve saving on the same step grid.
    ts = jnp.asarray([0.04, 0.06, 0.08, 0.10])
    expected = etdrk.solve(pde, u0, 0.1, 0.01, saveat=diffrax.SaveAt(ts=ts)).ys
    np.testing.assert_allclose(frames, expected, atol=1e-5)
    with pytest.raises(ValueError, match="burn_in_steps"):
        time_integration.trajectory(pde, u0, 0.01, 2, 3, ETDRK4(), burn_in_steps=-1)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        etdrk.nope


def test_compat_layer_names_the_private_diffrax_class_if_it_disappears(monkeypatch):
    import importlib

    import diffrax._term

    from jaxpde.numerics import _compat

    monkeypatch.delattr(diffrax._term, "WrapTerm")
    with pytest.raises(ImportError, match=r"diffrax\._term\.WrapTerm.*pyproject\.toml"):
        importlib.reload(_compat)
    monkeypatch.undo()
    importlib.reload(_compat)
    term = diffrax.ODETerm(lambda t, y, args: y)
    wrapped = diffrax._term.WrapTerm(diffrax._term.WrapTerm(term, -1), -1)
    inner, direction = _compat.unwrap_term(wrapped)
    assert inner is term and direction == 1
    assert _compat.unwrap_term(diffrax._term.WrapTerm(term, -1))[1] == -1
