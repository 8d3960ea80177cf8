"""Normalisers: exact inverses, training statistics, usable inside jit, clear shape errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.data import GaussianNormalizer, UnitGaussianNormalizer


@pytest.fixture
def samples():
    key = jax.random.key(0)
    # Pointwise different means and scales, so a global normaliser would not standardise it.
    mean = jnp.linspace(-3.0, 5.0, 12).reshape(3, 4)
    scale = jnp.linspace(0.1, 4.0, 12).reshape(3, 4)
    return mean + scale * jax.random.normal(key, (500, 3, 4))


def test_unit_gaussian_training_statistics(samples):
    normaliser = UnitGaussianNormalizer.fit(samples)
    np.testing.assert_allclose(normaliser.mean, samples.mean(0), rtol=1e-6)
    np.testing.assert_allclose(normaliser.std, samples.std(0), rtol=1e-6)
    encoded = normaliser.encode(samples)
    np.testing.assert_allclose(encoded.mean(0), 0.0, atol=1e-5)
    # std/(std + eps): 1 up to eps/std.
    np.testing.assert_allclose(encoded.std(0), samples.std(0) / (samples.std(0) + 1e-5), rtol=1e-5)
    np.testing.assert_allclose(encoded.std(0), 1.0, atol=2e-4)


def test_round_trip_and_single_sample(samples):
    normaliser = UnitGaussianNormalizer.fit(samples[:400])
    test = samples[400:]
    np.testing.assert_allclose(normaliser.decode(normaliser.encode(test)), test, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(normaliser.encode(test[0]), normaliser.encode(test)[0], rtol=1e-6)


def test_statistics_come_from_the_data_they_are_fitted_on(samples):
    a = UnitGaussianNormalizer.fit(samples[:250])
    b = UnitGaussianNormalizer.fit(samples[250:])
    assert not np.allclose(a.mean, b.mean)


def test_constant_points_stay_finite():
    x = jnp.zeros((10, 5)).at[:, 1:4].set(jax.random.normal(jax.random.key(1), (10, 3)))
    normaliser = UnitGaussianNormalizer.fit(x)  # columns 0 and 4 are constant (like a zero boundary)
    encoded = normaliser.encode(x)
    assert jnp.all(jnp.isfinite(encoded)) and jnp.all(encoded[:, 0] == 0)


def test_usable_inside_jit_and_grad(samples):
    normaliser = UnitGaussianNormalizer.fit(samples)

    @eqx.filter_jit
    def loss(norm, x):
        return jnp.mean(norm.decode(norm.encode(x) * 2.0) ** 2)

    value = loss(normaliser, samples[:8])
    assert jnp.isfinite(value)
    grads = jax.grad(lambda x: loss(normaliser, x))(samples[:8])
    assert grads.shape == (8, 3, 4)
    # The module is a pytree whose leaves are its statistics.
    assert len(jax.tree_util.tree_leaves(normaliser)) == 2


def test_global_normaliser(samples):
    normaliser = GaussianNormalizer.fit(samples)
    assert normaliser.mean.shape == () and normaliser.std.shape == ()
    np.testing.assert_allclose(normaliser.mean, samples.mean(), rtol=1e-5)
    np.testing.assert_allclose(normaliser.std, samples.std(), rtol=1e-5)
    encoded = normaliser.encode(samples)
    np.testing.assert_allclose(encoded.mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(encoded.std(), 1.0, atol=1e-4)
    # Resolution-independent: applies to any shape.
    np.testing.assert_allclose(normaliser.decode(normaliser.encode(samples[:, ::2])), samples[:, ::2], rtol=1e-5, atol=1e-5)
    out = jax.jit(lambda n, x: n.encode(x))(normaliser, samples[:2])
    np.testing.assert_allclose(out, encoded[:2], rtol=1e-6)


def test_errors(samples):
    normaliser = UnitGaussianNormalizer.fit(samples)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 4\)"):
        normaliser.encode(samples[:, ::2])
    with pytest.raises(ValueError, match="leading sample axis"):
        UnitGaussianNormalizer.fit(jnp.zeros((0, 3)))
    with pytest.raises(ValueError, match="eps"):
        UnitGaussianNormalizer.fit(samples, eps=0.0)
    with pytest.raises(ValueError, match="same shape"):
        UnitGaussianNormalizer(jnp.zeros(3), jnp.ones(4))
    with pytest.raises(ValueError, match="scalars"):
        GaussianNormalizer(jnp.zeros(3), jnp.ones(3))
