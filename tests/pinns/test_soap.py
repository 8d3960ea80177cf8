"""SOAP: its first update is the closed form of the method (the polar factor of a square gradient,
the unit vector of a vector's), it reaches the minimum of an ill-conditioned convex quadratic, and
bad hyperparameters are refused by name."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpde.pinns._soap import soap


@pytest.mark.slow  # ~1.3 s of CPU (the default suite keeps the quadratic)
def test_first_update_is_the_polar_factor_of_the_gradient(x64):
    rng = np.random.default_rng(0)
    g = rng.normal(size=(5, 5))
    b = rng.normal(size=7)
    grads = {"w": jnp.asarray(g), "b": jnp.asarray(b)}
    opt = soap(0.1)  # eps = 1e-8 against off-diagonal round-off ~1e-16 in the eigenbasis
    updates, _ = jax.jit(opt.update)(grads, opt.init(grads))
    # Q_Lᵀ G Q_R is diagonal (the SVD of G), so Adam's first step there is its sign: -η U Vᵀ
    u, _, vt = np.linalg.svd(g)
    np.testing.assert_allclose(updates["w"], -0.1 * u @ vt, atol=1e-6)
    w, vecs = np.linalg.eigh(g.T @ g)
    np.testing.assert_allclose(updates["w"], -0.1 * g @ vecs @ np.diag(w**-0.5) @ vecs.T, atol=1e-6)
    np.testing.assert_allclose(updates["b"], -0.1 * b / np.linalg.norm(b), atol=1e-6)


def test_reaches_the_minimum_of_an_ill_conditioned_quadratic(x64):
    rng = np.random.default_rng(1)
    a = jnp.asarray(np.linalg.qr(rng.normal(size=(8, 8)))[0] @ np.diag(np.logspace(0, 1.5, 8)))
    c = jnp.asarray(np.linalg.qr(rng.normal(size=(6, 6)))[0] @ np.diag(np.logspace(0, 1.5, 6)))
    w_star = jnp.asarray(rng.normal(size=(8, 6)))
    loss = lambda w: 0.5 * jnp.sum((a @ (w - w_star) @ c) ** 2)  # noqa: E731  Hessian cᵀc ⊗ aᵀa, condition 1e6
    steps = 1500

    def run(opt):
        def body(carry, _):
            w, s = carry
            u, s = opt.update(jax.grad(loss)(w), s, w)
            return (w + u, s), None

        w0 = jnp.zeros_like(w_star)
        (w, _), _ = jax.lax.scan(body, (w0, opt.init(w0)), None, length=steps)
        return float(jnp.linalg.norm(w - w_star) / jnp.linalg.norm(w_star))

    schedule = optax.cosine_decay_schedule(0.05, steps)
    error = run(soap(schedule, precondition_frequency=5))
    assert error < 1e-4
    assert run(optax.adam(schedule)) > 10 * error  # the eigenbasis is what helps


def test_bad_hyperparameters_are_refused():
    with pytest.raises(ValueError, match=r"soap: `b2` must be in \[0, 1\), got 1.0"):
        soap(1e-3, b2=1.0)
    with pytest.raises(ValueError, match="soap: `precondition_frequency` must be an integer >= 1, got 0"):
        soap(1e-3, precondition_frequency=0)
