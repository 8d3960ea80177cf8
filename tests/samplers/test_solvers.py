"""Samplers as diffrax solvers, on the exact score of the 8-Gaussian benchmark mixture (float64).

Ground truth: a Dopri8 solve of the same probability-flow ODE at rtol = atol = 1e-10. Each
sampler's error against it on grids of N and 2N steps gives its empirical order, which must
match its theory within 0.3; the model counts its own calls (a host callback), which must
equal the NFE the sampler claims.
"""

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.samplers import Denoiser, VPLinear, eight_gaussians
from jaxpde.samplers._ddim import DDIM
from jaxpde.samplers._deis import DEIS, deis_coefficients
from jaxpde.samplers._dpm_solver import DPMSolver1, DPMSolver2, DPMSolver3, DPMSolverPP2M, DPMSolverPP3M
from jaxpde.samplers._edm import EDMHeun
from jaxpde.samplers._grids import TimeQuadratic, UniformLogSNR, UniformTime
from jaxpde.samplers._learned_schedule import mean_l2_error
from jaxpde.samplers._sample import evaluations, sample, solve
from jaxpde.samplers._solvers import DiffusionTerm, phi
from jaxpde.samplers._unipc import UniPC

T_START, T_END = 1.0, 1e-3
_CACHE = {}


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1


def problem():
    """(schedule, mixture, starting points, Dopri8 reference), built once per session."""
    if "problem" not in _CACHE:
        schedule, mixture = VPLinear(), eight_gaussians(dtype=jnp.float64)
        x = jax.random.normal(jax.random.key(0), (16, 2), jnp.float64)
        term = DiffusionTerm(mixture.denoiser(schedule, "eps"), event_shape=(2,))
        reference = diffrax.diffeqsolve(
            term, diffrax.Dopri8(), T_START, T_END, -1e-2, x,
            stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-10), max_steps=100_000,
        ).ys[-1]
        _CACHE["problem"] = schedule, mixture, x, reference
    return _CACHE["problem"]


def counting_denoiser(schedule, mixture, counter, parameterisation="eps"):
    def model(x, t):
        # One callback per model call; the state is one "sample" of shape (n, 2), so one call is one NFE.
        jax.debug.callback(counter)
        return mixture.prediction(x, t, schedule, parameterisation)

    return Denoiser(model, schedule, parameterisation)


def errors_and_counts(solver, steps, grid=UniformLogSNR(), parameterisation="eps"):
    """Errors against the reference at each step count; asserts NFE = model calls = the solver's claim."""
    schedule, mixture, x, reference = problem()
    errors = []
    for n in steps:
        counter = Counter()
        denoiser = counting_denoiser(schedule, mixture, counter, parameterisation)
        # The batch is one sample for the model (event_shape = its shape): one call per NFE.
        result = sample(denoiser, x[None], solver=solver, grid=grid, num_steps=n, t_start=T_START, t_end=T_END)
        jax.block_until_ready(result.ys)
        assert result.nfe == counter.calls == evaluations(solver, n), (type(solver).__name__, n)
        errors.append(float(mean_l2_error(result.ys[0], reference)))
    return errors


def fitted_order(steps, errors):
    return -np.polyfit(np.log(steps), np.log(errors), 1)[0]


# (solver, theoretical order, steps in the asymptotic regime)
FAST = [
    (DPMSolverPP2M(), 2, (40, 80)),
]
# DEIS interpolates ε in *time*; ε varies on the scale of t itself near t_end = 1e-3, so its
# asymptotic regime starts where the steps there are small in t: on the time-quadratic grid
# (80 -> 160 steps: 1.89 and 2.79 measured), not the log-SNR one (DEIS-2 1.64 at 40 -> 80).
# Both in the slow suite (default budget); the default one checks DEIS's coefficients and a
# DEIS(2) solve with a lowered last step exactly.
DEIS_SLOW = [(DEIS(3), 3, (80, 160)), (DEIS(2), 2, (80, 160))]
SLOW = [
    (DDIM(), 1, (40, 80)),  # default-suite budget: DDIM = DPM-Solver-1 is also checked exactly below
    (UniPC(predictor_order=2), 3, (160, 320)),
    (DPMSolverPP3M(), 3, (80, 160)),
    (DPMSolver3(), 3, (80, 160)),
    (DPMSolver1(), 1, (40, 80)),
    (DPMSolver2(), 2, (40, 80)),
    (UniPC(predictor_order=1), 2, (40, 80)),
    (UniPC(predictor_order=2, variant="bh1"), 3, (80, 160)),
    (UniPC(predictor_order=3), 4, (80, 160)),
    (EDMHeun(), 2, (40, 80)),
]


def _check_order(solver, order, steps):
    errors = errors_and_counts(solver, steps)
    measured = fitted_order(steps, errors)
    assert abs(measured - order) <= 0.3, (type(solver).__name__, errors, measured)


@pytest.mark.parametrize("solver, order, steps", FAST, ids=lambda v: type(v).__name__ if not isinstance(v, (int, tuple)) else "")
def test_empirical_order_and_nfe(x64, solver, order, steps):
    _check_order(solver, order, steps)


