"""Time marching: each window gets the previous window's solution at its start as initial
condition and its parameters as a warm start; the marched model is the right window's model on
each interval; and (slow) u_t = -u marched over two windows matches exp(-t)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.pinns._gauss_newton import GaussNewton
from jaxpde.pinns._loss import pinn_loss, pinn_residual_vector
from jaxpde.pinns._marching import Marched, march, window_edges
from jaxpde.training import fit
from tests.pinns.train_toy import MLP, Points


class Affine(eqx.Module):
    c: jax.Array

    def __call__(self, x, t):
        return self.c + x[0] + 2 * t


def test_windows_chain_their_initial_conditions_and_the_marched_model_switches():
    seen = []

    def train_window(k, span, initial, model):
        x = jnp.array([0.25])
        seen.append((k, span, None if initial is None else float(initial(x)), float(model.c)))
        return Affine(model.c + 10.0)

    marched = march(train_window, Affine(jnp.asarray(1.0)), (0.0, 3.0), 3)
    # window k starts from the model of window k-1 and its value at t_{k-1}: c + x + 2 t
    assert seen == [(0, (0.0, 1.0), None, 1.0), (1, (1.0, 2.0), 11.0 + 0.25 + 2.0, 11.0),
                    (2, (2.0, 3.0), 21.0 + 0.25 + 4.0, 21.0)]
    t = jnp.array([0.0, 0.5, 1.0, 1.5, 2.99, 3.0, 5.0])
    u = jax.jit(jax.vmap(lambda t: marched(jnp.array([0.0]), t)))(t)
    np.testing.assert_allclose(u, np.array([11, 11, 21, 21, 31, 31, 31]) + 2 * np.asarray(t), rtol=1e-6)
    assert window_edges((0.0, 1.0), [0.25, 0.5]) == (0.0, 0.25, 0.5, 1.0)
    with pytest.raises(ValueError, match=r"march: the interior window boundaries must increase strictly inside \(0.0, 1.0\)"):
        window_edges((0.0, 1.0), [0.5, 0.25])
    with pytest.raises(ValueError, match="Marched: need one more edge than models"):
        Marched((Affine(jnp.asarray(0.0)),), (0.0, 0.5, 1.0))


class DecayWindow(eqx.Module):
    """u_t + u = 0 on x in (0, 1), t in (t0, t1), u(x, t0) = initial(x) (1 without one)."""

    t0: float = eqx.field(static=True)
    t1: float = eqx.field(static=True)
    initial: object = None

    def sample_term(self, name, key, n):
        kx, kt = jax.random.split(key)
        x = jax.random.uniform(kx, (n, 1))
        t = jax.random.uniform(kt, (n,), minval=self.t0, maxval=self.t1) if name == "residual" else jnp.full((n,), self.t0)
        return Points(x, t)

    def sample(self, key):
        k1, k2 = jax.random.split(key)
        return {"residual": self.sample_term("residual", k1, 64), "initial": self.sample_term("initial", k2, 16)}

    def residuals(self, model, points):
        def pde(x, t):
            u, ut = jax.jvp(lambda s: model(x, s), (t,), (jnp.ones_like(t),))
            return ut + u

        target = (lambda x: jnp.ones(())) if self.initial is None else self.initial
        p, q = points["residual"], points["initial"]
        return {"residual": jax.vmap(pde)(p.x, p.t), "initial": jax.vmap(model)(q.x, q.t) - jax.vmap(target)(q.x)}


@pytest.mark.slow  # two Gauss-Newton fits: ~10 s
def test_marching_u_t_equals_minus_u_over_two_windows_matches_the_exact_solution(x64):
    def train_window(k, span, initial, model):
        problem = DecayWindow(*span, initial)
        loss_fn, extra = pinn_loss(problem)
        points = problem.sample(jax.random.key(10 + k))
        step = GaussNewton(pinn_residual_vector(problem), damping=1e-6, max_cg_steps=100, adaptive_damping=True)
        return fit(model, step, loss_fn, lambda key: points, steps=40, key=jax.random.key(k), extra=extra,
                   progress=False, log_every=40).model

    net = jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a,
                       MLP(jax.random.key(0), width=12, with_time=True))
    marched = march(train_window, net, (0.0, 2.0), 2)
    t = jnp.linspace(0.0, 2.0, 41)
    u = jax.vmap(lambda t: marched(jnp.array([0.3]), t))(t)
    np.testing.assert_allclose(u, np.exp(-np.asarray(t)), atol=1e-3)
    # continuity at the window boundary: the second window starts where the first ended
    left, right = (float(m(jnp.array([0.3]), jnp.asarray(1.0))) for m in marched.models)
    assert abs(left - right) < 1e-3
