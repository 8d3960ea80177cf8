"""The time-dependent PDE catalogue against exact solutions, invariants and reference solvers."""

import re

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde import Grid, autodiff
from jaxpde.numerics import etdrk
from jaxpde.numerics.etdrk import ETDRK4, phi_functions
from jaxpde.pdes import (
    Advection,
    AllenCahn,
    Burgers,
    DirichletHeat,
    GrayScott,
    Heat,
    KdV,
    KuramotoSivashinsky,
    NavierStokes2D,
    jaxpi_allen_cahn,
)
from jaxpde.pdes._base import dealias_mask
from jaxpde.pdes.diffusion import dirichlet_laplacian


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _points(grid):
    return grid.coordinates().reshape(grid.ndim, -1).T


def _tsit5_reference(pde, u0, t1):
    controller = diffrax.PIDController(rtol=1e-11, atol=1e-12)
    sol = diffrax.diffeqsolve(
        pde.ode_term(), diffrax.Tsit5(), 0.0, t1, 1e-3, u0, stepsize_controller=controller, max_steps=100_000
    )
    return sol.ys[-1]


# --------------------------------------------------------------------------------------------
# Parameter validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Burgers(Grid(16), viscosity=-0.1), "Burgers: `viscosity` must be positive, got -0.1"),
        (lambda: Burgers(Grid(16), viscosity=float("nan")), "Burgers: `viscosity` must be positive, got nan"),
        (lambda: Heat(Grid(16), diffusivity=0.0), "Heat: `diffusivity` must be positive, got 0.0"),
        (lambda: AllenCahn(Grid(16), diffusivity=-1e-4), "AllenCahn: `diffusivity` must be positive, got -0.0001"),
        (lambda: AllenCahn(Grid(16), reaction=0.0), "AllenCahn: `reaction` must be positive, got 0.0"),
        (lambda: NavierStokes2D(Grid((8, 8)), viscosity=-1e-3), "NavierStokes2D: `viscosity` must be positive, got -0.001"),
        (lambda: NavierStokes2D(Grid((8, 8)), drag=-0.1), "NavierStokes2D: `drag` must be non-negative, got -0.1"),
        (lambda: GrayScott(Grid(16), diffusivities=(1e-5, -1e-5)), "GrayScott: `diffusivities` must be positive, got [1e-05, -1e-05]"),
        (lambda: GrayScott(Grid(16), feed=-0.01), "GrayScott: `feed` must be non-negative, got -0.01"),
        (lambda: KdV(Grid(16), dispersion=0.0), "KdV: `dispersion` must be non-zero"),
        (lambda: NavierStokes2D(Grid((8, 8)), forcing="wind"), "`forcing` must be one of"),
        (lambda: NavierStokes2D(Grid((8, 8)), forcing="kolmogorov"), "is not resolved by a grid of shape (8, 8)"),
        (lambda: KuramotoSivashinsky(Grid((8, 8)), form="convective"), "use form='gradient'"),
        (lambda: KuramotoSivashinsky(Grid(8), hyperdiffusion="sixth"), "`hyperdiffusion` must be one of"),
        (lambda: Advection(Grid((8, 8)), velocity=(1.0, 2.0, 3.0)), "one entry per axis (2)"),
        (lambda: Burgers(Grid((8, 8))), "needs a grid with 1 dimension(s), got 2"),
        (lambda: Burgers(Grid(8, boundary="dirichlet")), "needs a periodic grid"),
        (lambda: NavierStokes2D(Grid(8)), "needs a grid with 2 dimension(s), got 1"),
    ],
)
def test_bad_parameters_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_residual_checks_the_point_shape():
    pde = Burgers(Grid(16))
    with pytest.raises(ValueError, match=re.escape("Burgers.residual: `x` must be one point of shape (1,)")):
        pde.residual(lambda x, t: x[0], jnp.zeros((3, 1)), 0.0)


def test_traced_parameters_skip_the_python_check_and_differentiate():
    grid = Grid(16)
    u0 = jnp.sin(2 * jnp.pi * grid.axes()[0])
    grad = jax.grad(lambda nu: jnp.sum(Burgers(grid, nu).rhs(0.0, u0)))(0.1)
    assert jnp.isfinite(grad)