@pytest.mark.slow
@pytest.mark.parametrize("solver, order, steps", SLOW, ids=lambda v: type(v).__name__ if not isinstance(v, (int, tuple)) else "")
def test_empirical_order_and_nfe_more(x64, solver, order, steps):
    _check_order(solver, order, steps)


@pytest.mark.slow
@pytest.mark.parametrize("solver, order, steps", DEIS_SLOW, ids=lambda v: f"DEIS{v.multistep_order}" if isinstance(v, DEIS) else "")
def test_deis_empirical_order_and_nfe_more(x64, solver, order, steps):
    errors = errors_and_counts(solver, steps, grid=TimeQuadratic())
    assert abs(fitted_order(steps, errors) - order) <= 0.3, errors


def test_deis_coefficients_integrate_the_interpolant_exactly(x64):
    # Σ_j C_j τ_j^k = ∫ τ^k dσ̃ for k below the number of nodes (the Lagrange basis reproduces
    # polynomials, so this checks the basis, the σ̃ quadrature and its map back to τ); the
    # right side by dense Gauss–Legendre in τ against dσ̃/dτ (σ̃ = σ/α, by autodiff).
    schedule, mixture, x, _ = problem()
    term = DiffusionTerm(mixture.denoiser(schedule, "eps"), event_shape=(2,))
    t0, t1, times = 0.3, 0.2, [0.3, 0.4, 0.55]
    c = jax.jit(lambda: deis_coefficients(term, jnp.asarray(t0), jnp.asarray(t1), [jnp.asarray(t) for t in times], jnp.float64))()
    nodes, weights = np.polynomial.legendre.leggauss(60)
    tau = 0.5 * (t0 + t1) + 0.5 * (t1 - t0) * nodes
    w = 0.5 * (t1 - t0) * weights
    dsigma = jax.jit(jax.vmap(jax.grad(lambda t: schedule.sigma(t) / schedule.alpha(t))))(jnp.asarray(tau))
    for k in range(3):
        exact = np.sum(w * np.asarray(dsigma) * tau**k)
        np.testing.assert_allclose(sum(float(cj) * tj**k for cj, tj in zip(c, times)), exact, rtol=1e-11)


@eqx.filter_jit
def _end(term, solver, ts, x):
    return solve(term, solver, ts, x).ys[-1]


def _ddim_step(schedule, mixture, t0, t1, x):
    """One DDIM step from t0 to t1 with the exact ε: α₁ x̂₀ + σ₁ ε̂."""
    eps = mixture.prediction(x, t0, schedule, "eps")
    x0 = (x - schedule.sigma(t0) * eps) / schedule.alpha(t0)
    return schedule.alpha(t1) * x0 + schedule.sigma(t1) * eps


def _check_final_order(full, lowered):
    schedule, mixture, x, _ = problem()
    term = DiffusionTerm(mixture.denoiser(schedule, "eps"), event_shape=(2,))
    ts = TimeQuadratic()(schedule, 6, T_START, T_END)
    # final_order=1: the same solve to ts[-2], then one DDIM step.
    expected = _ddim_step(schedule, mixture, ts[-2], ts[-1], _end(term, full, ts[:-1], x))
    np.testing.assert_allclose(_end(term, lowered, ts, x), expected, rtol=1e-12, atol=1e-12)
    # ... which the full-order last step is not (so the comparison can fail).
    assert float(jnp.max(jnp.abs(_end(term, full, ts, x) - expected))) > 1e-6


def test_final_order_changes_only_the_last_step(x64):
    _check_final_order(DEIS(2), DEIS(2, final_order=1))


@pytest.mark.slow
@pytest.mark.parametrize("full, lowered", [(DPMSolverPP2M(), DPMSolverPP2M(final_order=1)),
                                           (DPMSolverPP3M(), DPMSolverPP3M(final_order=1))], ids=["2M", "3M"])
def test_final_order_changes_only_the_last_step_more(x64, full, lowered):
    _check_final_order(full, lowered)


@pytest.mark.slow
def test_deis_1_is_ddim_and_unipc_final_order_acts(x64):
    schedule, mixture, x, _ = problem()
    term = DiffusionTerm(mixture.denoiser(schedule, "eps"), event_shape=(2,))
    ts = TimeQuadratic()(schedule, 6, T_START, T_END)
    np.testing.assert_allclose(_end(term, DEIS(1), ts, x), _end(term, DDIM(), ts, x), rtol=1e-12, atol=1e-12)
    # UniPC's last step also runs the previous step's corrector, so it has no DDIM-step
    # equivalent; the lowered predictor must still change the result.
    assert float(jnp.max(jnp.abs(_end(term, UniPC(2, final_order=1), ts, x) - _end(term, UniPC(2), ts, x)))) > 1e-6


