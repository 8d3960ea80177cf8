"""Subsampling to coarser resolutions: the right points, on periodic and closed node grids."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.data import (
    BurgersConfig,
    DarcyConfig,
    NavierStokesConfig,
    coarse_size,
    load_dataset,
    subsample,
)


def _smooth(x, y):
    return np.sin(3 * x) * np.cos(2 * y) + x * y


def test_closed_421_to_85_keeps_the_boundary_nodes():
    fine = np.arange(421) / 420
    coarse = subsample(fine, 5, closed=True)
    assert coarse.shape == (85,)
    np.testing.assert_allclose(coarse, np.arange(85) / 84, rtol=0, atol=1e-15)
    assert coarse[0] == 0.0 and coarse[-1] == 1.0
    # A field on the 421² nodes, subsampled, is the field on the 85² nodes.
    X, Y = np.meshgrid(fine, fine, indexing="ij")
    Xc, Yc = np.meshgrid(np.arange(85) / 84, np.arange(85) / 84, indexing="ij")
    np.testing.assert_allclose(subsample(_smooth(X, Y), 5, axes=(0, 1), closed=True), _smooth(Xc, Yc), atol=1e-14)


def test_periodic_8192_to_1024():
    fine = np.arange(8192) / 8192
    coarse = subsample(np.sin(2 * np.pi * 3 * fine), 8)
    np.testing.assert_allclose(coarse, np.sin(2 * np.pi * 3 * np.arange(1024) / 1024), atol=1e-12)


def test_batched_and_jax_arrays():
    x = jnp.arange(2 * 3 * 16 * 16.0).reshape(2, 3, 16, 16)
    out = jax.jit(lambda a: subsample(a, 4, axes=(-2, -1)))(x)
    assert out.shape == (2, 3, 4, 4)
    np.testing.assert_array_equal(out, np.asarray(x)[..., ::4, ::4])


@pytest.mark.parametrize(
    ("n", "factor", "closed", "expected"),
    [(421, 5, True, 85), (253, 3, True, 85), (241, 3, True, 81), (241, 5, True, 49), (8192, 8, False, 1024), (64, 1, False, 64)],
)
def test_coarse_size(n, factor, closed, expected):
    assert coarse_size(n, factor, closed) == expected


def test_factors_that_do_not_divide_are_errors():
    with pytest.raises(ValueError, match="divides n - 1 = 240"):
        coarse_size(241, 7, closed=True)
    with pytest.raises(ValueError, match="divides n - 1 = 420"):
        coarse_size(421, 8, closed=True)
    with pytest.raises(ValueError, match="divides 100"):
        subsample(np.zeros(100), 8)
    with pytest.raises(ValueError, match="factor"):
        subsample(np.zeros(8), 0)
    with pytest.raises(ValueError, match="out of range"):
        subsample(np.zeros(8), 2, axes=(1,))
    with pytest.raises(ValueError, match="divides n - 1"):
        DarcyConfig(resolution=241, subsample=7)
    with pytest.raises(ValueError, match="divides 100"):
        BurgersConfig(resolution=100, subsample=8)


def test_config_coordinates_match_the_subsampled_grids():
    x = DarcyConfig(resolution=421, subsample=5).coordinates()["x"]
    np.testing.assert_allclose(x, np.linspace(0, 1, 85), atol=1e-7)
    x = DarcyConfig(resolution=253, subsample=3).coordinates()["y"]
    np.testing.assert_allclose(x, np.linspace(0, 1, 85), atol=1e-7)
    x = BurgersConfig(resolution=8192, subsample=8).coordinates()["x"]
    np.testing.assert_allclose(x, np.arange(1024) / 1024, atol=1e-7)
    coordinates = NavierStokesConfig(resolution=256, subsample=4).coordinates()
    np.testing.assert_allclose(coordinates["x"], np.arange(64) / 64, atol=1e-7)
    np.testing.assert_allclose(coordinates["t"], np.arange(51.0))


def test_generated_subsampling_equals_subsampling_the_fine_data():
    """A dataset generated with `subsample = r` holds exactly every r-th point of the fine one."""
    base = {"n_train": 2, "n_test": 1, "time": 0.05, "dt": 1e-3, "resolution": 64}
    fine = load_dataset(BurgersConfig(**base), cache=False, progress=False)
    coarse = load_dataset(BurgersConfig(**base, subsample=4), cache=False, progress=False)
    coarsened = fine.subsample(4)
    for split in ("train", "test"):
        for name in ("u0", "u1"):
            np.testing.assert_array_equal(coarse[split][name], coarsened[split][name])
            np.testing.assert_array_equal(coarse[split][name], fine[split][name][:, ::4])
    np.testing.assert_array_equal(coarse.coordinates["x"], coarsened.coordinates["x"])
    assert coarsened.resolution == (16,) and coarsened.subsample_factor == 4
    assert coarsened.grid_points().shape == (16, 1)
    with pytest.raises(ValueError, match="divides 64"):
        fine.subsample(3)
