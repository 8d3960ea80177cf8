"""pinn_loss: the weighted sum of the problem's terms, logged under the terms' names; its residual
vector's squared norm is the loss (with weights and causal weights); and a PINN run with adaptive
weights and resampled points resumes exactly."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpde.pinns._causal import CausalWeighting
from jaxpde.pinns._loss import pinn_loss, pinn_residual_vector
from jaxpde.pinns._sampling import R3
from jaxpde.pinns._weighting import FixedWeights, GradNormWeighting
from jaxpde.training import fit
from tests.pinns.train_toy import MLP, Decay, Poisson1D


def test_loss_is_the_weighted_sum_and_the_residual_vector_its_square_root(x64):
    problem = Poisson1D(n=16)
    model = MLP(jax.random.key(0), width=8)
    weighting = FixedWeights({"boundary/left": 10.0, "boundary/right": 3.0})
    loss_fn, extra = pinn_loss(problem, weighting, model=model, key=jax.random.key(1))
    batch = jax.jit(problem.sample)(jax.random.key(2))
    residual_fn = pinn_residual_vector(problem, weighting)

    @eqx.filter_jit
    def evaluate(model, batch, extra):
        loss, logged, new = loss_fn(model, batch, jax.random.key(3), extra)
        return loss, logged, new, problem.loss_terms(model, batch), residual_fn(model, batch, None, new)

    loss, logged, new, terms, rho = evaluate(model, batch, extra)
    assert set(logged) == {"residual", "boundary/left", "boundary/right"}
    expected = terms["residual"] + 10 * terms["boundary/left"] + 3 * terms["boundary/right"]
    assert float(loss) == pytest.approx(float(expected), rel=1e-12)
    assert float(jnp.sum(rho**2)) == pytest.approx(float(loss), rel=1e-12)
    assert int(new["step"]) == 1


@pytest.mark.slow  # three compiles of a time-dependent residual: ~5 s of CPU
def test_causal_loss_and_its_residual_vector(x64):
    # causal weights: the residual vector carries sqrt(w_k / (M n_k)) per point of chunk k
    decay = Decay(n=40)
    net = MLP(jax.random.key(4), width=8, with_time=True)
    causal = CausalWeighting(2.0, 4, t_span=(0.0, 1.0))
    loss_fn, extra = pinn_loss(decay, causal=causal)
    batch = decay.sample(jax.random.key(5))
    loss, logged, _ = eqx.filter_jit(loss_fn)(net, batch, jax.random.key(0), extra)
    residuals = decay.residuals(net, batch)
    causal_loss, w = causal.loss(residuals["residual"], batch["residual"].t)
    assert float(loss) == pytest.approx(float(causal_loss + jnp.mean(residuals["initial"] ** 2)), rel=1e-12)
    assert float(logged["causal/min_weight"]) == pytest.approx(float(w.min()), rel=1e-12)
    assert float(logged["residual"]) == pytest.approx(float(jnp.mean(residuals["residual"] ** 2)), rel=1e-12)
    rho = eqx.filter_jit(pinn_residual_vector(decay, causal=causal))(net, batch, None, extra)
    assert float(jnp.sum(rho**2)) == pytest.approx(float(loss), rel=1e-12)


def _library_poisson():
    from jaxpde import autodiff as ad
    from jaxpde.pinns import Dirichlet, Interval, Problem

    def residual(u_fn, x, t, params):
        return -ad.laplacian(u_fn)(x) - jnp.pi**2 * jnp.sin(jnp.pi * x[0])

    return Problem(residual, Interval(0.0, 1.0), (Dirichlet(0.0, on=("left", "right"), n=2),), num_points=16)


@pytest.mark.slow  # three fits compiled, checkpoints written: 66-89 s wall at load 20 (~25-30 s of CPU) each
@pytest.mark.parametrize("make_problem", [lambda: Poisson1D(n=16), _library_poisson], ids=["toy", "jaxpde.pinns.Problem"])
def test_pinn_run_with_adaptive_weights_and_resampled_points_resumes_exactly(tmp_path, make_problem):
    problem = make_problem()
    model = MLP(jax.random.key(0), width=8)
    sampling = R3(16)
    weighting = GradNormWeighting(update_every=2)
    loss_fn, extra = pinn_loss(problem, weighting, sampling=sampling, model=model, key=jax.random.key(1))
    kwargs = dict(key=jax.random.key(2), extra=extra, checkpoint_every=3, log_every=1, progress=False,
                  asynchronous_checkpoints=False)
    whole = fit(model, optax.adam(1e-2), loss_fn, problem.sample, steps=6, **kwargs)
    fit(model, optax.adam(1e-2), loss_fn, problem.sample, steps=3, out_dir=tmp_path, **kwargs)
    resumed = fit(model, optax.adam(1e-2), loss_fn, problem.sample, steps=6, out_dir=tmp_path, **kwargs)
    assert resumed.resumed_from == 3
    for a, b in zip(jax.tree.leaves((whole.model, whole.extra)), jax.tree.leaves((resumed.model, resumed.extra))):
        np.testing.assert_array_equal(a, b)
    # the weights and the population did change along the way
    assert not np.allclose(whole.extra["weights"]["boundary/left"], extra["weights"]["boundary/left"])
    assert not np.array_equal(whole.extra["points"].x, extra["points"].x)
    assert [record["step"] for record in resumed.history] == [4, 5, 6]
    assert {"residual", "weight/residual", "boundary/left"} <= set(resumed.history[0])


def test_bad_arguments_name_the_argument():
    problem = Poisson1D()
    with pytest.raises(ValueError, match="pinn_loss: a `weighting` needs the initial `model`"):
        pinn_loss(problem, GradNormWeighting(), key=jax.random.key(0))
    with pytest.raises(TypeError, match="pinn_loss: `causal` must be a CausalWeighting or None, got float"):
        pinn_loss(problem, causal=1.0)
    with pytest.raises(TypeError, match="pinn_loss: `problem` must have a `sample` method"):
        pinn_loss(object())
