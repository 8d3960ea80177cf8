"""Causal weights against their formula, computed by hand per chunk; their gradient is stopped."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.pinns._causal import CausalWeighting


def test_causal_weights_and_loss_match_the_formula(x64):
    rng = np.random.default_rng(0)
    t = rng.uniform(0.0, 2.0, 200)
    r = rng.normal(size=200) * (1 + t)  # later residuals larger
    eps, m = 0.7, 5
    edges = np.linspace(0.0, 2.0, m + 1)
    chunk = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, m - 1)
    losses = np.array([np.mean(r[chunk == i] ** 2) for i in range(m)])
    weights = np.array([np.exp(-eps * losses[:i].sum()) for i in range(m)])
    causal = CausalWeighting(eps, m, t_span=(0.0, 2.0))

    @jax.jit
    def everything(r, t):  # one compile
        chunk_losses = causal.chunk_losses(r, t)
        loss, w = causal.loss(r, t)
        grad = jax.grad(lambda r: causal.loss(r, t)[0])(r)
        # without t_span the span of the points' times is used; a vector residual averages its components
        return chunk_losses, loss, w, grad, CausalWeighting(eps, m).chunk_losses(jnp.stack([r, r], axis=1), t)

    chunk_losses, loss, w, grad, span = everything(jnp.asarray(r), jnp.asarray(t))
    np.testing.assert_allclose(chunk_losses, losses, rtol=1e-12)
    np.testing.assert_allclose(w, weights, rtol=1e-12)
    assert w[0] == 1.0 and np.all(np.diff(w) < 0)
    assert float(loss) == pytest.approx(np.mean(weights * losses), rel=1e-12)
    # d loss / d r_p = w_chunk(p) · 2 r_p / (M n_chunk(p)): the weights are not differentiated
    counts = np.bincount(chunk, minlength=m)
    np.testing.assert_allclose(grad, weights[chunk] * 2 * r / (m * counts[chunk]), rtol=1e-10)
    chunk = np.clip(np.floor((t - t.min()) / (t.max() - t.min()) * m), 0, m - 1).astype(int)
    np.testing.assert_allclose(span, [np.mean(r[chunk == i] ** 2) for i in range(m)], rtol=1e-12)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="CausalWeighting: `chunks` must be an integer >= 1, got 0"):
        CausalWeighting(1.0, 0)
    with pytest.raises(ValueError, match="CausalWeighting: `epsilon` must be a number >= 0, got -1"):
        CausalWeighting(-1, 4)
    with pytest.raises(ValueError, match="the residual points have no time"):
        CausalWeighting(1.0, 4).chunk_losses(jnp.zeros(3), None)