# --------------------------------------------------------------------------------------------
# Pointwise residuals: exact solutions, and consistency with the spectral right-hand sides
# --------------------------------------------------------------------------------------------


def _exact_cases():
    kdv = KdV(Grid(64, lengths=3.0), nonlinear_coefficient=1.0, dispersion=0.022**2)
    return [
        (Heat(Grid((8, 8), lengths=(1.0, 2.0)), 0.3), {}, None),
        (DirichletHeat(Grid(8, boundary="dirichlet", lengths=2.0, origin=-1.0), 0.2), {}, None),
        (Advection(Grid((8, 8)), (0.5, -1.5)), {}, None),
        (Burgers(Grid(16, lengths=2 * np.pi), 0.1), {"amplitude": 0.9, "mode": 2}, None),
        (KdV(Grid(64, lengths=30.0)), {"speed": 2.0}, None),
        (kdv, {"speed": 0.3}, None),
        (AllenCahn(Grid(8)), {"initial_value": -0.3}, None),
        *[
            (pde, {}, pde.exact_stream_function)
            for pde in (
                NavierStokes2D(Grid((8, 8)), 1e-2),
                NavierStokes2D(Grid((8, 8), lengths=(1.0, 2.0)), 1e-2, drag=0.1, forcing="fno"),
                NavierStokes2D(Grid((16, 16), lengths=2 * np.pi), 1e-2, drag=0.1, forcing="kolmogorov"),
            )
        ],
    ]


@pytest.mark.parametrize("case", range(len(_exact_cases())))
def test_exact_solutions_have_zero_residual(x64, case):
    pde, kwargs, unknown = _exact_cases()[case]
    unknown = unknown or (lambda x, t: pde.exact_solution(x, t, **kwargs))
    rng = np.random.default_rng(case)
    lengths = np.asarray(pde.grid.lengths)
    points = np.asarray(pde.grid.origin) + rng.uniform(0.1, 0.9, (6, pde.grid.ndim)) * lengths
    times = rng.uniform(0.0, 1.0, 6)
    residuals = jax.vmap(lambda x, t: pde.residual(unknown, x, t))(jnp.asarray(points), jnp.asarray(times))
    scale = jnp.max(jnp.abs(jax.vmap(lambda x, t: unknown(x, t))(jnp.asarray(points), jnp.asarray(times))))
    assert float(scale) > 1e-3
    assert float(jnp.max(jnp.abs(residuals))) < 1e-12, residuals


def _wave(grid, modes, seed):
    """A smooth band-limited function of x (time-independent) with modes up to `modes`."""
    rng = np.random.default_rng(seed)
    coeffs = rng.normal(size=(modes, grid.ndim, 2)) / np.arange(1, modes + 1)[:, None, None]
    origin = np.asarray(grid.origin)
    lengths = np.asarray(grid.lengths)

    def fn(x, t):
        phase = 2 * jnp.pi * (x - origin) / lengths
        total = 0.0
        for m in range(modes):
            for i in range(grid.ndim):
                total = total + coeffs[m, i, 0] * jnp.sin((m + 1) * phase[i]) * jnp.cos(phase[(i + 1) % grid.ndim])
                total = total + coeffs[m, i, 1] * jnp.cos((m + 1) * phase[i])
        return total

    return fn


def _consistency_cases():
    g1 = Grid(32, lengths=5.0, origin=-1.0)
    g2 = Grid((32, 32), lengths=(2.0, 3.0))
    return [
        (Heat(g2, 0.7), None),
        (Advection(g2, (0.4, -1.2)), None),
        (Burgers(g1, 0.05), None),
        (KdV(g1), None),
        (KuramotoSivashinsky(g1), None),
        (KuramotoSivashinsky(g2), None),
        (KuramotoSivashinsky(g2, hyperdiffusion="separable"), None),
        (AllenCahn(g2, 1e-2, 5.0), None),
        (GrayScott(g2, (2e-2, 1e-2), 0.04, 0.06), "species"),
        (NavierStokes2D(g2, 1e-2, drag=0.1, forcing="fno"), "stream"),
    ]