def test_final_order_and_deis_bad_input():
    with pytest.raises(ValueError, match="final_order"):
        DPMSolverPP2M(final_order=3)
    with pytest.raises(ValueError, match="final_order"):
        UniPC(2, final_order=0)
    with pytest.raises(ValueError, match="multistep_order"):
        DEIS(4)
    schedule, mixture = VPLinear(), eight_gaussians()
    # A bare term (no `t_end`) driven by diffeqsolve cannot tell its last step: a clear error.
    term = DiffusionTerm(mixture.denoiser(schedule, "eps"), event_shape=(2,))
    with pytest.raises(ValueError, match="t_end"):
        diffrax.diffeqsolve(term, DPMSolverPP2M(final_order=1), 1.0, 1e-3, None, jnp.zeros((1, 2)),
                            stepsize_controller=diffrax.StepTo(jnp.linspace(1.0, 1e-3, 4)))


@pytest.mark.parametrize("solver", [diffrax.Tsit5()], ids=lambda s: type(s).__name__)
def test_nfe_of_diffrax_solvers_equals_model_calls(x64, solver):
    # Tsit5 is first-same-as-last: 6 new stages per step and one evaluation in init.
    errors_and_counts(solver, (3,), grid=TimeQuadratic())
    assert evaluations(solver, 8) == 49


@pytest.mark.slow
@pytest.mark.parametrize(
    "solver", [diffrax.Euler(), diffrax.Heun(), diffrax.Midpoint(), diffrax.Dopri5(), diffrax.Dopri8(), diffrax.Bosh3()],
    ids=lambda s: type(s).__name__,
)
def test_nfe_of_more_diffrax_solvers(x64, solver):
    errors_and_counts(solver, (3,), grid=TimeQuadratic())


@pytest.mark.slow
def test_ddim_is_dpm_solver_1_and_parameterisations_agree(x64):
    schedule, mixture, x, _ = problem()
    ts = UniformLogSNR()(schedule, 6, T_START, T_END)
    ends = {}
    for name, solver, parameterisation in [
        ("ddim", DDIM(), "eps"),
        ("dpm1", DPMSolver1(), "eps"),
        ("ddim_x0", DDIM(), "x0"),
        ("ddim_v", DDIM(), "v"),
    ]:
        term = DiffusionTerm(mixture.denoiser(schedule, parameterisation), event_shape=(2,))
        ends[name] = solve(term, solver, ts, x).ys[-1]
    for name in ("dpm1", "ddim_x0", "ddim_v"):
        np.testing.assert_allclose(ends[name], ends["ddim"], rtol=1e-10, atol=1e-10)


@pytest.mark.slow
def test_reverse_sde_strong_orders(x64):
    """Euler–Maruyama (strong order 1 for additive noise) and SRA1 (at least 1.5) on one Brownian path.

    SRA1's 1.5 is a lower bound: here the noise part of its error is small and the measured
    slope is about 2.8; a solver fed the wrong Lévy area (a reverse-time diffeqsolve) does not
    converge to the right path at all.
    """
    schedule, mixture, x, _ = problem()
    denoiser = mixture.denoiser(schedule, "eps")
    key = jax.random.key(7)

    def end(solver, n):
        return sample(denoiser, x, solver=solver, grid=UniformTime(), num_steps=n, t_start=T_START, t_end=T_END, key=key).ys

    # A fine reference on the same path (the tree's resolution is set by the smallest step).
    reference = end(diffrax.SRA1(), 4096)
    steps = (256, 512)
    euler = [float(mean_l2_error(end(diffrax.Euler(), n), reference)) for n in steps]
    assert abs(fitted_order(steps, euler) - 1.0) <= 0.35, euler
    sra1 = [float(mean_l2_error(end(diffrax.SRA1(), n), reference)) for n in steps]
    assert fitted_order(steps, sra1) >= 1.5 - 0.3 and sra1[-1] < 0.1 * euler[-1], (sra1, euler)


@pytest.mark.slow
def test_gradient_through_a_sampler_matches_finite_differences(x64):
    schedule, mixture, x, _ = problem()
    term = DiffusionTerm(mixture.denoiser(schedule, "eps"), event_shape=(2,))
    ts = TimeQuadratic()(schedule, 6, T_START, T_END)

    def f(x0):
        return jnp.sum(solve(term, DPMSolverPP2M(), ts, x0).ys[-1] ** 2)

    grad = jax.grad(f)(x)
    direction = jax.random.normal(jax.random.key(3), x.shape, x.dtype)
    h = 1e-6
    fd = (f(x + h * direction) - f(x - h * direction)) / (2 * h)
    np.testing.assert_allclose(jnp.vdot(grad, direction), fd, rtol=1e-6)


def test_phi_functions_match_their_integrals(x64):
    # φ_k(z) = ∫_0^1 e^{(1-u)z} u^{k-1}/(k-1)! du, by Gauss–Legendre quadrature, on both sides
    # of the series/recurrence switch.
    nodes, weights = np.polynomial.legendre.leggauss(40)
    u, w = 0.5 * (nodes + 1), 0.5 * weights
    for z in (-3.0, -0.6, -0.4, -1e-3, 0.0, 1e-3, 0.4, 0.6, 2.0):
        for k in (1, 2, 3):
            exact = np.sum(w * np.exp((1 - u) * z) * u ** (k - 1)) / math.factorial(k - 1)
            np.testing.assert_allclose(float(phi(k, jnp.asarray(z))), exact, rtol=1e-13)
