"""Domains: points where they belong (inside, on the named side), uniform in measure, outward normals,
signed distances with the right sign, and errors naming the argument."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.pinns._domains import Box, Disk, Interval, LShape, Rectangle, SpaceTime


@pytest.mark.slow  # many small eager programs: ~10 s of CPU
def test_box_sides_points_and_normals():
    box = Rectangle((0.0, -1.0), (2.0, 1.0))
    assert box.sides == ("left", "right", "bottom", "top", "boundary")
    inside = np.asarray(box.sample_interior(jax.random.key(0), 2000).x)
    assert inside.shape == (2000, 2) and (inside[:, 0] >= 0).all() and (inside[:, 0] <= 2).all()
    assert abs(inside[:, 1].mean()) < 0.06 and abs(inside[:, 0].mean() - 1) < 0.06
    top = np.asarray(box.sample_boundary(jax.random.key(1), 50, "top").x)
    np.testing.assert_array_equal(top[:, 1], 1.0)
    np.testing.assert_array_equal(np.asarray(box.normal(jnp.array([0.3, 1.0]), "top")), [0.0, 1.0])
    # The whole boundary: each side with probability proportional to its length (2 : 2 : 2 : 2 here),
    # and the normal found from the side the point lies on.
    whole = box.sample_boundary(jax.random.key(2), 4000).x
    normals = np.asarray(jax.vmap(box.normal)(whole))
    counts = {tuple(n): int((normals == n).all(axis=1).sum()) for n in ([-1, 0], [1, 0], [0, -1], [0, 1])}
    assert all(abs(c - 1000) < 120 for c in counts.values()), counts
    on_left = normals[:, 0] == -1
    np.testing.assert_array_equal(np.asarray(whole)[on_left, 0], 0.0)
    distances = np.asarray(jax.vmap(box.signed_distance)(jnp.array([[1.0, 0.0], [0.5, 0.9], [3.0, 0.0], [2.0, 0.5]])))
    np.testing.assert_allclose(distances, [-1.0, -0.1, 1.0, 0.0], atol=1e-6)


@pytest.mark.slow  # many small eager programs: ~10 s of CPU
def test_interval_box_disk_and_lshape():
    interval = Interval(-1.0, 1.0)
    assert interval.sides == ("left", "right", "boundary") and float(interval.normal(jnp.array([-1.0]), "left")[0]) == -1
    ends = np.asarray(interval.sample_boundary(jax.random.key(0), 200).x[:, 0])
    assert set(ends.tolist()) == {-1.0, 1.0} and 60 < (ends == 1).sum() < 140
    assert Box((0, 0, 0), (1, 1, 1)).sides == ("left", "right", "bottom", "top", "back", "front", "boundary")
    disk = Disk((1.0, 0.0), 2.0)
    rim = disk.sample_boundary(jax.random.key(1), 100).x
    np.testing.assert_allclose(np.linalg.norm(np.asarray(rim) - [1, 0], axis=1), 2.0, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.vmap(disk.normal)(rim)), (np.asarray(rim) - [1, 0]) / 2, atol=1e-6)
    radii = np.linalg.norm(np.asarray(disk.sample_interior(jax.random.key(2), 4000).x) - [1, 0], axis=1)
    assert radii.max() <= 2 and abs((radii < np.sqrt(2)).mean() - 0.5) < 0.03  # uniform in area
    ell = LShape()
    x = np.asarray(ell.sample_interior(jax.random.key(3), 3000).x)
    assert not ((x[:, 0] > 0) & (x[:, 1] > 0)).any() and abs((x[:, 0] < 0).mean() - 2 / 3) < 0.03
    edge = ell.sample_boundary(jax.random.key(4), 500).x
    np.testing.assert_allclose(np.asarray(jax.vmap(ell.signed_distance)(edge)), 0, atol=1e-6)
    assert float(ell.signed_distance(jnp.array([0.5, 0.5]))) > 0 > float(ell.signed_distance(jnp.array([-0.5, 0.5])))
    np.testing.assert_array_equal(np.asarray(ell.normal(jnp.array([0.0, 0.5]))), [1.0, 0.0])  # the re-entrant edge


@pytest.mark.slow  # ~2 s of CPU; every Problem test samples these domains
def test_sides_and_points_on_them():
    # The cheap default check (one compiled sampler per domain): points on the named side, inside the
    # domain, on the boundary by the signed distance.
    box, disk, ell = Rectangle((0.0, -1.0), (2.0, 1.0)), Disk((1.0, 0.0), 2.0), LShape()

    @jax.jit
    def draw(key):
        top = box.sample_boundary(key, 8, "top").x
        rim, edge = disk.sample_boundary(key, 8).x, ell.sample_boundary(key, 8).x
        inside = ell.sample_interior(key, 64).x
        return (top, jax.vmap(box.normal)(top), jax.vmap(disk.signed_distance)(rim), jax.vmap(ell.signed_distance)(edge),
                jax.vmap(ell.signed_distance)(inside))

    top, normals, rim, edge, inside = (np.asarray(a) for a in draw(jax.random.key(0)))
    np.testing.assert_array_equal(top[:, 1], 1.0)
    np.testing.assert_array_equal(normals, np.tile([0.0, 1.0], (8, 1)))
    np.testing.assert_allclose(rim, 0, atol=1e-6)
    np.testing.assert_allclose(edge, 0, atol=1e-6)
    assert (inside <= 0).all()


@pytest.mark.slow  # eager sampling: ~3 s of CPU
def test_space_time_cylinder():
    domain = SpaceTime(Interval(0.0, 1.0), (0.5, 2.0))
    assert domain.sides == ("left", "right", "boundary", "initial") and domain.ndim == 1
    initial = domain.sample_boundary(jax.random.key(0), 10, "initial")
    np.testing.assert_array_equal(initial.t, 0.5)
    right = domain.sample_boundary(jax.random.key(1), 10, "right")
    np.testing.assert_array_equal(right.x[:, 0], 1.0)
    assert float(right.t.min()) >= 0.5 and float(right.t.max()) <= 2.0


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Interval(1.0, 0.0), "`lower` < `upper`"),
        (lambda: Rectangle((0.0,), (1.0,)), "Rectangle: `lower` and `upper` must have 2 entries"),
        (lambda: Disk(radius=-1.0), "Disk: `radius` must be a positive number"),
        (lambda: SpaceTime(Interval(0.0, 1.0), (1.0, 0.0)), "SpaceTime: `time` must be"),
        (lambda: Interval(0.0, 1.0).sample_interior(jax.random.key(0), 0), "Interval: `n` must be an integer >= 1"),
        (lambda: Interval(0.0, 1.0).sample_boundary(jax.random.key(0), 3, "top"), "`side` must be one of"),
    ],
)
def test_bad_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()