@pytest.mark.parametrize("case", range(len(_consistency_cases())))
def test_spectral_rhs_agrees_with_autodiff_residual(x64, case):
    # For a time-independent smooth u, residual = -F(u) pointwise; the pseudo-spectral rhs must
    # give the same F at the grid points (exactly, for band-limited u below the dealiasing cut).
    pde, kind = _consistency_cases()[case]
    grid = pde.grid
    points = _points(grid)
    if kind == "species":
        first, second = _wave(grid, 2, case), _wave(grid, 2, case + 100)
        u_fn = lambda x, t: jnp.stack([1.0 + 0.3 * first(x, t), 0.5 + 0.2 * second(x, t)])  # noqa: E731
    else:
        u_fn = _wave(grid, 3, case)
    if kind == "stream":
        state_fn = lambda x, t: -autodiff.laplacian(u_fn)(x, t)  # noqa: E731
    else:
        state_fn = u_fn
    state = jax.vmap(lambda x: state_fn(x, 0.0))(points)
    state = jnp.moveaxis(state.reshape(*grid.shape, -1), -1, 0).reshape(pde.state_shape)
    expected = -jax.vmap(lambda x: pde.residual(u_fn, x, 0.0))(points)
    expected = jnp.moveaxis(expected.reshape(*grid.shape, -1), -1, 0).reshape(pde.state_shape)
    computed = pde.rhs(0.0, state)
    if isinstance(pde, KuramotoSivashinsky) and pde.form == "gradient":
        # The rhs drops the spatial mean of |grad u|^2 / 2 (a gauge choice; see the module).
        expected = expected - jnp.mean(expected)
        computed = computed - jnp.mean(computed)
    np.testing.assert_allclose(computed, expected, atol=1e-9 * float(jnp.max(jnp.abs(expected))))


# --------------------------------------------------------------------------------------------
# Linear problems: exact in time
# --------------------------------------------------------------------------------------------


def test_heat_and_advection_match_exact_solutions(x64):
    heat = Heat(Grid((16, 24), lengths=(1.0, 2.0)), 0.01)
    sol = etdrk.solve(heat, heat.exact_solution_on_grid(0.0), 2.0, 0.25)
    np.testing.assert_allclose(sol.ys[-1], heat.exact_solution_on_grid(2.0), atol=1e-13)

    advection = Advection(Grid((32, 16), lengths=(2.0, 1.0)), (0.3, -0.7))
    sol = etdrk.solve(advection, advection.exact_solution_on_grid(0.0), 1.7, 0.1)
    np.testing.assert_allclose(sol.ys[-1], advection.exact_solution_on_grid(1.7), atol=1e-12)
    # A non-trivial band-limited profile shifts exactly, too.
    x, y = advection.grid.coordinates()
    profile = jnp.exp(jnp.sin(jnp.pi * x) + 0.5 * jnp.cos(2 * jnp.pi * y)) * 1.0
    shifted = advection.evolve_exact(profile, 1.0)
    expected = jnp.exp(jnp.sin(jnp.pi * (x - 0.3)) + 0.5 * jnp.cos(2 * jnp.pi * (y + 0.7)))
    np.testing.assert_allclose(shifted, expected, atol=1e-8)  # spectral truncation of exp(...)


def test_heat_on_a_dirichlet_grid_by_method_of_lines(x64):
    heat = DirichletHeat(Grid(63, boundary="dirichlet", lengths=2.0, origin=-1.0), 0.1)
    u0 = heat.exact_solution_on_grid(0.0)
    sol = diffrax.diffeqsolve(
        heat.ode_term(), diffrax.Kvaerno5(), 0.0, 1.0, 0.01, u0,
        stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-12),
    )
    h = heat.grid.spacing[0]
    # The sine mode is an eigenvector of the second-difference Laplacian with this eigenvalue.
    discrete_rate = 0.1 * 4 / h**2 * np.sin(np.pi * h / 4) ** 2
    np.testing.assert_allclose(sol.ys[-1], u0 * np.exp(-discrete_rate), atol=1e-9)
    assert _rel(sol.ys[-1], heat.exact_solution_on_grid(1.0)) < 1e-3  # O(h^2) to the PDE
    lap = dirichlet_laplacian(jnp.ones((3, 4)), Grid((3, 4), boundary="dirichlet"))
    assert float(lap[1, 1]) == 0.0 and float(lap[0, 0]) < 0  # zero boundary values are felt


