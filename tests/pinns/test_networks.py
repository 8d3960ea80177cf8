"""jaxpde.pinns networks: shapes under jit/vmap/grad, exact periodicity of the periodic embedding,
random weight factorisation equal to the plain layer at initialisation, PirateNet at
initialisation equal to its output layer on the embedding, the least-squares output fit, and
errors that name the argument."""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde import autodiff as ad
from jaxpde.pinns._networks import (
    MLP,
    Dense,
    Embeddings,
    FourierFeatures,
    ModifiedMLP,
    PeriodicEmbedding,
    PirateNet,
    WeightFactorisation,
)

KEY = jax.random.key(0)
_batch = eqx.filter_jit(lambda net, x, t: jax.vmap(net)(x, t))


def _embedding(key=KEY):
    # (x, t) with x periodic of period 2: (cos πx, sin πx, t) -> 16 Fourier features
    return Embeddings(PeriodicEmbedding(2, axes=(0,), periods=2.0), FourierFeatures(3, 16, 1.0, key=key))


@functools.cache
def _network(name, out="scalar", key=0):
    """Each network built once per test session (building compiles its parameter initialisation)."""
    return NETWORKS[name](out, jax.random.key(key))


NETWORKS = {
    "mlp": lambda out, k: MLP(2, out, 8, 2, key=k),
    "mlp_rwf_fourier": lambda out, k: MLP(2, out, 8, 2, embedding=_embedding(k), factorisation=WeightFactorisation(),
                                          key=k),
    "modified_mlp": lambda out, k: ModifiedMLP(2, out, 8, 2, embedding=_embedding(k), key=k),
    "pirate": lambda out, k: PirateNet(2, out, 8, 1, embedding=_embedding(k), factorisation=WeightFactorisation(),
                                       key=k),
}


@eqx.filter_jit
def _one_point_batch_and_gradients(net, x, t):
    """The network at one point, on a batch, its parameter gradient and (scalar nets) ∂t, Δ: one compile."""
    loss = lambda m: jnp.sum(jax.vmap(m)(x, t) ** 2)
    derivatives = (ad.time_derivative(net)(x[1], t[1]), ad.laplacian(net)(x[1], t[1])) if net.out_size == "scalar" else ()
    return net(x[2], t[2]), jax.vmap(net)(x, t), eqx.filter_grad(loss)(net), derivatives


# default: the two that exercise every piece (embeddings, factorisation, gates); the rest -m slow
@pytest.mark.parametrize("name, out", [("mlp_rwf_fourier", "scalar"), ("pirate", "scalar"),
                                       *(pytest.param(name, out, marks=pytest.mark.slow)
                                         for name, out in (("mlp", "scalar"), ("modified_mlp", "scalar"), ("pirate", 3)))])
def test_networks_map_one_point_and_batch_under_jit_vmap_grad(name, out):
    net = _network(name, out)
    x, t = jnp.linspace(-1, 1, 5)[:, None], jnp.linspace(0, 1, 5)
    expected = () if out == "scalar" else (3,)
    one, batch, grads, derivatives = _one_point_batch_and_gradients(net, x, t)
    assert one.shape == expected and one.dtype == jnp.float32
    assert batch.shape == (5, *expected)
    np.testing.assert_allclose(batch[2], one, rtol=1e-5, atol=1e-6)
    # every trainable array gets a finite gradient of its shape
    for g, p in zip(jax.tree.leaves(grads), jax.tree.leaves(eqx.filter(net, eqx.is_inexact_array))):
        assert g.shape == p.shape and bool(jnp.all(jnp.isfinite(g)))
    assert all(d.shape == () and bool(jnp.isfinite(d)) for d in derivatives)


