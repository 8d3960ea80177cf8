"""Kuramoto–Sivashinsky trajectories: bounded, mean-preserving, and equal to a finer-step solve."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.data import KuramotoSivashinskyConfig, load_dataset, sample_key, split_key
from jaxpde.numerics.etdrk import ETDRK4, rollout, solve

CONFIG = KuramotoSivashinskyConfig(
    n_train=2, n_test=1, length=22.0, resolution=64, dt=0.05, save_interval=1.0, time=10.0, burn_in=20.0
)


@pytest.fixture(scope="module")
def data():
    return load_dataset(CONFIG, cache=False, progress=False)


def test_shapes(data):
    assert data.train["u"].shape == (2, 11, 64)
    np.testing.assert_allclose(data.coordinates["x"], np.arange(64) * 22.0 / 64, rtol=1e-6)
    np.testing.assert_allclose(data.coordinates["t"], np.arange(11.0))


def test_trajectories_are_bounded_nontrivial_and_keep_their_mean(data):
    u = data.train["u"]
    assert np.all(np.isfinite(u)) and np.abs(u).max() < 6.0  # the L = 22 attractor has |u| ≲ 3
    assert np.all(u.std(axis=-1) > 0.5)  # on the attractor, not decayed to u = 0
    # The convective form conserves the spatial mean, which the random start sets to zero.
    assert np.abs(u.mean(axis=-1)).max() < 1e-5


def test_frames_match_a_finer_step_solve(data, x64):
    """ETDRK4 through diffrax at a quarter of the step, in float64, from the stored frame 0."""
    pde = CONFIG.pde()
    ts = jnp.arange(1.0, 11.0, dtype=jnp.float64)
    for u in data.train["u"]:
        reference = np.asarray(solve(pde, jnp.asarray(u[0], jnp.float64), 10.0, 0.0125, saveat=diffrax.SaveAt(ts=ts)).ys)
        error = np.linalg.norm(u[1:] - reference) / np.linalg.norm(reference)
        assert error < 1e-3, error  # chaos amplifies the float32 rounding of the data a little


def test_frame_zero_is_the_state_after_the_burn_in(data, x64):
    key = sample_key(split_key(CONFIG.seed, "train"), 0)
    with jax.enable_x64(False):
        u0 = np.asarray(CONFIG.initial_field().sample(key))
    after = np.asarray(rollout(CONFIG.pde(), jnp.asarray(u0, jnp.float64), 0.025, 800, ETDRK4()))
    frame0 = data.train["u"][0, 0]
    assert np.linalg.norm(frame0 - after) / np.linalg.norm(after) < 1e-3
    assert np.linalg.norm(frame0 - u0) > 0.5 * np.linalg.norm(frame0)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="burn_in"):
        KuramotoSivashinskyConfig(burn_in=0.03)
    with pytest.raises(ValueError, match="lengths"):
        KuramotoSivashinskyConfig(length=-1.0)
    with pytest.raises(ValueError, match="time"):
        KuramotoSivashinskyConfig(time=0.0)
