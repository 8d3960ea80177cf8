"""Emulators: the increment parameterisation against a known map (the heat semigroup), unrolled and
solver-in-the-loop rollouts keep shapes under jit and vmap, a zero correction reproduces the
classical solver, the unrolled loss and its gradient (finite differences, float64), windows."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.grids import Grid
from jaxpde.numerics.etdrk import ETDRK1
from jaxpde.numerics.time_integration import rollout as classical_rollout
from jaxpde.pdes.diffusion import Heat
from jaxpde.pdes.kuramoto_sivashinsky import KuramotoSivashinsky
from jaxpde.neural_operators._emulator import Emulator, SolverStep, trajectory_windows

S, DT = 16, 0.1


def _heat():
    return Heat(Grid(S, 2 * np.pi), 0.5)


def _smooth(s=S, seed=0):
    x = 2 * np.pi * np.arange(s) / s
    rng = np.random.default_rng(seed)
    return jnp.asarray(sum(rng.normal() * np.cos(m * x + rng.uniform(0, 6)) for m in range(1, 5)), jnp.float32)


def test_increment_of_the_heat_semigroup_rolls_out_the_exact_solution():
    heat, scale, kappa = _heat(), 0.05, 0.5

    def increment_model(x):  # (1, s) -> (1, s): the exact increment of one step, divided by the scale
        return (heat.evolve_linear(x[0], DT)[None] - x) / scale

    def zero_model(x):
        return jnp.zeros_like(x)

    emulator = Emulator("increment", increment_scale=scale)
    x = 2 * np.pi * np.arange(S) / S
    u0 = jnp.asarray(np.cos(x) + 0.5 * np.sin(3 * x), jnp.float32)
    times = DT * np.arange(1, 7)[:, None]
    exact = np.cos(x) * np.exp(-kappa * times) + 0.5 * np.sin(3 * x) * np.exp(-9 * kappa * times)
    windows = jnp.asarray(np.stack([u0, exact[0]]), jnp.float32)[None, :, None]
    loss = emulator.loss(1)

    @jax.jit
    def everything(u0, windows):
        return (
            emulator.rollout(increment_model, u0[None, None], 6),
            # the same map as a state model; a zero increment is the identity
            Emulator("state").rollout(lambda x: heat.evolve_linear(x[0], DT)[None], u0[None, None], 6),
            emulator.rollout(zero_model, u0[None, None], 3),
            # the one-step loss: zero for the exact increment, mean (u1 − u0)² for the zero model
            loss(increment_model, windows, None),
            loss(zero_model, windows, None),
        )

    frames, state, still, exact_loss, zero_loss = everything(u0, windows)
    assert frames.shape == (6, 1, S)
    np.testing.assert_allclose(frames[:, 0], exact, atol=2e-6)
    np.testing.assert_allclose(state, frames, atol=2e-6)
    np.testing.assert_array_equal(still[:, 0], jnp.broadcast_to(u0, (3, S)))
    assert float(exact_loss) < 1e-10
    assert float(zero_loss) == pytest.approx(float(np.mean((exact[0] - u0) ** 2)), rel=1e-5)
    np.testing.assert_allclose(emulator.target(exact[0], u0), (exact[0] - u0) / scale, rtol=1e-6)


def _conv(c_in, key=0):
    return eqx.nn.Conv1d(c_in, 1, 3, padding=1, padding_mode="CIRCULAR", key=jax.random.key(key))


def test_solver_in_the_loop_keeps_shapes_under_jit_and_vmap_and_zero_correction_is_the_solver():
    pde = KuramotoSivashinsky(Grid(S, 22.0))
    step = SolverStep(pde, DT, substeps=2, solver=ETDRK1())  # first order: the smallest program to compile
    emulator = Emulator("increment", solver=step, history=2)
    assert emulator.input_channels(1) == 3
    model = _conv(3)
    windows = jnp.stack([jnp.stack([_smooth(seed=i), _smooth(seed=i + 5)]) for i in range(3)])[:, :, None]
    zero = eqx.tree_at(lambda m: (m.weight, m.bias), model, replace_fn=jnp.zeros_like)

    @jax.jit
    def everything(windows):
        frames = jax.vmap(lambda w: emulator.rollout(model, w, 4))(windows)
        # A correction that is exactly zero leaves the classical coarse solver.
        coarse = emulator.rollout(zero, windows[0], 4)
        reference = classical_rollout(pde, windows[0, -1, 0], DT, 8, ETDRK1(), save_every=2)
        # the unrolled loss on the rollout's own frames is zero, and logs the one-step term
        batch = jnp.concatenate([windows, frames[:, :2]], axis=1)  # (3, 2 + 2, 1, S)
        return frames, coarse, reference, emulator.loss(2)(model, batch, None)

    frames, coarse, reference, (loss, terms) = everything(windows)
    assert frames.shape == (3, 4, 1, S) and frames.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(frames)))
    np.testing.assert_allclose(coarse[:, 0], reference, atol=1e-5)
    assert loss.shape == () and float(loss) < 1e-10 and set(terms) == {"one_step"}


@pytest.mark.slow  # ~4 s: a float64 gradient through three ETDRK4 solver steps and the model
def test_unrolled_loss_gradient_through_the_solver_matches_finite_differences(x64):
    pde = KuramotoSivashinsky(Grid(S, 22.0))
    emulator = Emulator("increment", increment_scale=0.1, solver=SolverStep(pde, DT))
    model = jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, _conv(2))
    u = jnp.stack([_smooth(seed=s).astype(jnp.float64) for s in range(4)])  # a made-up "trajectory"
    windows = u[None, :, None]  # (1, 1 + 3, 1, S)
    loss = emulator.loss(3, metric="relative_l2")
    params, static = eqx.partition(model, eqx.is_inexact_array)

    @jax.jit
    def f(p):
        return loss(eqx.combine(p, static), windows, None)[0]

    grad = jax.grad(f)(params)
    direction = jax.tree.map(lambda a: jnp.asarray(np.random.default_rng(3).normal(size=a.shape)), params)
    h = 1e-6
    shifted = lambda sign: jax.tree.map(lambda a, d: a + sign * h * d, params, direction)  # noqa: E731
    fd = (f(shifted(1)) - f(shifted(-1))) / (2 * h)
    analytic = sum(jnp.sum(g * d) for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(direction)))
    assert float(analytic) == pytest.approx(float(fd), rel=1e-6)


def test_trajectory_windows_cut_every_window():
    frames = jnp.arange(2 * 5 * 3, dtype=jnp.float32).reshape(2, 5, 3)
    windows = trajectory_windows(frames[:, :, None], 3)
    assert windows.shape == (6, 3, 1, 3)
    np.testing.assert_array_equal(windows[4, :, 0], frames[1, 1:4])
    assert trajectory_windows(frames[:, :, None], 2, stride=2).shape == (4, 2, 1, 3)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="parameterisation"):
        Emulator("delta")
    with pytest.raises(ValueError, match="history"):
        Emulator(history=0)
    with pytest.raises(ValueError, match="substeps"):
        SolverStep(_heat(), 0.1, 0)
    emulator = Emulator()
    with pytest.raises(ValueError, match="window"):
        emulator.step(lambda x: x, jnp.zeros((2, 1, S)))
    with pytest.raises(ValueError, match="one frame of shape"):
        emulator.step(lambda x: x[:, :4], jnp.zeros((1, 1, S)))
    with pytest.raises(ValueError, match="history \\+ unroll"):
        emulator.loss(2)(lambda x: x, jnp.zeros((1, 2, 1, S)), None)
    with pytest.raises(ValueError, match="length"):
        trajectory_windows(jnp.zeros((1, 3, 4)), 4)