@pytest.mark.slow  # two more compiles
def test_fourier_features_get_no_gradient_unless_trainable():
    grad = eqx.filter_jit(eqx.filter_grad(lambda m: m(jnp.ones(1), 0.3)))
    fixed = MLP(2, "scalar", 4, 1, embedding=FourierFeatures(2, 6, key=KEY), key=KEY)
    assert float(jnp.abs(grad(fixed).embedding.frequencies).max()) == 0.0
    trainable = eqx.tree_at(lambda m: m.embedding, fixed, FourierFeatures(2, 6, key=KEY, trainable=True))
    assert float(jnp.abs(grad(trainable).embedding.frequencies).max()) > 0.0


def test_fourier_features_are_cos_and_sin_of_bz():
    ff = FourierFeatures(2, 6, 2.0, key=KEY)
    z = jnp.array([0.3, -0.7])
    phase = np.asarray(ff.frequencies) @ np.asarray(z)
    np.testing.assert_allclose(ff(z), np.concatenate([np.cos(phase), np.sin(phase)]), rtol=1e-6, atol=1e-6)


@eqx.filter_jit
def _shifted(net, x, t):
    """u and u_xx at x, x + 2, x - 2, x + 6 (periods of 2), and u at t + 2 (not a period)."""
    xs = jnp.concatenate([x, x + 2.0, x - 2.0, x + 6.0])
    ts = jnp.concatenate([t, t, t, t])
    u, uxx = jax.vmap(net)(xs, ts), jax.vmap(ad.derivative(net, 0, 2))(xs, ts)
    return u.reshape(4, -1), uxx.reshape(4, -1), jax.vmap(net)(x, t + 2.0)


@pytest.mark.parametrize("name", ["modified_mlp", pytest.param("mlp_rwf_fourier", marks=pytest.mark.slow),
                                  pytest.param("pirate", marks=pytest.mark.slow)])
def test_periodic_embedding_makes_the_network_exactly_periodic(name):
    # random weights (the gates opened so PirateNet's blocks act), random points, shifts of ±1 and ±3 periods
    net = _network(name, "scalar", 3)
    if name == "pirate":
        net = eqx.tree_at(lambda m: [b.alpha for b in m.blocks], net, [jnp.asarray(0.7)] * len(net.blocks))
    k1, k2 = jax.random.split(jax.random.key(4))
    x = jax.random.uniform(k1, (64, 1), minval=-1, maxval=1)
    t = jax.random.uniform(k2, (64,))
    u, uxx, later = _shifted(net, x, t)
    # x + shift is rounded; the embedding's cos/sin then differ by the round-off of that rounding
    np.testing.assert_allclose(u[1:], np.broadcast_to(u[0], u[1:].shape), rtol=0, atol=2e-5 * float(jnp.abs(u).max() + 1))
    # derivatives too (the residual's u_xx)
    np.testing.assert_allclose(uxx[1:], np.broadcast_to(uxx[0], uxx[1:].shape), rtol=0,
                               atol=1e-3 * float(jnp.abs(uxx).max() + 1))
    # the time direction is not periodic: the embedding keeps t as it is
    assert float(jnp.abs(later - u[0]).max()) > 1e-3


def test_periodic_embedding_features_in_float64(x64):
    emb = PeriodicEmbedding(3, axes=(0, 2), periods=(2.0, 2 * math.pi), harmonics=2)
    assert emb.out_size == 3 + 3 * 2
    z = jnp.array([0.25, 0.5, 1.0])
    expected = [np.cos(np.pi * 0.25), np.cos(2 * np.pi * 0.25), np.sin(np.pi * 0.25), np.sin(2 * np.pi * 0.25), 0.5,
                np.cos(1.0), np.cos(2.0), np.sin(1.0), np.sin(2.0)]
    np.testing.assert_allclose(emb(z), expected, rtol=1e-14)
    np.testing.assert_allclose(emb(z + jnp.array([2.0, 0.0, 2 * np.pi])), emb(z), atol=1e-14)


