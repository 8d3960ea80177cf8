"""Navier–Stokes vorticity dataset: zero mean vorticity, agreement with an independent solve."""

import diffrax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.data import NavierStokesConfig, load_dataset
from jaxpde.numerics.etdrk import solve

CONFIG = NavierStokesConfig(n_train=2, n_test=1, resolution=32, time=2.0, save_interval=1.0, dt=1e-2)


@pytest.fixture(scope="module")
def data():
    return load_dataset(CONFIG, cache=False, progress=False)


def test_shapes_and_coordinates(data):
    assert data.train["vorticity"].shape == (2, 3, 32, 32) and data.test["vorticity"].shape == (1, 3, 32, 32)
    np.testing.assert_allclose(data.coordinates["t"], [0.0, 1.0, 2.0])
    np.testing.assert_allclose(data.coordinates["y"], np.arange(32) / 32)
    assert data.grid_points().shape == (32, 32, 2)


def test_mean_vorticity_stays_zero(data):
    w = data.train["vorticity"]
    # The random field and the FNO forcing have zero mean, and advection/diffusion conserve it.
    assert np.abs(w.mean(axis=(-2, -1))).max() < 1e-6 * np.abs(w).max()
    assert np.abs(w).max() > 0.1


def test_frames_match_an_independent_finer_step_solve(data, x64):
    """Tsit5 (explicit RK, diffrax) at dt = 5e-3 in float64 from the stored initial vorticity."""
    pde = CONFIG.pde()
    saveat = diffrax.SaveAt(ts=jnp.asarray([1.0, 2.0], jnp.float64))
    for w in data.train["vorticity"]:
        reference = np.asarray(
            solve(pde, jnp.asarray(w[0], jnp.float64), 2.0, 5e-3, diffrax.Tsit5(), saveat=saveat).ys
        )
        error = np.linalg.norm(w[1:] - reference) / np.linalg.norm(reference)
        assert error < 1e-4, error


def test_default_amplitude_matches_the_fno_generator():
    """The FNO generator draws ω = Re ifft(√2 σ_F (4π²|k|² + τ²)^{−α/2} N² (ξ + iη)), σ_F = 7^{3/2}:
    pointwise variance Σ_{k ≠ 0} 2 σ_F² (4π²|k|² + τ²)^{−α} over the N × N frequencies.
    The default config's initial field must have that variance."""
    n = 64
    k = np.fft.fftfreq(n, 1.0 / n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    terms = 2 * (7.0**1.5) ** 2 * (4 * np.pi**2 * k2 + 49.0) ** (-2.5)
    terms[0, 0] = 0.0
    field = NavierStokesConfig(resolution=n).initial_field()
    np.testing.assert_allclose(np.asarray(field.pointwise_variance()), terms.sum(), rtol=1e-5)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="NavierStokes2D: `viscosity` must be positive"):
        NavierStokesConfig(viscosity=0.0)
    with pytest.raises(ValueError, match="integer multiple"):
        NavierStokesConfig(save_interval=1.0, dt=0.3)
    with pytest.raises(ValueError, match="divides 64"):
        NavierStokesConfig(resolution=64, subsample=3)
