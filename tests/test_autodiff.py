"""`jaxpde.autodiff` against closed forms, and its Laplacian methods against each other."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde import autodiff as ad

METHODS = ("forward", "taylor", "forward_over_reverse")


def _poly(x):
    # u = x0^3 x1 + 2 x1^2 x2 - x2^4 + x0
    return x[0] ** 3 * x[1] + 2 * x[1] ** 2 * x[2] - x[2] ** 4 + x[0]


def _poly_gradient(x):
    return jnp.array([3 * x[0] ** 2 * x[1] + 1, x[0] ** 3 + 4 * x[1] * x[2], 2 * x[1] ** 2 - 4 * x[2] ** 3])


def _poly_hessian(x):
    return jnp.array(
        [
            [6 * x[0] * x[1], 3 * x[0] ** 2, 0.0],
            [3 * x[0] ** 2, 4 * x[2], 4 * x[1]],
            [0.0, 4 * x[1], -12 * x[2] ** 2],
        ]
    )


def _trig(x):
    return jnp.sin(2 * x[0]) * jnp.cos(3 * x[1])


def _points(d, seed=0, n=5):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1.0, 1.0, (n, d)))


def _close(fn, expected, x, rtol=1e-12):
    """``fn`` vmapped over the points `x` (one compiled call) against the closed form."""
    np.testing.assert_allclose(jax.jit(jax.vmap(fn))(x), jax.vmap(expected)(x), rtol=rtol, atol=rtol)


def test_gradient_and_hessian_of_a_polynomial(x64):
    x = _points(3)
    _close(ad.gradient(_poly), _poly_gradient, x)
    _close(ad.hessian(_poly), _poly_hessian, x)


@pytest.mark.parametrize("method", METHODS)
def test_laplacian_closed_forms(x64, method):
    _close(ad.laplacian(_poly, method=method), lambda x: 6 * x[0] * x[1] + 4 * x[2] - 12 * x[2] ** 2, _points(3, 1))
    _close(ad.laplacian(_trig, method=method), lambda x: -13 * _trig(x), _points(2, 2))


def test_divergence_derivative_time_and_flux(x64):
    field = lambda x: jnp.array([x[0] ** 2 * x[1], jnp.sin(x[1]) * x[0]])  # noqa: E731
    u = lambda x, t: jnp.sin(2 * x[0]) * jnp.cos(3 * x[1]) * jnp.exp(-0.5 * t)  # noqa: E731
    a = lambda x: 1.0 + x[0] ** 2  # noqa: E731
    v = lambda x: x[0] ** 2 * x[1]  # noqa: E731
    x = _points(2, 3)
    _close(ad.divergence(field), lambda x: 2 * x[0] * x[1] + jnp.cos(x[1]) * x[0], x)
    first = [lambda x: 2 * jnp.cos(2 * x[0]), lambda x: -4 * jnp.sin(2 * x[0]), lambda x: -8 * jnp.cos(2 * x[0])]
    for order, expected in enumerate(first, 1):
        _close(lambda y: ad.derivative(u, 0, order)(y, 0.0), lambda y: expected(y) * jnp.cos(3 * y[1]), x)
    _close(lambda y: ad.derivative(u, 1, 4)(y, 0.0), lambda y: 81 * u(y, 0.0), x, rtol=1e-11)
    _close(lambda y: ad.time_derivative(u)(y, 0.7), lambda y: -0.5 * u(y, 0.7), x)
    # ∇·(a∇v) = ∂0((1 + x0²) 2 x0 x1) + ∂1((1 + x0²) x0²) = 2 x1 + 6 x0² x1.
    _close(ad.div_flux(v, a), lambda y: 2 * y[1] + 6 * y[0] ** 2 * y[1], x)
    _close(ad.div_flux(v, 2.0), lambda y: 4 * y[1], x)
    # Extra arguments pass through: Δ of u(·, t) at t = 0.3.
    _close(lambda y: ad.laplacian(u)(y, 0.3), lambda y: -13 * u(y, 0.3), x)


def _mlp(d, out=1, seed=0):
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((d, 16)) / np.sqrt(d)
    w2 = rng.standard_normal((16, 16)) / 4
    w3 = rng.standard_normal((16, out)) / 4

    def u(x):
        h = jnp.tanh(jnp.tanh(x @ w1) @ w2)
        y = h @ w3
        return y[0] if out == 1 else y

    return u


@pytest.mark.parametrize("d", [2, 5])
def test_laplacian_methods_agree_on_an_mlp(x64, d):
    u = _mlp(d, seed=d)
    x = _points(d, seed=d, n=8)
    values = {m: jax.jit(jax.vmap(ad.laplacian(u, method=m)))(x) for m in METHODS}
    hessian_trace = jax.jit(jax.vmap(lambda y: jnp.trace(jax.hessian(u)(y))))(x)
    for m in METHODS:
        np.testing.assert_allclose(values[m], hessian_trace, rtol=1e-12, atol=1e-13)


def test_vector_valued_functions(x64):
    u = _mlp(3, out=2, seed=7)
    x = _points(3, seed=7, n=1)[0]
    hessian = jax.jit(jax.hessian(u))(x)  # (2, 3, 3)
    for m in METHODS:
        np.testing.assert_allclose(jax.jit(ad.laplacian(u, method=m))(x), jnp.trace(hessian, axis1=1, axis2=2), rtol=1e-12)
    assert jax.eval_shape(ad.gradient(u), x).shape == (2, 3)
    assert jax.eval_shape(ad.hessian(u), x).shape == (2, 3, 3)
    # Gray–Scott-like pair of closed forms: Δ(sin x0, x0² x1) = (-sin x0, 2 x1).
    pair = lambda y: jnp.stack([jnp.sin(y[0]), y[0] ** 2 * y[1]])  # noqa: E731
    np.testing.assert_allclose(ad.laplacian(pair)(x), [-jnp.sin(x[0]), 2 * x[1]], rtol=1e-12)


def test_derivatives_come_together_from_one_pass():
    # (u, u_x, u_xx, u_xxx) of sin(2 x0) cos(3 x1) along x0, and along x1 with a time argument.
    x = jnp.array([0.3, -0.7])
    s, c = jnp.sin(2 * x[0]), jnp.cos(3 * x[1])
    np.testing.assert_allclose(ad.derivatives(_trig, 0, 3)(x), [s * c, 2 * jnp.cos(2 * x[0]) * c, -4 * s * c, -8 * jnp.cos(2 * x[0]) * c], rtol=1e-6)
    timed = lambda y, t: _trig(y) * jnp.exp(-t)  # noqa: E731
    values = ad.derivatives(timed, 1, 2)(x, 0.5)
    expected = jnp.array([s * c, -3 * s * jnp.sin(3 * x[1]), -9 * s * c]) * jnp.exp(-0.5)
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    # The last entry is `derivative`'s; the pair (value, Laplacian) is `laplacian`'s with the value.
    np.testing.assert_allclose(values[-1], ad.derivative(timed, 1, 2)(x, 0.5), rtol=1e-7)
    for d in (1, 3):
        y = _points(d, seed=d)[0]
        u, lap = jax.jit(ad.value_and_laplacian(_poly if d == 3 else _trig_1d))(y)
        np.testing.assert_allclose(u, (_poly if d == 3 else _trig_1d)(y), rtol=1e-7)
        np.testing.assert_allclose(lap, ad.laplacian(_poly if d == 3 else _trig_1d)(y), rtol=1e-6)
    with pytest.raises(ValueError, match="derivatives: `order` must be a positive integer, got 0"):
        ad.derivatives(_trig, 0, 0)
    with pytest.raises(ValueError, match=r"derivatives: `axis` must be in \[0, 2\), got 2"):
        ad.derivatives(_trig, 2, 1)(x)


def _trig_1d(x):
    return jnp.sin(2 * x[0])


def test_clear_errors():
    with pytest.raises(ValueError, match=r"jaxpde.autodiff.laplacian: `x` must be one point of shape \(d,\), got shape \(4, 2\)"):
        ad.laplacian(_trig)(jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="`method` must be one of"):
        ad.laplacian(_trig, method="fd")
    with pytest.raises(ValueError, match="`order` must be a positive integer, got 0"):
        ad.derivative(_trig, 0, 0)
    with pytest.raises(ValueError, match=r"`axis` must be in \[0, 2\), got 5"):
        ad.derivative(_trig, 5)(jnp.ones(2))
    with pytest.raises(ValueError, match="must return a vector field with a last axis of size d = 2"):
        ad.divergence(_trig)(jnp.ones(2))
    with pytest.raises(ValueError, match="`t` must be a time"):
        ad.time_derivative(lambda x, t: x[0])(jnp.ones(1), None)
    with pytest.raises(NotImplementedError, match="no rule for the primitive reduce_prod"):
        ad.laplacian(lambda x: jnp.prod(jnp.sin(x)), method="taylor")(jnp.ones(2))
    # Integer points are promoted, not rejected by jax.grad.
    assert float(ad.laplacian(lambda x: x[0] ** 2)(jnp.array([1]))) == pytest.approx(2.0)
