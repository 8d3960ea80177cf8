"""Deep equilibrium layers against ground truth: the CGS linear fixed point is the dense solve, the
contractive cells' Lipschitz bounds hold on their dense Jacobians, every random start reaches the
same fixed point, and the implicit gradient matches central finite differences and
backpropagation through the iterations (float64)."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.implicit._contractive import ContractiveLinearCell, FourierCell, spectral_norm
from jaxpde.implicit._deq import DeepEquilibrium, EquilibriumOperator, WeightTied

TIGHT = dict(rtol=1e-12, atol=1e-12, max_steps=400, adjoint_rtol=1e-12)


def _inflate(cell, factor):
    """Every weight times `factor`: the normalisation, not the initialisation, must keep it contractive."""
    return jax.tree.map(lambda a: a * factor if eqx.is_inexact_array(a) else a, cell)


def _linear_cell(key=0):
    return _inflate(ContractiveLinearCell(6, 3, gamma=0.8, key=jax.random.key(key)), 4.0)


def _fourier_cell(gamma=0.7, key=0):
    return _inflate(FourierCell(3, (3, 3), gamma=gamma, key=jax.random.key(key)), 5.0)


def test_linear_cell_fixed_point_is_the_dense_solve_from_every_start(x64):
    cell = _linear_cell()
    x = jax.random.normal(jax.random.key(1), (3,))
    transition = cell.transition(x)
    assert float(jnp.linalg.norm(transition, 2)) < cell.gamma  # ‖A‖ was inflated to ≫ 1
    assert float(spectral_norm(cell.transition_weight)) > 2
    exact = jnp.linalg.solve(jnp.eye(6) - transition, cell.inject(x))
    starts = 10.0 * jax.random.normal(jax.random.key(10), (4, 6))
    deq = DeepEquilibrium(cell, **TIGHT)  # Anderson; plain iteration is `WeightTied`'s test
    solutions = eqx.filter_jit(jax.vmap(lambda z0: deq.solve(x, z0).value))(starts)
    np.testing.assert_allclose(solutions, jnp.broadcast_to(exact, (4, 6)), rtol=0, atol=1e-9)


def test_fourier_cell_bound_holds_on_the_dense_jacobian(x64):
    shape = (3, 8, 7)  # odd s2: the Nyquist column is absent; 2*m1 = 6 <= 8
    cell = _fourier_cell(0.7)
    assert float(cell._norm_bound()) > 2  # the inflated weights: the scaling is what contracts
    # the linear part's matrix, column by column (linear: its Jacobian anywhere)
    jacobian = eqx.filter_jit(jax.jacfwd(lambda c, v: c.linear(v.reshape(shape)).reshape(-1), argnums=1))(
        cell, jnp.zeros(int(np.prod(shape))))
    norm = float(jnp.linalg.norm(jacobian, 2))
    bound = float(cell.lipschitz()) / 1.129  # GELU's slope bound divided out: the linear part's bound
    assert norm <= bound * (1 + 1e-12)
    assert norm >= 0.5 * bound  # and not vacuous
    assert float(cell.lipschitz()) <= 0.7 * (1 + 1e-12)
    # the whole nonlinear map contracts by γ between random pairs
    keys = jax.random.split(jax.random.key(2), 3)
    z1, z2, x = (3.0 * jax.random.normal(k, shape) for k in keys)
    assert float(jnp.linalg.norm(cell(z1, x) - cell(z2, x))) <= 0.7 * float(jnp.linalg.norm(z1 - z2))


@pytest.mark.slow  # ~6 s CPU; the linear cell's random-start test runs by default
def test_fourier_deq_reaches_one_fixed_point_from_random_starts(x64):
    cell = _fourier_cell(0.9)
    x = jax.random.normal(jax.random.key(3), (3, 8, 8))
    deq = DeepEquilibrium(cell, **TIGHT)
    starts = jnp.concatenate([jnp.zeros((1, *x.shape)), 5.0 * jax.random.normal(jax.random.key(20), (3, *x.shape))])
    solutions = eqx.filter_jit(jax.vmap(lambda z0: deq.solve(x, z0).value))(starts)
    reference = solutions[0]
    assert float(jnp.max(jnp.abs(cell(reference, x) - reference))) < 1e-10
    np.testing.assert_allclose(solutions, jnp.broadcast_to(reference, solutions.shape), rtol=0, atol=1e-9)


def _central_difference(f, tree, direction, eps=1e-5):
    step = lambda t: jax.tree.map(lambda a, d: a + t * d, tree, direction)
    return (f(step(eps)) - f(step(-eps))) / (2 * eps)  # error O(eps²) ~ 1e-10 relative


@pytest.mark.parametrize("kind", ["linear", pytest.param("fourier", marks=pytest.mark.slow)])  # fourier: ~15 s CPU
def test_implicit_gradient_matches_finite_differences_and_unrolled(kind, x64):
    if kind == "linear":
        cell, x = _linear_cell(), jax.random.normal(jax.random.key(4), (3,))
    else:
        cell, x = _fourier_cell(0.8), jax.random.normal(jax.random.key(4), (3, 8, 8))
    weights = jax.random.normal(jax.random.key(5), cell.init(x).shape)
    params, static = eqx.partition(cell, eqx.is_inexact_array)

    def loss(layer):
        def f(p, x):
            return jnp.sum(weights * jnp.sin(layer(eqx.combine(p, static))(x)))

        return f

    f = jax.jit(loss(lambda c: DeepEquilibrium(c, **TIGHT)))  # one compile for the four evaluations
    grad_p, grad_x = jax.jit(jax.grad(f, argnums=(0, 1)))(params, x)
    # Unrolled references: backpropagation through 300 plain iterations (the error of the
    # iteration's derivative falls like k γᵏ, γ ≤ 0.8), and — slow — through the DEQ solver's own.
    references = [loss(lambda c: WeightTied(c, 300))]
    if kind == "fourier":
        references.append(loss(lambda c: DeepEquilibrium(c, adjoint="unrolled", **TIGHT)))
    for reference in references:
        ref_p, ref_x = jax.jit(jax.grad(reference, argnums=(0, 1)))(params, x)
        for implicit, unrolled in zip(jax.tree.leaves((grad_p, grad_x)), jax.tree.leaves((ref_p, ref_x))):
            np.testing.assert_allclose(implicit, unrolled, rtol=1e-8, atol=1e-10)

    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(6), len(leaves))
    direction = jax.tree.unflatten(treedef, [jax.random.normal(k, a.shape) for k, a in zip(keys, leaves)])
    exact = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grad_p), jax.tree.leaves(direction)))
    fd = _central_difference(lambda p: f(p, x), params, direction)
    assert abs(float(fd - exact)) <= 1e-6 * abs(float(exact))
    dx = jax.random.normal(jax.random.key(7), x.shape)
    fd_x = _central_difference(lambda y: f(params, y), x, dx)
    assert abs(float(fd_x - jnp.vdot(grad_x, dx))) <= 1e-6 * abs(float(jnp.vdot(grad_x, dx)))


@pytest.mark.slow  # ~8 s CPU: the solver's checkpointed reverse mode compiles slowly
def test_unrolled_adjoint_agrees_with_the_implicit_one_on_the_linear_cell(x64):
    cell, x = _linear_cell(), jax.random.normal(jax.random.key(4), (3,))
    grads = [jax.grad(lambda c: jnp.sum(jnp.sin(DeepEquilibrium(c, adjoint=adjoint, **TIGHT)(x))))(cell)
             for adjoint in ("implicit", "unrolled")]
    for implicit, unrolled in zip(*(jax.tree.leaves(eqx.filter(g, eqx.is_inexact_array)) for g in grads)):
        np.testing.assert_allclose(implicit, unrolled, rtol=1e-8, atol=1e-10)


def test_weight_tied_is_the_truncated_iteration_and_tends_to_the_equilibrium(x64):
    cell = _linear_cell()
    x = jax.random.normal(jax.random.key(8), (3,))
    z = cell.init(x)
    for _ in range(3):
        z = cell(z, x)
    np.testing.assert_allclose(WeightTied(cell, 3)(x), z, rtol=1e-14, atol=1e-14)
    # ‖T(x)‖ < 0.8: 200 layers are within 0.8^200 of the fixed point
    np.testing.assert_allclose(WeightTied(cell, 200)(x), DeepEquilibrium(cell, **TIGHT)(x), rtol=0, atol=1e-10)


def test_unconverged_equilibrium_raises_instead_of_returning_a_state():
    cell = _inflate(FourierCell(2, (1, 1), gamma=None, activation="relu", key=jax.random.key(0)), 30.0)
    x = jax.random.normal(jax.random.key(9), (2, 4, 4))
    deq = DeepEquilibrium(cell, solver="picard", max_steps=5)
    with pytest.raises(eqx.EquinoxRuntimeError, match="did not converge"):
        jax.block_until_ready(deq(x))


@pytest.mark.slow  # ~5 s CPU of compiles; deq-darcy's run exercises the same composition
def test_equilibrium_operator_maps_one_sample_and_batches_with_vmap():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    operator = EquilibriumOperator(eqx.nn.Conv2d(1, 4, 1, key=k1),
                                   DeepEquilibrium(FourierCell(4, (2, 2), gamma=0.5, key=k2), solver="picard"),
                                   eqx.nn.Conv2d(4, 1, 1, key=k3))
    a = jax.random.normal(jax.random.key(1), (2, 1, 8, 8))
    u = jax.vmap(operator)(a)
    assert u.shape == (2, 1, 8, 8) and u.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(u)))
    # the same cell, weight-tied: the same parameters
    tied = dataclasses.replace(operator, core=WeightTied(operator.core.cell, 4))
    count = lambda m: sum(leaf.size for leaf in jax.tree.leaves(eqx.filter(m, eqx.is_inexact_array)))
    assert count(tied) == count(operator)


def test_bad_arguments_are_refused_naming_them():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="`gamma`"):
        ContractiveLinearCell(4, 2, gamma=1.0, key=key)
    with pytest.raises(ValueError, match="`gamma`"):
        FourierCell(4, (2, 2), gamma=1.5, key=key)
    with pytest.raises(ValueError, match="`modes`"):
        FourierCell(4, (2,), key=key)
    with pytest.raises(ValueError, match="`activation`"):
        FourierCell(4, (2, 2), activation="swish", key=key)
    cell = FourierCell(4, (3, 3), gamma=0.5, key=key)
    with pytest.raises(ValueError, match="state must have shape"):
        cell(jnp.zeros((4, 4, 4)), jnp.zeros((4, 4, 4)))  # 2*3 > 4
    with pytest.raises(ValueError, match="`solver`"):
        DeepEquilibrium(cell, solver="broyden")
    with pytest.raises(ValueError, match="`adjoint`"):
        DeepEquilibrium(cell, adjoint="phantom")
    with pytest.raises(ValueError, match="`max_steps`"):
        DeepEquilibrium(cell, max_steps=0)
    with pytest.raises(TypeError, match="`cell`"):
        DeepEquilibrium(eqx.nn.Linear(2, 2, key=key))
    with pytest.raises(ValueError, match="`depth`"):
        WeightTied(cell, 0)
