import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.fft

from jaxpde import Grid
from jaxpde.numerics import spectral


def _plane_waves(grid: Grid, seed: int, count: int = 4):
    """Random resolved plane waves ``Σ A sin(k·x + φ)`` (no Nyquist modes): (modes, amps, phases)."""
    rng = np.random.default_rng(seed)
    bands = [(n - 1) // 2 for n in grid.shape]  # strictly below Nyquist
    modes = np.stack([rng.integers(-b, b + 1, size=count) for b in bands], axis=1)
    ks = 2 * np.pi * modes / np.asarray(grid.lengths)
    return ks, rng.uniform(0.5, 1.5, count), rng.uniform(0, 2 * np.pi, count)


def _evaluate(grid: Grid, waves, order: int = 0, axis: int = 0):
    """``∂^order/∂x_axis^order`` of the plane waves, exactly, in float64 numpy."""
    ks, amps, phases = waves
    x = np.stack(np.meshgrid(*[np.asarray(a, dtype=np.float64) for a in _axes64(grid)], indexing="ij"))
    out = np.zeros(grid.shape)
    for k, a, p in zip(ks, amps, phases):
        arg = np.tensordot(k, x, axes=1) + p
        out += a * k[axis] ** order * np.sin(arg + order * np.pi / 2)
    return out


def _axes64(grid: Grid):
    return [x0 + (length / n) * np.arange(n) for n, length, x0 in zip(grid.shape, grid.lengths, grid.origin)]


GRIDS = [
    Grid(32, lengths=2 * np.pi),
    Grid(15, lengths=3.0, origin=-1.0),  # odd N: no Nyquist mode at all
    Grid((16, 12), lengths=(1.0, 2.5)),
    Grid((8, 10, 7), lengths=(1.0, 2.0, 1.5)),
]


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: str(g.shape))
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_derivative_exact_on_trig_polynomials_float32(grid, order):
    waves = _plane_waves(grid, seed=order + grid.ndim)
    u = jnp.asarray(_evaluate(grid, waves), dtype=jnp.float32)
    for axis in range(grid.ndim):
        exact = _evaluate(grid, waves, order, axis)
        got = spectral.derivative(u, grid, order=order, axis=axis)
        assert got.dtype == jnp.float32 and got.shape == grid.shape
        scale = max(np.abs(exact).max(), 1.0)
        np.testing.assert_allclose(np.asarray(got), exact, atol=1e-4 * scale, rtol=0)


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: str(g.shape))
def test_derivative_exact_on_trig_polynomials_float64(x64, grid):
    waves = _plane_waves(grid, seed=7)
    u = jnp.asarray(_evaluate(grid, waves))
    assert u.dtype == jnp.float64
    for order in (1, 2, 3, 5):
        for axis in range(grid.ndim):
            exact = _evaluate(grid, waves, order, axis)
            got = spectral.derivative(u, grid, order=order, axis=axis)
            assert got.dtype == jnp.float64
            np.testing.assert_allclose(np.asarray(got), exact, atol=1e-12 * np.abs(exact).max(), rtol=0)