# --------------------------------------------------------------------------------------------
# Nonlinear problems
# --------------------------------------------------------------------------------------------


def test_burgers_matches_cole_hopf(x64):
    pde = Burgers(Grid(512, lengths=2 * np.pi), viscosity=0.1)
    u0 = pde.exact_solution_on_grid(0.0, amplitude=0.9)
    sol = etdrk.solve(pde, u0, 1.0, 0.01)
    error = _rel(sol.ys[-1], pde.exact_solution_on_grid(1.0, amplitude=0.9))
    assert error <= 1e-6, error


class _RealPartETDRK4(ETDRK4):
    """ETDRK4 with the real part of the contour means only (the dissipative-only shortcut)."""

    def _phis(self, z, max_order):
        return tuple(p.real.astype(p.dtype) for p in phi_functions(z, max_order, self.num_contour_points))


def test_kdv_soliton_keeps_shape_and_speed(x64):
    pde = KdV(Grid(256, lengths=50.0, origin=-25.0))
    u0 = pde.exact_solution_on_grid(0.0, speed=4.0, position=-5.0)
    expected = pde.exact_solution_on_grid(1.0, speed=4.0, position=-5.0)
    final = etdrk.solve(pde, u0, 1.0, 0.005).ys[-1]
    assert _rel(final, expected) < 2e-5
    x = pde.grid.axes()[0]
    np.testing.assert_allclose(x[jnp.argmax(final)], -1.0, atol=pde.grid.spacing[0])  # moved by c t = 4
    np.testing.assert_allclose(jnp.max(final), 2.0, rtol=1e-3)  # amplitude c / 2
    # Dropping the imaginary part of the weights (right only for real symbols) ruins it.
    wrong = etdrk.solve(pde, u0, 1.0, 0.005, _RealPartETDRK4()).ys[-1]
    assert _rel(wrong, expected) > 1e-2


def test_allen_cahn_matches_tsit5_method_of_lines(x64):
    pde, u0 = jaxpi_allen_cahn(128)
    etd = etdrk.solve(pde, u0, 0.5, 1e-3).ys[-1]
    reference = _tsit5_reference(pde, u0, 0.5)
    assert float(jnp.max(jnp.abs(etd - reference))) < 1e-8
    # Uniform states follow the reaction ODE exactly.
    uniform = etdrk.solve(pde, jnp.full(128, 0.2), 0.5, 1e-3).ys[-1]
    np.testing.assert_allclose(uniform, pde.exact_solution(jnp.zeros(1), 0.5, initial_value=0.2), rtol=1e-9)


def test_kuramoto_sivashinsky_1d_matches_tsit5(x64):
    pde = KuramotoSivashinsky(Grid(64, lengths=22.0))
    x = pde.grid.axes()[0]
    u0 = jnp.cos(2 * jnp.pi * x / 22.0) * (1 + jnp.sin(4 * jnp.pi * x / 22.0))
    etd = etdrk.solve(pde, u0, 1.0, 0.01).ys[-1]
    assert float(jnp.max(jnp.abs(etd - _tsit5_reference(pde, u0, 1.0)))) < 1e-8


@pytest.mark.slow
def test_kuramoto_sivashinsky_2d_matches_tsit5(x64):
    pde2 = KuramotoSivashinsky(Grid((16, 16), lengths=12.0))
    x, y = pde2.grid.coordinates()
    w0 = jnp.sin(2 * jnp.pi * x / 12.0) + 0.5 * jnp.cos(2 * jnp.pi * (x + y) / 12.0)
    etd2 = etdrk.solve(pde2, w0, 0.5, 0.01).ys[-1]
    assert float(jnp.max(jnp.abs(etd2 - _tsit5_reference(pde2, w0, 0.5)))) < 1e-8
    np.testing.assert_allclose(jnp.mean(etd2), jnp.mean(w0), atol=1e-12)  # the mean is held fixed


