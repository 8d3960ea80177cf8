"""Burgers datasets against an independent solve (explicit Runge–Kutta in diffrax, float64)."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.data import (
    BurgersConfig,
    BurgersTrajectoryConfig,
    load_dataset,
    sample_key,
    split_key,
)
from jaxpde.numerics.etdrk import solve

OPERATOR = BurgersConfig(n_train=2, n_test=1, resolution=128, time=0.5, dt=1e-3)
TRAJECTORIES = BurgersTrajectoryConfig(
    n_train=2, n_test=1, resolution=128, subsample=2, viscosity=0.02, time=0.2, save_interval=0.05, dt=1e-3
)


@pytest.fixture(scope="module")
def operator_data():
    return load_dataset(OPERATOR, cache=False, progress=False)


@pytest.fixture(scope="module")
def trajectory_data():
    return load_dataset(TRAJECTORIES, cache=False, progress=False)


def _reference(pde, u0, times):
    """Tsit5 with small constant steps in float64: a different scheme and driver than the data's."""
    saveat = diffrax.SaveAt(ts=jnp.asarray(times, jnp.float64))
    return np.asarray(solve(pde, jnp.asarray(u0, jnp.float64), times[-1], 1e-4, diffrax.Tsit5(), saveat=saveat).ys)


def test_shapes_and_coordinates(operator_data, trajectory_data):
    assert operator_data.train["u0"].shape == (2, 128) and operator_data.test["u1"].shape == (1, 128)
    np.testing.assert_allclose(operator_data.coordinates["x"], np.arange(128) / 128)
    assert trajectory_data.train["u"].shape == (2, 5, 64)
    np.testing.assert_allclose(trajectory_data.coordinates["t"], [0, 0.05, 0.1, 0.15, 0.2], atol=1e-7)


def test_u1_matches_an_independent_solve(operator_data, x64):
    pde = OPERATOR.pde()
    for split in ("train", "test"):
        for u0, u1 in zip(operator_data[split]["u0"], operator_data[split]["u1"]):
            reference = _reference(pde, u0, [OPERATOR.time])[-1]
            error = np.linalg.norm(u1 - reference) / np.linalg.norm(reference)
            assert error < 1e-5, error


def test_mean_is_conserved_and_energy_decays(operator_data):
    u0, u1 = operator_data.train["u0"], operator_data.train["u1"]
    scale = np.abs(u0).max()
    np.testing.assert_allclose(u0.mean(axis=1), 0.0, atol=1e-6 * scale)  # the random field has zero mean
    np.testing.assert_allclose(u1.mean(axis=1), u0.mean(axis=1), atol=1e-6 * scale)
    assert np.all(np.linalg.norm(u1, axis=1) < np.linalg.norm(u0, axis=1))


def test_initial_condition_is_the_random_field_of_the_sample_key(operator_data):
    key = sample_key(split_key(OPERATOR.seed, "test"), 0)
    u0 = np.asarray(OPERATOR.initial_field().sample(key))
    # Unbatched evaluation rounds differently from the vmapped generator: equal to rounding.
    np.testing.assert_allclose(operator_data.test["u0"][0], u0, rtol=0, atol=1e-6 * np.abs(u0).max())
    other = np.asarray(OPERATOR.initial_field().sample(sample_key(split_key(OPERATOR.seed, "test"), 1)))
    assert np.abs(operator_data.test["u0"][0] - other).max() > 0.1 * np.abs(u0).max()


def test_trajectory_frames_match_an_independent_solve(trajectory_data, x64):
    key = sample_key(split_key(TRAJECTORIES.seed, "train"), 1)
    with jax.enable_x64(False):
        u0 = np.asarray(TRAJECTORIES.initial_field().sample(key))
    frames = trajectory_data.train["u"][1]
    np.testing.assert_allclose(frames[0], u0[::2], rtol=0, atol=1e-6 * np.abs(u0).max())
    reference = _reference(TRAJECTORIES.pde(), u0, [0.05, 0.1, 0.15, 0.2])[:, ::2]
    error = np.linalg.norm(frames[1:] - reference) / np.linalg.norm(reference)
    assert error < 1e-5, error


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="Burgers: `viscosity` must be positive"):
        BurgersConfig(viscosity=-0.1)
    with pytest.raises(ValueError, match="Burgers: `viscosity` must be positive"):
        BurgersTrajectoryConfig(viscosity=0.0)
    with pytest.raises(ValueError, match="integer multiple of `dt`"):
        BurgersConfig(time=1.0, dt=3e-4)
    with pytest.raises(ValueError, match="integer multiple"):
        BurgersTrajectoryConfig(save_interval=0.03, time=1.0)
    with pytest.raises(ValueError, match="solver"):
        BurgersConfig(solver="RK4")
    with pytest.raises(ValueError, match="sigma"):
        BurgersConfig(sigma=-1.0)


def test_default_amplitude_matches_the_fno_generator():
    """The FNO Burgers generator sets u0 = Σ_{m ≥ 1} α_m cos(2πmx) + β_m sin(2πmx) with α_m, β_m ~
    N(0, 2σ²((2πm)² + τ²)^{−α}) (σ = 25, τ = 5, α = 2): pointwise variance Σ_m 2σ²((2πm)² + τ²)^{−α}
    over the m < N/2 wavenumbers a grid of N points carries (plus half the Nyquist mode)."""
    n = 1024
    m = np.arange(1, n // 2 + 1, dtype=np.float64)
    terms = 2 * 25.0**2 * ((2 * np.pi * m) ** 2 + 25.0) ** (-2.0)
    terms[-1] /= 2  # the Nyquist cosine has half the variance on the grid; negligible here anyway
    field = BurgersConfig(resolution=n).initial_field()
    np.testing.assert_allclose(np.asarray(field.pointwise_variance())[0], terms.sum(), rtol=1e-5)
