"""Loss weightings against a direct computation: grad-norm weights from each term's own gradient,
NTK weights from the dense per-term Jacobian, the moving average, and bad input refused."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxpde.pinns._weighting import FixedWeights, GradNormWeighting, NTKWeighting
from tests.pinns.train_toy import MLP, Points, Poisson1D


def _setup():
    problem = Poisson1D(n=12)
    model = MLP(jax.random.key(0), width=8)
    x = np.random.default_rng(1).uniform(size=(12, 1))  # NumPy points: nothing to compile
    points = {"residual": Points(x), "boundary/left": Points(np.zeros((1, 1))), "boundary/right": Points(np.ones((1, 1)))}
    return problem, model, points


def test_grad_norm_weights_match_each_terms_own_gradient_and_average_with_momentum(x64):
    problem, model, points = _setup()
    names = ("residual", "boundary/left", "boundary/right")

    weighting = GradNormWeighting(update_every=10, momentum=0.75)
    other = MLP(jax.random.key(7), width=8)

    def gradients(model):
        return [eqx.filter_grad(lambda m: problem.loss_terms(m, points)[name])(model) for name in names]

    @eqx.filter_jit
    def everything(model, other):  # one compile: the direct gradients and the weighting's states
        state = weighting.init(problem, model, points)
        new = weighting.weights(weighting.update(state, problem, other, points))
        return gradients(model), state, new, weighting.init(problem, other, points)

    grads, state, new, target = everything(model, other)

    def norms(grads):
        flat = [ravel_pytree(eqx.filter(g, eqx.is_inexact_array))[0] for g in grads]
        return {name: float(np.linalg.norm(g)) for name, g in zip(names, flat)}

    direct = norms(grads)
    expected = {name: sum(direct.values()) / direct[name] for name in names}
    for name in names:
        assert float(state[name]) == pytest.approx(expected[name], rel=1e-10)
    # the boundary terms are far from balanced with the residual at initialisation
    assert max(expected.values()) / min(expected.values()) > 5
    # the update: λ ← α λ + (1 − α) λ̂(other), λ̂(other) being what init (checked above) computes
    for name in names:
        assert float(new[name]) == pytest.approx(0.75 * expected[name] + 0.25 * float(target[name]), rel=1e-10)
    assert abs(float(target["residual"]) - expected["residual"]) > 1e-3 * expected["residual"]  # a different model


@pytest.mark.slow  # dense Jacobians and two per-point kernels: ~3.5 s of CPU
def test_ntk_weights_match_the_trace_of_the_dense_kernel(x64):
    problem, model, points = _setup()
    flat, unravel = ravel_pytree(eqx.filter(model, eqx.is_inexact_array))
    rest = eqx.filter(model, eqx.is_inexact_array, inverse=True)

    @eqx.filter_jit
    def everything(model, flat):  # one compile: the dense Jacobians and both weightings' states
        jacs = jax.jacfwd(lambda f: problem.residuals(eqx.combine(unravel(f), rest), points))(flat)
        return jacs, NTKWeighting().init(problem, model, points), NTKWeighting(max_points=5).init(problem, model, points)

    jacs, state, state5 = everything(model, flat)
    traces = {name: float(np.trace(jac @ jac.T)) / jac.shape[0] for name, jac in jacs.items()}
    expected = {name: sum(traces.values()) / traces[name] for name in traces}
    for name in traces:
        assert float(state[name]) == pytest.approx(expected[name], rel=1e-9)
    # max_points: the kernel diagonal of the first 5 residual points only
    jac = jacs["residual"][:5]
    sub = dict(traces, residual=float(np.trace(jac @ jac.T)) / 5)
    assert float(state5["residual"]) == pytest.approx(sum(sub.values()) / sub["residual"], rel=1e-9)


@pytest.mark.slow  # ~1.8 s of CPU: the network's initialisation and a trace of the loss
def test_fixed_weights_default_to_one_and_refuse_unknown_terms():
    problem, model, points = _setup()
    state = FixedWeights({"boundary/left": 10.0}).init(problem, model, points)
    assert {k: float(v) for k, v in state.items()} == {"residual": 1.0, "boundary/left": 10.0, "boundary/right": 1.0}
    with pytest.raises(ValueError, match=r"FixedWeights: `weights` names terms \['boundary/lft'\]"):
        FixedWeights({"boundary/lft": 1.0}).init(problem, model, points)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="FixedWeights: the weight of 'residual' must be a number >= 0, got -1"):
        FixedWeights({"residual": -1})
    with pytest.raises(ValueError, match="GradNormWeighting: `momentum` must be a number in \\[0, 1\\), got 1.0"):
        GradNormWeighting(momentum=1.0)
    with pytest.raises(ValueError, match="NTKWeighting: `update_every` must be an integer >= 1, got 0"):
        NTKWeighting(update_every=0)
