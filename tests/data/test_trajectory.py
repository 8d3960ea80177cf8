"""The trajectory-dataset base: a new time-dependent dataset is one small subclass.

Checked on the heat equation, whose solution is known in closed form in Fourier space:
``û_k(t) = e^{−κ k² t} û_k(0)``.
"""

import dataclasses
from typing import ClassVar

import numpy as np
import pytest

from jaxpde import Grid
from jaxpde.data import TimeDependentConfig, TrajectoryConfig, load_dataset, sample_key, split_key
from jaxpde.pdes import Heat


@dataclasses.dataclass(frozen=True)
class HeatTrajectoryConfig(TrajectoryConfig):
    """Heat-equation trajectories on a periodic interval of length 2: the whole dataset."""

    diffusivity: float = 0.05

    name: ClassVar[str] = "heat_trajectories"
    batch_size: ClassVar[int] = 4

    def grid(self):
        return Grid(self.resolution, 2.0)

    def pde(self):
        return Heat(self.grid(), self.diffusivity)


CONFIG = HeatTrajectoryConfig(
    n_train=3, n_test=1, resolution=32, subsample=2, time=0.4, save_interval=0.1, dt=0.05, burn_in=0.1
)


def test_a_small_subclass_is_a_dataset_matching_the_exact_solution():
    data = load_dataset(CONFIG, cache=False, progress=False)
    frames = data.train["u"]
    assert frames.shape == (3, 5, 16) and data.test["u"].shape == (1, 5, 16)
    np.testing.assert_allclose(data.coordinates["x"], np.arange(16) * 2.0 / 16)
    np.testing.assert_allclose(data.coordinates["t"], [0.0, 0.1, 0.2, 0.3, 0.4], atol=1e-7)
    k = 2 * np.pi * np.fft.rfftfreq(32, d=2.0 / 32)
    for i in range(3):
        u0 = np.asarray(CONFIG.initial_field().sample(sample_key(split_key(0, "train"), i)), np.float64)
        for j, t in enumerate(data.coordinates["t"]):
            # Frame j is at t_j after the discarded burn-in of 0.1.
            exact = np.fft.irfft(np.fft.rfft(u0) * np.exp(-0.05 * k**2 * (t + 0.1)), n=32)[::2]
            np.testing.assert_allclose(frames[i, j], exact, atol=2e-6 * np.abs(u0).max())


def test_the_base_checks_times_and_requires_grid_and_pde():
    with pytest.raises(ValueError, match=r"`time` = 0.45 must be an integer multiple of `dt` = 0.1"):
        dataclasses.replace(CONFIG, time=0.45, dt=0.1, save_interval=0.1)
    with pytest.raises(ValueError, match=r"`burn_in` must be >= 0"):
        dataclasses.replace(CONFIG, burn_in=-0.1)
    with pytest.raises(ValueError, match="`solver` must be one of"):
        dataclasses.replace(CONFIG, solver="RK4")

    @dataclasses.dataclass(frozen=True)
    class NoPDE(TrajectoryConfig):
        def grid(self):
            return Grid(self.resolution)

    with pytest.raises(TypeError, match="abstract"):
        NoPDE()
    assert issubclass(HeatTrajectoryConfig, TimeDependentConfig)
    # The batch width is part of the dataset's identity (the values depend on it at rounding level).
    assert CONFIG.identity()["batch_size"] == 4
