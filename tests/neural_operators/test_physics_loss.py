"""The physics-informed loss: the residual vanishes on exact solutions of catalogue PDEs
(Navier–Stokes Taylor–Green and forced laminar flow, heat) and not on perturbed ones; it is
second order in the frame spacing on Kuramoto–Sivashinsky (slow); the training loss built on it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.grids import Grid
from jaxpde.numerics.time_integration import trajectory
from jaxpde.pdes.diffusion import Heat
from jaxpde.pdes.kuramoto_sivashinsky import KuramotoSivashinsky
from jaxpde.pdes.navier_stokes import NavierStokes2D
from jaxpde.neural_operators._emulator import Emulator
from jaxpde.neural_operators._physics_loss import physics_informed_loss, semilinear_residual

DT = 0.5


def _frames(pde, times):
    return jax.jit(jax.vmap(pde.exact_solution_on_grid))(jnp.asarray(times))


def _residual(pde, frames, dt):
    return jax.jit(lambda f: semilinear_residual(pde, f, dt))(frames)


@pytest.mark.parametrize("forcing", ["none", "fno"])
def test_residual_vanishes_on_exact_navier_stokes_flows_and_not_on_perturbed_ones(forcing):
    pde = NavierStokes2D(Grid((16, 16)), 1e-2, forcing=forcing)
    frames = _frames(pde, (0.5, 1.0, 1.5))
    scale = float(jnp.max(jnp.abs(frames)))
    exact = _residual(pde, frames, DT)
    assert exact.shape == (2, 16, 16)
    assert float(jnp.max(jnp.abs(exact))) < 1e-5 * scale / DT + 1e-6
    x = np.arange(16) / 16
    bump = 1e-3 * scale * np.cos(2 * np.pi * 2 * x)[:, None] * np.sin(2 * np.pi * x)[None, :]
    perturbed = _residual(pde, frames.at[1].add(bump), DT)
    # the perturbation enters as (bump − e^{LΔ} bump)/Δ-sized rates: far above the exact residual
    assert float(jnp.max(jnp.abs(perturbed))) > 1e-3 * scale / DT


def test_residual_is_zero_for_the_exact_heat_step_in_the_emulator_loss():
    heat = Heat(Grid(32, 2 * np.pi), 0.3)
    emulator = Emulator("state")

    def exact_model(x):
        return heat.evolve_linear(x[0], DT)[None]

    x = 2 * np.pi * np.arange(32) / 32
    u0 = jnp.asarray(np.sin(x), jnp.float32)  # the lowest mode: u(t) = e^{-0.3 t} sin x
    windows = jnp.asarray(np.stack([np.sin(x) * np.exp(-0.3 * t) for t in (0, DT, 2 * DT)]), jnp.float32)[None, :, None]
    loss = physics_informed_loss(heat, emulator, DT, unroll=2)
    # data-free training (data_weight=0): the residual of a wrong model is what remains
    free = physics_informed_loss(heat, emulator, DT, unroll=2, data_weight=0.0)
    (_, terms), (_, wrong) = jax.jit(lambda w: (loss(exact_model, w, None), free(lambda x: x, w, None)))(windows)
    assert float(terms["residual"]) < 1e-10 and float(terms["data"]) < 1e-10
    rate = (jnp.exp(-0.3 * DT) - 1) / DT  # the lowest mode decays at 0.3; the identity misses it by this rate
    assert float(wrong["residual"]) == pytest.approx(float(jnp.mean((rate * u0) ** 2)), rel=2e-3)


@pytest.mark.slow  # ~5 s: two KS reference solves
def test_residual_of_a_ks_solution_is_second_order_in_the_frame_spacing():
    pde = KuramotoSivashinsky(Grid(64, 22.0))
    x = 22.0 * np.arange(64) / 64
    u0 = jnp.asarray(np.cos(2 * np.pi * x / 22) + 0.5 * np.sin(4 * np.pi * x / 22), jnp.float32)
    with jax.enable_x64(True):
        u0 = u0.astype(jnp.float64)
        sizes = []
        for spacing in (0.1, 0.05):
            frames = trajectory(pde, u0, 0.005, round(spacing / 0.005), round(1.0 / spacing))
            sizes.append(float(jnp.sqrt(jnp.mean(_residual(pde, frames, spacing) ** 2))))
    order = np.log2(sizes[0] / sizes[1])
    assert 1.8 < order < 2.3, sizes


def test_bad_arguments_are_named():
    heat = Heat(Grid(8))
    with pytest.raises(ValueError, match="dt"):
        semilinear_residual(heat, jnp.zeros((2, 8)), 0.0)
    with pytest.raises(ValueError, match="time >= 2"):
        semilinear_residual(heat, jnp.zeros((1, 8)), 0.1)
    with pytest.raises(TypeError, match="semi-linear"):
        semilinear_residual(object(), jnp.zeros((2, 8)), 0.1)
    with pytest.raises(ValueError, match="data_weight"):
        physics_informed_loss(heat, Emulator(), 0.1, data_weight=-1.0)