def test_navier_stokes_exact_flows(x64):
    # Taylor-Green decays exactly; the forced laminar flow builds up exactly from rest. (The FNO
    # forcing's laminar flow is checked pointwise in test_exact_solutions_have_zero_residual.)
    for forcing, drag in (("none", 0.0), ("kolmogorov", 0.1)):
        lengths = 1.0 if forcing != "kolmogorov" else 2 * np.pi
        pde = NavierStokes2D(Grid((32, 32), lengths=lengths), 1e-2, drag=drag, forcing=forcing)
        w0 = pde.exact_solution_on_grid(0.0)
        final = etdrk.solve(pde, w0, 2.0, 0.1).ys[-1]
        np.testing.assert_allclose(final, pde.exact_solution_on_grid(2.0), atol=1e-11)


@pytest.mark.slow
def test_navier_stokes_matches_tsit5(x64):
    # A random band-limited field with the FNO forcing against Tsit5 on the same rhs.
    pde = NavierStokes2D(Grid((32, 32)), 1e-2, forcing="fno")
    mask = dealias_mask(pde.grid)
    noise = jax.random.normal(jax.random.PRNGKey(0), pde.grid.spectral_shape(), dtype=jnp.complex128)
    k2 = sum(k**2 for k in pde.grid.wavenumbers(real=True))
    w0 = jnp.fft.irfftn(mask * noise * 2000.0 / (1.0 + k2), s=pde.grid.shape)
    etd = etdrk.solve(pde, w0, 0.5, 0.005).ys[-1]
    np.testing.assert_allclose(etd, _tsit5_reference(pde, w0, 0.5), atol=1e-8 * float(jnp.max(jnp.abs(w0))))


def test_navier_stokes_conserves_energy_and_enstrophy_when_inviscid(x64):
    pde = NavierStokes2D(Grid((32, 32), lengths=2 * np.pi), viscosity=1e-14)
    mask = dealias_mask(pde.grid)
    noise = jax.random.normal(jax.random.PRNGKey(1), pde.grid.spectral_shape(), dtype=jnp.complex128)
    k2 = sum(k**2 for k in pde.grid.wavenumbers(real=True))
    w0 = jnp.fft.irfftn(mask * noise * 50.0 / (1.0 + k2), s=pde.grid.shape)
    w0 = w0 - jnp.mean(w0)

    def invariants(w):
        w_hat = jnp.fft.rfftn(w)
        weight = jnp.ones(pde.grid.spectral_shape()).at[:, 1:-1].set(2.0)  # rfft half-spectrum
        energy = jnp.sum(weight * jnp.abs(w_hat) ** 2 / jnp.where(k2 == 0, 1.0, k2))
        return energy, jnp.sum(weight * jnp.abs(w_hat) ** 2)

    final = etdrk.solve(pde, w0, 2.0, 0.01).ys[-1]
    assert _rel(final, w0) > 1e-2  # it did evolve
    for before, after in zip(invariants(w0), invariants(final)):
        np.testing.assert_allclose(after, before, rtol=1e-8)


def test_gray_scott_reaction_and_reference(x64):
    pde = GrayScott(Grid(64, lengths=2.5), (2e-3, 1e-3), feed=0.04, kill=0.06)
    # A well-mixed state follows the reaction ODE.
    uniform = jnp.stack([jnp.full(64, 0.6), jnp.full(64, 0.3)])
    etd = etdrk.solve(pde, uniform, 5.0, 0.05).ys[-1]
    ode = diffrax.diffeqsolve(
        diffrax.ODETerm(pde.reaction_rhs), diffrax.Tsit5(), 0.0, 5.0, 0.01, jnp.asarray([0.6, 0.3]),
        stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-12),
    ).ys[-1]
    np.testing.assert_allclose(etd, jnp.broadcast_to(ode[:, None], (2, 64)), atol=1e-9)
    # A localised perturbation against Tsit5 on the method-of-lines rhs.
    x = pde.grid.axes()[0]
    bump = jnp.exp(-((x - 1.25) ** 2) / 0.05)
    state = jnp.stack([1.0 - 0.5 * bump, 0.25 * bump])
    etd = etdrk.solve(pde, state, 5.0, 0.05).ys[-1]
    assert etd.shape == (2, 64)
    np.testing.assert_allclose(etd, _tsit5_reference(pde, state, 5.0), atol=1e-9)
