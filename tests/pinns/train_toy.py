"""Tiny problems satisfying the jaxpde.pinns problem contract (sample, sample_term, residuals,
loss_terms on dicts of Points), for the training-method tests: they depend on the contract only."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array


class Points(eqx.Module):
    x: Array
    t: Array | None = None
    values: Array | None = None


class MLP(eqx.Module):
    """One point in (x of shape (d,), and t if time-dependent), a scalar out."""

    net: eqx.nn.MLP
    with_time: bool = eqx.field(static=True, default=False)

    def __init__(self, key, d=1, width=16, depth=2, with_time=False):
        self.with_time = with_time
        self.net = eqx.nn.MLP(d + int(with_time), "scalar", width, depth, jnp.tanh, key=key)

    def __call__(self, x, t=None):
        return self.net(x if t is None else jnp.concatenate([x, t[None]]))


class Poisson1D(eqx.Module):
    """−u'' = π² sin(πx) on (0, 1), u(0) = u(1) = 0; u = sin(πx). Terms residual, boundary/left, boundary/right."""

    n: int = eqx.field(static=True, default=32)

    def exact(self, x):
        return jnp.sin(jnp.pi * x[0])

    def sample_term(self, name, key, n):
        if name == "residual":
            return Points(jax.random.uniform(key, (n, 1)))
        return Points(jnp.full((n, 1), 0.0 if name == "boundary/left" else 1.0))

    def sample(self, key):
        keys = jax.random.split(key, 3)
        return {"residual": self.sample_term("residual", keys[0], self.n),
                "boundary/left": self.sample_term("boundary/left", keys[1], 1),
                "boundary/right": self.sample_term("boundary/right", keys[2], 1)}

    def residuals(self, model, points):
        def pde(x):
            uxx = jax.hessian(lambda y: model(y))(x)[0, 0]
            return -uxx - jnp.pi**2 * jnp.sin(jnp.pi * x[0])

        out = {}
        for name, p in points.items():
            out[name] = jax.vmap(pde)(p.x) if name == "residual" else jax.vmap(model)(p.x)
        return out

    def loss_terms(self, model, points):
        return {name: jnp.mean(r**2) for name, r in self.residuals(model, points).items()}


class Decay(eqx.Module):
    """u_t + u = 0 for t in (0, 1), x in (0, 1) a passive coordinate, u(x, 0) = 1: u = exp(−t)."""

    n: int = eqx.field(static=True, default=32)

    def sample_term(self, name, key, n):
        kx, kt = jax.random.split(key)
        x = jax.random.uniform(kx, (n, 1))
        t = jax.random.uniform(kt, (n,)) if name == "residual" else jnp.zeros((n,))
        return Points(x, t)

    def sample(self, key):
        k1, k2 = jax.random.split(key)
        return {"residual": self.sample_term("residual", k1, self.n), "initial": self.sample_term("initial", k2, 8)}

    def residuals(self, model, points):
        def pde(x, t):
            u, ut = jax.jvp(lambda s: model(x, s), (t,), (jnp.ones_like(t),))
            return ut + u

        out = {}
        for name, p in points.items():
            out[name] = jax.vmap(pde)(p.x, p.t) if name == "residual" else jax.vmap(model)(p.x, p.t) - 1.0
        return out

    def loss_terms(self, model, points):
        return {name: jnp.mean(r**2) for name, r in self.residuals(model, points).items()}
