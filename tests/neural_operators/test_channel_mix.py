"""channel_mix against `jnp.tensordot(W, x, axes=(1, 0))` under every transformation a model meets
(jit, grad, jvp, vmap over either argument or both, at any axis, nested vmap, vmap of grad,
jacfwd, jacrev, hessian, linear_transpose, checkpoint, complex inputs), in float64; its batched
form is one batched dot_general with no transpose of the field; bad shapes are refused."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.neural_operators._channel_mix import channel_mix


def tensordot(w, x):
    return jnp.tensordot(w, x, axes=(1, 0))


def _loss(y):
    return jnp.sum(jnp.sin(y))


def arrays(dtype=jnp.float64):
    """A weight, a field, a batch of fields and a batch of weights."""
    keys = jax.random.split(jax.random.key(0), 4)
    shapes = [(3, 2), (2, 5, 4), (6, 2, 5, 4), (6, 3, 2)]
    return [jax.random.normal(k, shape, dtype) for k, shape in zip(keys, shapes)]


CASES = {
    "eager": lambda f, W, X, XS, WS: f(W, X),
    "jit": lambda f, W, X, XS, WS: jax.jit(f)(W, X),
    "grad": lambda f, W, X, XS, WS: jax.grad(lambda w, x: _loss(f(w, x)), (0, 1))(W, X),
    "vmap over x": lambda f, W, X, XS, WS: jax.vmap(f, (None, 0))(W, XS),
    "vmap over w": lambda f, W, X, XS, WS: jax.vmap(f, (0, None))(WS, X),
    "vmap over both": lambda f, W, X, XS, WS: jax.vmap(f)(WS, XS),
    "vmap at axis 2": lambda f, W, X, XS, WS: jax.vmap(f, (None, 2), 1)(W, jnp.moveaxis(XS, 0, 2)),
    "grad of vmap": lambda f, W, X, XS, WS: jax.grad(lambda w, x: _loss(jax.vmap(f, (None, 0))(w, x)), (0, 1))(W, XS),
    "vmap of grad": lambda f, W, X, XS, WS: jax.vmap(jax.grad(lambda w, x: _loss(f(w, x)), (0, 1)), (None, 0))(W, XS),
    "jvp": lambda f, W, X, XS, WS: jax.jvp(f, (W, X), (WS[0], XS[0])),
    "jacfwd": lambda f, W, X, XS, WS: jax.jacfwd(lambda w: jnp.tanh(jax.vmap(f, (None, 0))(w, XS)))(W),
    "jacrev": lambda f, W, X, XS, WS: jax.jacrev(lambda x: jnp.tanh(f(W, x)))(X),
    "hessian": lambda f, W, X, XS, WS: jax.hessian(lambda w: _loss(jax.vmap(f, (None, 0))(w, XS)))(W),
    "nested vmap": lambda f, W, X, XS, WS: jax.vmap(jax.vmap(f, (None, 0)), (0, 0))(WS, jnp.stack([XS] * 6)),
    "linear_transpose": lambda f, W, X, XS, WS: jax.linear_transpose(lambda x: f(W, x), X)(jnp.ones((3, 5, 4))),
    "checkpoint": lambda f, W, X, XS, WS: jax.grad(lambda w: _loss(jax.checkpoint(lambda w: jax.vmap(f, (None, 0))(w, XS))(w)))(W),
    "complex": lambda f, W, X, XS, WS: jax.grad(lambda w, x: jnp.sum(jnp.abs(f(w, x)) ** 2), (0, 1))(W, X * (1 + 1j)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_equals_tensordot_under_every_transformation(x64, case):
    data = arrays()
    got, expected = CASES[case](channel_mix, *data), CASES[case](tensordot, *data)
    for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def test_batched_form_is_one_batched_product_without_transposing_the_field():
    W, _, XS, _ = arrays(jnp.float32)
    jaxpr = jax.make_jaxpr(jax.vmap(channel_mix, (None, 0)))(W, XS)
    names = [e.primitive.name for e in jaxpr.jaxpr.eqns]
    dots = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "dot_general"]
    assert len(dots) == 1 and dots[0].params["dimension_numbers"][1] == ((0,), (0,)), names
    assert "transpose" not in names, names


def test_mixed_dtypes_promote_and_bad_shapes_are_refused(x64):
    W, X, XS, _ = arrays()
    assert channel_mix(W.astype(jnp.float32), X).dtype == jnp.float64
    with pytest.raises(ValueError, match=r"channel_mix: `weight` must be \(c_out, c_in\).*\(3, 2\) and \(6, 2, 5, 4\)"):
        channel_mix(W, XS)
    with pytest.raises(ValueError, match="channel_mix"):
        channel_mix(W[0], X)
