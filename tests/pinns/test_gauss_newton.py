"""Gauss–Newton: a linear least-squares problem (a convex quadratic) solved in one step as the
damping vanishes; a nonlinear one to its minimum under fit; and no dense Jacobian anywhere in the
step's program at 10⁶ parameters × 10⁴ residuals (which would need 40 GB), checked on the jaxpr and
by running the step."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpde.pinns._gauss_newton import GaussNewton
from jaxpde.training import fit


class Vector(eqx.Module):
    theta: jax.Array


def _no_extra_loss(residual_fn):
    def loss_fn(model, batch, key, extra):
        r = residual_fn(model, batch, key, extra)
        return jnp.sum(r**2), {"r": jnp.sum(r**2)}, extra

    return loss_fn


def test_linear_least_squares_in_one_step(x64):
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.normal(size=(40, 8)) @ np.diag(np.logspace(0, 2, 8)))  # condition number ~ 100
    b = jnp.asarray(rng.normal(size=40))
    exact = np.linalg.lstsq(np.asarray(a), np.asarray(b), rcond=None)[0]

    def residual_fn(model, batch, key, extra):
        return a @ model.theta - b

    step = GaussNewton(residual_fn, damping=1e-14, cg_rtol=1e-13, max_cg_steps=64)
    model = Vector(jnp.zeros(8))
    state = step.init(model)
    out = eqx.filter_jit(step)(_no_extra_loss(residual_fn), model, state, None, jax.random.key(0), None)
    np.testing.assert_allclose(out.model.theta, exact, rtol=1e-9, atol=1e-11)
    assert float(out.loss) == pytest.approx(float(jnp.sum(b**2)), rel=1e-14)  # the loss of the model given
    assert float(out.opt_state["step_size"]) == 1.0 and 0 < int(out.opt_state["cg_steps"]) <= 64


@pytest.mark.slow  # a fit compile: ~4 s of CPU
def test_a_nonlinear_least_squares_fit_reaches_its_minimum_under_fit(x64):
    # nonlinear: y = p0 exp(p1 x) + p2 from exact data, through fit, from a distant start
    x = jnp.linspace(0, 1, 30)
    p_true = jnp.array([2.0, -1.5, 0.5])

    def exponential(model, batch, key, extra):
        p = model.theta
        return p[0] * jnp.exp(p[1] * x) + p[2] - (p_true[0] * jnp.exp(p_true[1] * x) + p_true[2])

    result = fit(Vector(jnp.array([1.0, 0.0, 0.0])), GaussNewton(exponential, damping=1e-10, cg_rtol=1e-12),
                 _no_extra_loss(exponential), lambda key: None, steps=25, key=jax.random.key(0), extra={},
                 progress=False, log_every=25)
    np.testing.assert_allclose(result.model.theta, p_true, rtol=1e-8)


class Big(eqx.Module):
    w: jax.Array  # 10⁶ parameters


def _avals(jaxpr):
    for eqn in jaxpr.eqns:
        yield from (v.aval for v in eqn.outvars)
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                if hasattr(sub, "eqns"):
                    yield from _avals(sub)
                elif hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                    yield from _avals(sub.jaxpr)


def test_the_step_builds_no_dense_jacobian():
    n_res, width = 10_000, 100
    n_params = n_res * width
    target = jnp.cos(jnp.arange(n_res, dtype=jnp.float32))

    def residual_fn(model, batch, key, extra):
        # every residual depends on its own 100 parameters, nonlinearly: J is 10⁴ × 10⁶
        return jnp.sum(jnp.sin(model.w.reshape(n_res, width)), axis=1) / 10 - target

    step = GaussNewton(residual_fn, damping=1e-3, max_cg_steps=10)
    model = Big(0.01 * jax.random.normal(jax.random.key(0), (n_params,)))
    state = step.init(model)
    loss_fn = _no_extra_loss(residual_fn)
    jaxpr = jax.make_jaxpr(lambda m, s: step(loss_fn, m, s, None, jax.random.key(0), None))(model, state)
    sizes = [int(np.prod(aval.shape)) for aval in _avals(jaxpr.jaxpr) if hasattr(aval, "shape")]
    assert len(sizes) > 50 and max(sizes) == n_params  # nothing larger than one parameter vector
    out = eqx.filter_jit(step)(loss_fn, model, state, None, jax.random.key(0), None)
    before, after = float(out.loss), float(jnp.sum(residual_fn(out.model, None, None, None) ** 2))
    assert after < 1e-3 * before and 1 <= int(out.opt_state["cg_steps"]) <= 10


def test_adaptive_damping_and_bad_arguments():
    with pytest.raises(ValueError, match="GaussNewton: `damping` must be a number >= 0, got -1"):
        GaussNewton(lambda *a: 0, damping=-1)
    with pytest.raises(ValueError, match="GaussNewton: `step_sizes` must be an integer >= 1, got 0"):
        GaussNewton(lambda *a: 0, step_sizes=0)
    with pytest.raises(TypeError, match="GaussNewton: `residual_fn` must be callable"):
        GaussNewton(3.0)