def test_weight_factorisation_reproduces_the_plain_layer_at_initialisation():
    key = jax.random.key(7)
    plain = Dense(5, 4, key=key)
    factorised = Dense(5, 4, factorisation=WeightFactorisation(1.0, 0.1), key=key)
    assert factorised.log_scale is not None and float(jnp.std(factorised.log_scale)) > 0
    z = jax.random.normal(jax.random.key(8), (5,))
    v, s_, w = (np.asarray(a, np.float64) for a in (factorised.weight, factorised.log_scale, plain.weight))
    np.testing.assert_allclose(np.exp(s_)[:, None] * v, w, rtol=1e-6)  # diag(e^s) V = W₀
    np.testing.assert_allclose(factorised(z), plain(z), rtol=1e-6, atol=1e-6)
    assert not np.allclose(factorised.weight, plain.weight)  # V = diag(e^-s) W: different parameters
    # a whole network with the same key: the same function at initialisation
    x, t = jnp.linspace(-1, 1, 7)[:, None], jnp.linspace(0, 1, 7)
    a = MLP(2, 2, 8, 1, key=key)
    b = MLP(2, 2, 8, 1, factorisation=WeightFactorisation(), key=key)
    np.testing.assert_allclose(_batch(b, x, t), _batch(a, x, t), rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # four more compiles
def test_weight_factorisation_changes_the_training_not_the_initial_function():
    key = jax.random.key(7)
    x, t = jnp.linspace(-1, 1, 7)[:, None], jnp.linspace(0, 1, 7)
    step = eqx.filter_jit(lambda m: eqx.apply_updates(m, jax.tree.map(
        lambda g: -0.1 * g, eqx.filter_grad(lambda m: jnp.sum(jax.vmap(m)(x, t) ** 2))(m))))
    a, b = MLP(2, 2, 8, 3, key=key), MLP(2, 2, 8, 3, factorisation=WeightFactorisation(), key=key)
    np.testing.assert_allclose(_batch(b, x, t), _batch(a, x, t), rtol=1e-5, atol=1e-6)
    assert float(jnp.abs(_batch(step(a), x, t) - _batch(step(b), x, t)).max()) > 1e-4


@pytest.mark.slow  # three more parameter compiles
def test_glorot_normal_has_deepxde_variance_and_zero_bias():
    layer = Dense(200, 300, init="glorot_normal", key=KEY)
    assert float(jnp.abs(layer.bias).max()) == 0.0
    np.testing.assert_allclose(float(jnp.std(layer.weight)), math.sqrt(2 / 500), rtol=0.02)
    # not truncated: Gaussian tails beyond two standard deviations (~4.6% of entries)
    assert 0.035 < float(jnp.mean(jnp.abs(layer.weight) > 2 * math.sqrt(2 / 500))) < 0.055
    custom = Dense(3, 2, init=jax.nn.initializers.constant(0.5), key=KEY)
    np.testing.assert_array_equal(custom.weight, np.full((2, 3), 0.5))
    # DeepXDE's FNN([2] + [20]*3 + [1]): 3 hidden layers of 20, 901 parameters
    net = MLP(2, "scalar", 20, 3, activation="tanh", init="glorot_normal", key=KEY)
    assert sum(p.size for p in jax.tree.leaves(eqx.filter(net, eqx.is_inexact_array))) == 2 * 20 + 20 + 2 * (420) + 21


def test_pirate_net_at_initialisation_is_its_output_layer_on_the_embedding():
    net = _network("pirate", "scalar", 5)
    assert all(float(b.alpha) == 0.0 for b in net.blocks)
    x, t = jnp.linspace(-1, 1, 9)[:, None], jnp.linspace(0, 1, 9)
    parts = eqx.filter_jit(lambda net, x, t: (jax.vmap(net.features)(x, t), jax.vmap(net)(x, t),
                                               jax.vmap(lambda xi, ti: net.hidden(net.features(xi, ti)))(x, t)))
    features, out, hidden = parts(net, x, t)
    # the blocks are the identity bit for bit: (1 - 0)·x + 0·h = x in IEEE arithmetic
    np.testing.assert_array_equal(hidden, features)
    matrix, bias = np.asarray(net.output.matrix, np.float64), np.asarray(net.output.bias, np.float64)
    np.testing.assert_allclose(out, (np.asarray(features, np.float64) @ matrix.T + bias)[:, 0], rtol=1e-5, atol=1e-6)
    # once a gate opens, the block contributes (same structure: no new compile)
    opened = eqx.tree_at(lambda m: m.blocks[0].alpha, net, jnp.asarray(0.5))
    assert float(np.abs(parts(opened, x, t)[1] - out).max()) > 1e-3


@pytest.mark.slow  # float64 compiles of the features, the fit and the network
def test_pirate_net_least_squares_output_recovers_a_linear_map_of_the_features(x64):
    net = PirateNet(2, "scalar", 8, 1, embedding=_embedding(), factorisation=WeightFactorisation(), key=KEY,
                    dtype=jnp.float64)
    k1, k2 = jax.random.split(jax.random.key(9))
    x, t = jax.random.uniform(k1, (80, 1), jnp.float64, -1, 1), jax.random.uniform(k2, (80,), jnp.float64)
    w = jnp.linspace(-1, 1, 16)
    target = _batch(lambda xi, ti: net.features(xi, ti), x, t) @ w + 0.25
    fit = eqx.filter_jit(lambda net, x, t, y, ridge: net.least_squares_output(x, t, y, ridge))
    fitted = fit(net, x, t, target, 0.0)
    np.testing.assert_allclose(_batch(fitted, x, t), target, atol=1e-10)
    np.testing.assert_allclose(fitted.output.matrix[0], w, atol=1e-8)
    np.testing.assert_allclose(fitted.output.bias[0], 0.25, atol=1e-8)
    # the initial condition of Allen–Cahn, fitted at t = 0: a good fit, not exact (a finite basis)
    x0 = jnp.linspace(-1, 1, 101)[:, None]
    u0 = x0[:, 0] ** 2 * jnp.cos(jnp.pi * x0[:, 0])
    fit0 = fit(net, x0, jnp.zeros(101), u0, 1e-10)
    assert float(jnp.linalg.norm(_batch(fit0, x0, jnp.zeros(101)) - u0) / jnp.linalg.norm(u0)) < 0.05


def test_stationary_network_and_bad_inputs_name_the_argument():
    net = _network("mlp")  # in_size 2: (x, t) with x of size 1, or a stationary x of size 2
    assert eqx.filter_eval_shape(net, jnp.array([0.1, 0.2])).shape == ()
    with pytest.raises(ValueError, match="in_size = 2"):
        net(jnp.array([0.1, 0.2]), 0.5)  # time makes 3 coordinates
    with pytest.raises(ValueError, match="`x` must be one point"):
        net(jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="`t` must be a scalar"):
        net(jnp.ones(1), jnp.ones(3))
    with pytest.raises(ValueError, match="`width`"):
        MLP(2, 1, 0, 1, key=KEY)
    with pytest.raises(ValueError, match="`out_size`"):
        MLP(2, "vector", 4, 1, key=KEY)
    with pytest.raises(ValueError, match="`activation`"):
        MLP(2, 1, 4, 1, activation="tanhh", key=KEY)
    with pytest.raises(ValueError, match="`init`"):
        Dense(2, 2, init="xavier", key=KEY)
    with pytest.raises(ValueError, match="`embedding` must take in_size = 2"):
        MLP(2, 1, 4, 1, embedding=FourierFeatures(3, 4, key=KEY), key=KEY)
    with pytest.raises(ValueError, match="must take in_size = 3"):
        Embeddings(PeriodicEmbedding(2), FourierFeatures(2, 4, key=KEY))
    with pytest.raises(ValueError, match="`axes`"):
        PeriodicEmbedding(2, axes=(2,))
    with pytest.raises(ValueError, match="`periods`"):
        PeriodicEmbedding(2, axes=(0,), periods=-1.0)
    with pytest.raises(ValueError, match="`out_size` must be even"):
        FourierFeatures(2, 5, key=KEY)
    with pytest.raises(ValueError, match="`values` must have shape"):
        _network("pirate").least_squares_output(jnp.ones((3, 1)), jnp.ones(3), jnp.ones((3, 2)))
