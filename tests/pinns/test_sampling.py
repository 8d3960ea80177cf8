"""Resampling keeps the population's size and moves it toward high residual: R3 retains exactly the
points at or above the mean residual and accumulates them at a residual peak; fixed-size RAR puts
the best candidates in the places of the worst points."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.pinns._sampling import R3, RAR, UniformResampling, residual_size
from tests.pinns.train_toy import Points


class Peak(eqx.Module):
    """A residual |r| = exp(-((x - 0.8)/0.05)²) that does not depend on the model."""

    def sample_term(self, name, key, n):
        return Points(jax.random.uniform(key, (n, 1)))

    def residuals(self, model, points):
        return {name: jnp.exp(-(((p.x[:, 0] - 0.8) / 0.05) ** 2)) for name, p in points.items()}


def _near_peak(points):
    return float(jnp.mean(jnp.abs(points.x[:, 0] - 0.8) < 0.1))


def test_r3_retains_the_high_residual_points_and_accumulates_them():
    problem, sampler = Peak(), R3(400)
    population = jax.jit(sampler.init, static_argnums=0)(problem, jax.random.key(0))
    assert population.x.shape == (400, 1) and _near_peak(population) < 0.3
    one = jax.jit(lambda p, k: (sampler.resample(p, problem, None, k), residual_size(problem, None, "residual", p)))
    after, size = one(population, jax.random.key(1))
    kept = np.asarray(size >= np.mean(size))
    np.testing.assert_array_equal(after.x[kept], population.x[kept])  # retained, in place
    assert not np.any(np.asarray(after.x[~kept]) == np.asarray(population.x[~kept]))  # released: all fresh
    for i in range(2, 12):
        population, _ = one(population, jax.random.key(i))
    assert population.x.shape == (400, 1) and _near_peak(population) > 0.6


def test_rar_puts_the_best_candidates_in_the_places_of_the_worst_points():
    problem, sampler = Peak(), RAR(200, candidates=500, replace=20)
    key = jax.random.key(1)

    @jax.jit
    def everything(key):
        population = sampler.init(problem, jax.random.key(0))
        after = sampler.resample(population, problem, None, key)
        fresh = problem.sample_term("residual", key, 500)
        sizes = [residual_size(problem, None, "residual", p) for p in (population, after, fresh)]
        return population, after, sizes

    population, after, (before_size, after_size, candidates) = everything(key)
    before_size, after_size, candidates = map(np.asarray, (before_size, after_size, candidates))
    changed = np.flatnonzero(np.any(np.asarray(after.x != population.x), axis=1))
    unchanged = np.setdiff1d(np.arange(200), changed)
    assert len(changed) == 20 and before_size[changed].max() <= before_size[unchanged].min()  # the 20 worst places (ties at 0)
    np.testing.assert_allclose(np.sort(after_size[changed]), np.sort(candidates)[-20:], rtol=1e-6)  # the 20 best
    assert after.x.shape == (200, 1) and after_size.mean() > before_size.mean()
    fresh = UniformResampling(50).resample(population, problem, None, key)  # the problem's own uniform points
    np.testing.assert_array_equal(fresh.x, problem.sample_term("residual", key, 50).x)
    with pytest.raises(ValueError, match=r"RAR: `replace` must be at most min\(n, candidates\) = 200, got 300"):
        RAR(200, candidates=500, replace=300)
