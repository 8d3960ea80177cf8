import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde import Grid


def test_periodic_points_and_wavenumbers():
    grid = Grid((8, 4), lengths=(2 * np.pi, 1.0))
    x, y = grid.axes()
    np.testing.assert_allclose(x, 2 * np.pi * np.arange(8) / 8, rtol=1e-6)
    np.testing.assert_allclose(y, np.arange(4) / 4, rtol=1e-6)
    kx, ky = grid.wavenumbers(real=True)
    assert kx.shape == (8, 1) and ky.shape == (1, 3)
    np.testing.assert_allclose(kx[:, 0], [0, 1, 2, 3, -4, -3, -2, -1], atol=1e-6)
    np.testing.assert_allclose(ky[0], 2 * np.pi * np.arange(3), rtol=1e-6)
    assert grid.coordinates().shape == (2, 8, 4)


def test_dirichlet_interior_nodes():
    grid = Grid(4, boundary="dirichlet", origin=-1.0, lengths=2.0)
    np.testing.assert_allclose(grid.axes()[0], [-0.6, -0.2, 0.2, 0.6], rtol=1e-6)
    assert grid.spacing == (0.4,)
    with pytest.raises(ValueError, match="periodic"):
        grid.wavenumbers()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(shape=(8,), boundary="neumann"), "unsupported boundary kind 'neumann'"),
        (dict(shape=(8, 8, 8, 8)), "1, 2 or 3 axes"),
        (dict(shape=(8,), lengths=-1.0), "positive"),
        (dict(shape=(8, 8), lengths=(1.0,)), "one per axis"),
        (dict(shape=(1,)), ">= 2"),
    ],
)
def test_bad_grids_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Grid(**kwargs)


def test_check_field_names_the_argument():
    grid = Grid((8, 8))
    grid.check_field(jnp.zeros((3, 8, 8)), batch_dims=1)
    with pytest.raises(ValueError, match=r"`u0` has shape \(8, 9\), expected \(8, 8\)"):
        grid.check_field(jnp.zeros((8, 9)), name="u0")


def test_subpackages_load_on_first_access():
    import jaxpde

    assert jaxpde.pdes.Burgers and jaxpde.training.fit and jaxpde.numerics.ETDRK4 and jaxpde.data.load_dataset
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        jaxpde.nope


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        # Used to fail inside `tuple(64.0)` with "'float' object is not iterable".
        (dict(shape=64.0), TypeError, r"`shape` must be an int or a tuple of 1 to 3 ints.*got 64\.0 \(float\)"),
        (dict(shape=(64.0, 64)), TypeError, r"every entry of `shape` must be an int"),
        (dict(shape=True), TypeError, r"`shape` must be an int"),
        (dict(shape="64"), TypeError, r"`shape` must be an int"),
        # Used to be accepted, giving NaN coordinates.
        (dict(shape=8, origin=float("nan")), ValueError, r"`origin` must be finite, got \(nan,\)"),
        (dict(shape=(8, 8), origin=(0.0, float("inf"))), ValueError, r"`origin` must be finite"),
        (dict(shape=8, lengths=float("nan")), ValueError, r"`lengths` must be finite"),
        (dict(shape=8, origin="left"), TypeError, r"`origin` must be a number"),
    ],
)
def test_bad_shape_and_origin_types_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        Grid(**kwargs)


def test_numpy_integer_shapes_are_accepted_as_ints():
    grid = Grid((np.int64(8), 4))
    assert grid.shape == (8, 4) and all(type(n) is int for n in grid.shape)