def test_nyquist_mode_dropped_by_odd_kept_by_even_derivatives(x64):
    grid = Grid((8, 6), lengths=(2.0, 1.0))
    kx_nyquist = np.pi * 8 / 2.0
    x, _ = np.meshgrid(*_axes64(grid), indexing="ij")
    u = jnp.asarray(np.cos(kx_nyquist * x))  # = (-1)^j along x
    np.testing.assert_allclose(spectral.derivative(u, grid, 1, axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(spectral.derivative(u, grid, 3, axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(spectral.derivative(u, grid, 2, axis=0), -(kx_nyquist**2) * u, atol=1e-11)
    np.testing.assert_allclose(spectral.derivative(u, grid, 0, axis=0), u)
    # A Nyquist mode in x times a resolved mode in y: the x-derivative of the real interpolant
    # cos(k_N x) sin(k y) vanishes at the nodes (sin(k_N x_j) = 0); keeping ±i k_N would not.
    x, y = np.meshgrid(*_axes64(grid), indexing="ij")
    v = jnp.asarray(np.cos(kx_nyquist * x) * np.sin(2 * np.pi * y))
    np.testing.assert_allclose(spectral.derivative(v, grid, 1, axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(spectral.derivative(v, grid, 1, axis=1), 2 * np.pi * np.cos(kx_nyquist * x) * np.cos(2 * np.pi * y), atol=1e-12)


def test_gradient_divergence_laplacian_and_inverse(x64):
    grid = Grid((12, 10, 8), lengths=(1.0, 2.0, 3.0))
    waves = _plane_waves(grid, seed=3, count=6)
    u = jnp.asarray(_evaluate(grid, waves))
    grad = spectral.gradient(u, grid)
    assert grad.shape == (3, *grid.shape)
    for axis in range(3):
        np.testing.assert_allclose(grad[axis], _evaluate(grid, waves, 1, axis), atol=1e-11)
    exact_laplacian = sum(_evaluate(grid, waves, 2, axis) for axis in range(3))
    np.testing.assert_allclose(spectral.laplacian(u, grid), exact_laplacian, atol=1e-10)
    np.testing.assert_allclose(spectral.divergence(grad, grid), exact_laplacian, atol=1e-10)
    # Zero-mean inverse, including on a rough field with Nyquist content (even order keeps it).
    f = np.random.default_rng(0).standard_normal(grid.shape)
    v = np.asarray(spectral.inverse_laplacian(f, grid))
    assert v.dtype == np.float64 and abs(v.mean()) < 1e-14
    np.testing.assert_allclose(spectral.laplacian(v, grid), f - f.mean(), atol=1e-12)
    np.testing.assert_allclose(spectral.inverse_laplacian(spectral.laplacian(u, grid), grid), u - np.mean(u), atol=1e-12)


def test_derivative_jits_and_differentiates():
    grid = Grid(16)
    x = grid.axes()[0]
    u = jnp.sin(2 * jnp.pi * x)
    jitted = jax.jit(spectral.derivative, static_argnames=("order", "axis"))
    np.testing.assert_allclose(jitted(u, grid, order=1), 2 * jnp.pi * jnp.cos(2 * jnp.pi * x), atol=1e-4)
    # d/du of <w, ∂u> is -∂w (the derivative is skew-adjoint); check one directional derivative.
    w = jnp.cos(4 * jnp.pi * x)
    g = jax.grad(lambda u: jnp.vdot(w, spectral.derivative(u, grid)))(u)
    np.testing.assert_allclose(g, -spectral.derivative(w, grid), atol=1e-4)


def test_derivative_symbol_matches_derivative():
    grid = Grid((8, 9))
    u = np.random.default_rng(1).standard_normal(grid.shape).astype(np.float32)
    symbol = np.asarray(spectral.derivative_symbol(grid, order=3, axis=1))
    assert symbol.shape == (1, 5)
    via_symbol = np.fft.irfftn(symbol * np.fft.rfftn(u), s=grid.shape, axes=(0, 1))
    np.testing.assert_allclose(via_symbol, spectral.derivative(u, grid, 3, axis=1), atol=1e-5 * np.abs(via_symbol).max())
    laplacian_symbol = np.asarray(spectral.laplacian_symbol(grid))
    via_laplacian_symbol = np.fft.irfftn(laplacian_symbol * np.fft.rfftn(u), s=grid.shape, axes=(0, 1))
    np.testing.assert_allclose(
        via_laplacian_symbol, spectral.laplacian(u, grid), atol=1e-5 * np.abs(via_laplacian_symbol).max()
    )


def test_input_validation():
    periodic = Grid((8, 8))
    with pytest.raises(ValueError, match="periodic"):
        spectral.derivative(jnp.zeros((8, 8)), Grid((8, 8), boundary="dirichlet"))
    with pytest.raises(ValueError, match="periodic"):
        spectral.leray_project(jnp.zeros((2, 8, 8)), Grid((8, 8), boundary="dirichlet"))
    with pytest.raises(ValueError, match="`u` has shape"):
        spectral.derivative(jnp.zeros((8, 7)), periodic)
    with pytest.raises(ValueError, match="`order`"):
        spectral.derivative(jnp.zeros((8, 8)), periodic, order=-1)
    with pytest.raises(ValueError, match="`axis`"):
        spectral.derivative(jnp.zeros((8, 8)), periodic, axis=2)
    with pytest.raises(ValueError, match="`fraction`"):
        spectral.dealias_mask(periodic, fraction=0.0)
    with pytest.raises(ValueError, match="2D grid"):
        spectral.velocity_from_vorticity(jnp.zeros((8, 8, 8)), Grid((8, 8, 8)))
    with pytest.raises(ValueError, match="`v` has shape"):
        spectral.leray_project(jnp.zeros((3, 8, 8)), periodic)


# ---------------------------------------------------------------------------- dealiasing


@pytest.mark.parametrize("n, kept_band", [(64, 21), (48, 15), (30, 9), (31, 10), (16, 5)])
def test_dealias_mask_keeps_modes_below_a_third(n, kept_band):
    grid = Grid((n, n))
    mask = np.asarray(spectral.dealias_mask(grid))
    assert mask.shape == grid.spectral_shape()
    m_full = np.rint(np.fft.fftfreq(n, 1 / n))
    m_half = np.rint(np.fft.rfftfreq(n, 1 / n))
    expected = (np.abs(m_full)[:, None] <= kept_band) & (np.abs(m_half)[None, :] <= kept_band)
    np.testing.assert_array_equal(mask, expected)
    # The kept band is the largest K with 3K < N: the alias-free condition of Orszag's rule.
    assert 3 * kept_band < n <= 3 * (kept_band + 1)
    # About the top third of each axis' modes is removed.
    assert abs((n - (2 * kept_band + 1)) / n - 1 / 3) <= 1.5 / n


def test_dealias_fraction_one_removes_only_nyquist():
    grid = Grid(8)
    np.testing.assert_array_equal(spectral.dealias_mask(grid, fraction=1.0), [True] * 4 + [False])


def _exact_truncated_product(u, v, grid):
    """Fourier coefficients (fftn layout, the grid's modes) of the product of the trigonometric
    interpolants of u and v, computed on a 2x padded grid, which is alias-free for products."""
    pad_shape = tuple(2 * n for n in grid.shape)

    def pad(w):
        w_hat = np.fft.fftn(np.asarray(w, dtype=np.float64))
        out = np.zeros(pad_shape, dtype=complex)
        idx = np.ix_(*[np.rint(np.fft.fftfreq(n, 1 / n)).astype(int) % (2 * n) for n in grid.shape])
        out[idx] = w_hat
        return np.fft.ifftn(out).real * math.prod(pad_shape) / grid.size

    prod_hat = np.fft.fftn(pad(u) * pad(v)) * grid.size / math.prod(pad_shape)
    idx = np.ix_(*[np.rint(np.fft.fftfreq(n, 1 / n)).astype(int) % (2 * n) for n in grid.shape])
    return prod_hat[idx]


@pytest.mark.parametrize("shape", [(24,), (18, 16)])
def test_two_thirds_rule_removes_aliasing_of_products(x64, shape):
    grid = Grid(shape)
    rng = np.random.default_rng(2)
    u_raw, v_raw = rng.standard_normal((2, *grid.shape))
    mask = np.asarray(spectral.dealias_mask(grid))
    u, v = np.asarray(spectral.dealias(u_raw, grid)), np.asarray(spectral.dealias(v_raw, grid))
    # Truncated product in full fft layout, computed alias-free on a padded grid.
    exact_hat = _exact_truncated_product(u, v, grid)
    exact_hat_half = exact_hat[..., : grid.shape[-1] // 2 + 1]
    got_hat = np.fft.rfftn(np.asarray(spectral.dealias(u * v, grid)))
    np.testing.assert_allclose(got_hat, np.where(mask, exact_hat_half, 0), atol=1e-11 * np.abs(exact_hat).max())
    # Without dealiasing the inputs, the grid product is aliased: the check above can fail.
    aliased_hat = np.fft.rfftn(np.asarray(spectral.dealias(u_raw * v_raw, grid)))
    exact_raw = _exact_truncated_product(u_raw, v_raw, grid)[..., : grid.shape[-1] // 2 + 1]
    assert np.abs(aliased_hat - np.where(mask, exact_raw, 0)).max() > 1e-2 * np.abs(exact_raw).max()


# ---------------------------------------------------------------------------- incompressible flow


def test_leray_projection_2d_analytic(x64):
    grid = Grid((16, 12), lengths=(1.0, 2.0))
    x, y = np.meshgrid(*_axes64(grid), indexing="ij")
    a, b = 2 * np.pi * 2, 2 * np.pi * 3 / 2.0
    # w = (∂ψ/∂y, −∂ψ/∂x) for ψ = sin(a x) cos(b y) is divergence-free; ∇φ is a pure gradient.
    w = np.stack([-b * np.sin(a * x) * np.sin(b * y), -a * np.cos(a * x) * np.cos(b * y)])
    c, d = 2 * np.pi * 3, 2 * np.pi * 1 / 2.0
    grad_phi = np.stack([-c * np.sin(c * x + d * y), -d * np.sin(c * x + d * y)])
    mean_flow = np.stack([np.full(grid.shape, 0.3), np.full(grid.shape, -0.2)])
    projected = spectral.leray_project(jnp.asarray(w + grad_phi + mean_flow), grid)
    np.testing.assert_allclose(projected, w + mean_flow, atol=1e-12)
    np.testing.assert_allclose(spectral.leray_project(jnp.asarray(grad_phi), grid), 0, atol=1e-12)
    np.testing.assert_allclose(spectral.leray_project(jnp.asarray(w), grid), w, atol=1e-12)


@pytest.mark.parametrize("shape", [(16, 10), (8, 6, 7)])
def test_leray_projection_random_fields(shape):
    grid = Grid(shape, lengths=tuple(1.0 + 0.5 * i for i in range(len(shape))))
    rng = np.random.default_rng(3)
    v = rng.standard_normal((grid.ndim, *shape)).astype(np.float32)  # rough: includes Nyquist modes
    p = np.asarray(spectral.leray_project(v, grid))
    div_scale = np.abs(spectral.divergence(v, grid)).max()
    assert np.abs(spectral.divergence(p, grid)).max() < 1e-5 * div_scale
    np.testing.assert_allclose(spectral.leray_project(p, grid), p, atol=1e-5)  # idempotent
    grad_phi = np.asarray(spectral.gradient(rng.standard_normal(shape).astype(np.float32), grid))
    assert np.abs(spectral.leray_project(grad_phi, grid)).max() < 1e-5 * np.abs(grad_phi).max()
    np.testing.assert_allclose(spectral.leray_project(p + grad_phi, grid), p, atol=1e-4)
    # Orthogonal projection: what it removes is orthogonal to what it keeps.
    assert abs(np.vdot(p, v - p)) < 1e-4 * np.vdot(v, v)


def test_velocity_from_vorticity_analytic(x64):
    grid = Grid((16, 16))
    x, y = np.meshgrid(*_axes64(grid), indexing="ij")
    a, b = 2 * np.pi, 4 * np.pi
    psi = np.sin(a * x) * np.cos(b * y)
    omega = (a**2 + b**2) * psi  # −Δψ
    np.testing.assert_allclose(spectral.streamfunction_from_vorticity(jnp.asarray(omega), grid), psi, atol=1e-12)
    u, v = spectral.velocity_from_vorticity(jnp.asarray(omega), grid)
    np.testing.assert_allclose(u, -b * np.sin(a * x) * np.sin(b * y), atol=1e-12)  # ∂ψ/∂y
    np.testing.assert_allclose(v, -a * np.cos(a * x) * np.cos(b * y), atol=1e-12)  # −∂ψ/∂x


def test_velocity_vorticity_round_trip():
    grid = Grid((32, 24), lengths=(1.0, 1.5))
    omega = np.random.default_rng(4).standard_normal(grid.shape).astype(np.float32)
    velocity = np.asarray(spectral.velocity_from_vorticity(omega, grid))
    assert velocity.shape == (2, *grid.shape)
    assert np.abs(spectral.divergence(velocity, grid)).max() < 1e-5 * np.abs(velocity).max()
    # Exact round trip for a vorticity with no mean and no Nyquist content (fraction=1 drops only
    # Nyquist modes); with them, every other mode still comes back exactly.
    clean = np.asarray(spectral.dealias(omega, grid, fraction=1.0))
    clean = clean - clean.mean()
    tol = 1e-4 * np.abs(clean).max()
    back = spectral.vorticity_from_velocity(spectral.velocity_from_vorticity(clean, grid), grid)
    np.testing.assert_allclose(back, clean, atol=tol)
    back_raw = spectral.vorticity_from_velocity(velocity, grid)
    assert np.abs(back_raw - clean).max() > 100 * tol  # the Nyquist part is not recovered
    np.testing.assert_allclose(spectral.dealias(back_raw, grid, fraction=1.0), clean, atol=tol)


# ---------------------------------------------------------------------------- sine transform


@pytest.mark.parametrize("norm", ["backward", "ortho", "forward"])
def test_sine_transform_matches_scipy(x64, norm):
    x = np.random.default_rng(0).standard_normal((5, 7, 4))
    for axes in (None, 1, (0, 2), (-1,)):
        expected = scipy.fft.dstn(x, type=1, axes=axes, norm=norm)
        np.testing.assert_allclose(spectral.sine_transform(jnp.asarray(x), axes=axes, norm=norm), expected, atol=1e-12)


def test_sine_transform_ortho_is_an_involution_and_jits():
    x = np.random.default_rng(5).standard_normal((9, 6)).astype(np.float32)
    transform = jax.jit(lambda x: spectral.sine_transform(x, norm="ortho"))
    np.testing.assert_allclose(transform(transform(x)), x, atol=1e-5)
    with pytest.raises(ValueError, match="`norm`"):
        spectral.sine_transform(x, norm="bad")
