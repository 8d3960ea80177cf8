"""DeepONet: its output is Σ_k b_k(u) t_k(y) + b_0 at any query points, point by point (evaluating
a set of points at once or each alone agrees), with split outputs; it learns the antiderivative
operator u ↦ ∫_0^y u (closed form for trigonometric u) and evaluates it at random off-grid points;
bad inputs refused by name, a field at another resolution than the sensors included."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpde.neural_operators._deeponet import DeepONet, query_grid
from jaxpde.training import fit


def mlp(network, v, final_activation):
    """An equinox MLP evaluated in numpy from its weights (tanh hidden activations)."""
    for i, layer in enumerate(network.layers):
        v = np.asarray(layer.weight) @ v + np.asarray(layer.bias)
        if i < len(network.layers) - 1 or final_activation:
            v = np.tanh(v)
    return v


def test_output_is_the_sum_of_products_at_arbitrary_points():
    model = DeepONet(12, 2, latent=6, branch_width=8, trunk_width=8, in_channels=2, out_channels=3, key=jax.random.key(0))
    model = eqx.tree_at(lambda m: m.bias, model, jnp.array([0.1, -0.2, 0.3]))
    u = np.asarray(jax.random.normal(jax.random.key(1), (2, 3, 4)))  # 12 sensors per channel, laid out 3 x 4
    y = np.asarray(jax.random.uniform(jax.random.key(2), (5, 2)))    # anywhere, on no grid
    apply = eqx.filter_jit(model)
    out = np.asarray(apply(u, y))
    assert out.shape == (3, 5)
    b = mlp(model.branch, u.reshape(-1), final_activation=False).reshape(3, 2)
    t = np.stack([mlp(model.trunk, point, final_activation=True) for point in y]).reshape(5, 3, 2)
    np.testing.assert_allclose(out, np.einsum("oq,noq->on", b, t) + [[0.1], [-0.2], [0.3]], rtol=1e-5, atol=1e-6)
    one_by_one = np.concatenate([np.asarray(apply(u, y[i : i + 1])) for i in range(5)], axis=1)
    np.testing.assert_allclose(out, one_by_one, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(query_grid((2, 3))), [[0, 0], [0, 1 / 3], [0, 2 / 3], [0.5, 0], [0.5, 1 / 3],
                                                                  [0.5, 2 / 3]], atol=1e-7)


def antiderivative_data(key, n, sensors=32, points=32):
    """u(x) = Σ_{k=1}^{2} a_k cos(2πkx) + b_k sin(2πkx) at the sensors x_j = j/m, and
    s(y) = ∫_0^y u = Σ a_k sin(2πky)/(2πk) + b_k (1 − cos(2πky))/(2πk) at random points y."""
    k_c, k_y = jax.random.split(key)
    c = jax.random.normal(k_c, (n, 2, 2))
    k = 2 * jnp.pi * jnp.arange(1, 3)
    x = jnp.arange(sensors) / sensors
    u = jnp.einsum("nk,xk->nx", c[:, 0], jnp.cos(k * x[:, None])) + jnp.einsum("nk,xk->nx", c[:, 1], jnp.sin(k * x[:, None]))
    y = jax.random.uniform(k_y, (n, points, 1))
    s = jnp.einsum("nk,npk->np", c[:, 0], jnp.sin(k * y) / k) + jnp.einsum("nk,npk->np", c[:, 1], (1 - jnp.cos(k * y)) / k)
    return u[:, None], y, s[:, None]


def loss(model, batch, key):
    u, y, s = batch
    prediction = jax.vmap(model)(u, y)
    return jnp.mean(jnp.sum((prediction - s) ** 2, axis=(1, 2)) / jnp.sum(s**2, axis=(1, 2)))


@pytest.mark.slow  # ~20 s of CPU: DeepONets train slowly (3000 Adam steps)
def test_learns_the_antiderivative_and_evaluates_it_off_the_grid():
    train, test = antiderivative_data(jax.random.key(1), 128), antiderivative_data(jax.random.key(2), 64, points=50)
    model = DeepONet(32, 1, latent=16, branch_width=32, branch_depth=1, trunk_width=32, trunk_depth=2, activation="relu",
                     key=jax.random.key(0))
    steps = 3000
    result = fit(model, optax.adam(optax.cosine_decay_schedule(1e-3, steps)), loss, lambda key: train, steps=steps,
                 key=jax.random.key(3), progress=False, log_every=steps)
    u, y, s = test
    prediction = jax.vmap(result.model)(u, y)
    error = float(jnp.mean(jnp.linalg.norm(prediction - s, axis=(1, 2)) / jnp.linalg.norm(s, axis=(1, 2))))
    assert error < 0.06, error  # measured 0.035 on 50 random points per held-out function; untrained ~1


def test_bad_inputs_are_refused_by_name():
    model = eqx.filter_eval_shape(lambda: DeepONet(16, 2, latent=4, out_channels=2, key=jax.random.key(0)))  # abstract
    with pytest.raises(ValueError, match=r"`u` must be one sample of shape \(in_channels=1, \*sensor_shape\) holding sensors=16"):
        model(jnp.zeros((1, 32)), jnp.zeros((3, 2)))  # a finer field than the sensors
    with pytest.raises(ValueError, match=r"`u` must be one sample"):
        model(jnp.zeros((2, 16)), jnp.zeros((3, 2)))  # wrong channel count
    with pytest.raises(ValueError, match=r"`y` must be query points of shape \(n, coordinate_dim=2\)"):
        model(jnp.zeros((1, 16)), jnp.zeros((3, 1)))
    with pytest.raises(ValueError, match="`latent` must be a multiple of `out_channels`=2"):
        DeepONet(16, 2, latent=5, out_channels=2, key=jax.random.key(0))
    with pytest.raises(ValueError, match="`sensors` must be a positive integer"):
        DeepONet(0, 2, key=jax.random.key(0))
