"""The `sample` driver: budgets become exact step counts, bad input is named before any work."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.samplers import VPLinear, eight_gaussians
from jaxpde.samplers._ddim import DDIM
from jaxpde.samplers._dpm_solver import DPMSolver3, DPMSolverPP2M, DPMSolverPP3M
from jaxpde.samplers._edm import EDMHeun
from jaxpde.samplers._grids import TimeQuadratic, UniformLogSNR
from jaxpde.samplers._sample import evaluations, sample, steps_for_nfe
from jaxpde.samplers._unipc import UniPC


def test_budgets_become_the_most_steps_that_fit():
    assert steps_for_nfe(DPMSolverPP2M(), 10) == 10
    assert steps_for_nfe(DPMSolver3(), 10) == 3  # 9 NFE: a fourth step would cost 12
    assert steps_for_nfe(DPMSolverPP3M(), 10) == 9  # its first step is second order (2 NFE)
    assert steps_for_nfe(EDMHeun(), 10) == 5
    assert steps_for_nfe(diffrax.Tsit5(), 49) == 8  # 8 × 6 + 1: first-same-as-last
    assert steps_for_nfe(diffrax.Heun(), 10) == 5
    assert evaluations(UniPC(), 7) == 7  # the corrector reuses the next step's evaluation


def test_bad_input_is_named():
    schedule = VPLinear()
    mixture = eight_gaussians()
    x = jnp.zeros((4, 2))
    denoiser = mixture.denoiser(schedule, "eps")
    with pytest.raises(ValueError, match="`parameterisation`"):
        sample(lambda x, t: x, x, solver=DDIM(), grid=TimeQuadratic(), nfe=5, schedule=schedule, parameterisation="noise")
    with pytest.raises(ValueError, match="`nfe` = 2 is fewer than DPMSolver3 needs"):
        sample(denoiser, x, solver=DPMSolver3(), grid=TimeQuadratic(), nfe=2)
    with pytest.raises(ValueError, match="`nfe` = 3 is fewer than DPMSolverPP3M needs.*at least 4"):
        sample(denoiser, x, solver=DPMSolverPP3M(), grid=TimeQuadratic(), nfe=3)
    with pytest.raises(ValueError, match="`nfe` = 1 is fewer than DPMSolverPP2M needs"):
        sample(denoiser, x, solver=DPMSolverPP2M(), grid=TimeQuadratic(), nfe=1)
    with pytest.raises(ValueError, match="`t_end` must lie in the schedule"):
        sample(denoiser, x, solver=DDIM(), grid=TimeQuadratic(), nfe=5, t_end=1e-5)
    with pytest.raises(ValueError, match="`t_start` must lie in the schedule"):
        sample(denoiser, x, solver=DDIM(), grid=jnp.asarray([1.5, 0.5, 1e-3]))
    with pytest.raises(ValueError, match="exactly one of `nfe` and `num_steps`"):
        sample(denoiser, x, solver=DDIM(), grid=TimeQuadratic())
    with pytest.raises(ValueError, match="pass `key` only with an SDE solver"):
        sample(denoiser, x, solver=DDIM(), grid=TimeQuadratic(), nfe=5, key=jax.random.key(0))
    with pytest.raises(ValueError, match="must decrease strictly"):
        sample(denoiser, x, solver=DDIM(), grid=jnp.asarray([1.0, 0.2, 0.5, 1e-3]))
    with pytest.raises(ValueError, match=r"prediction must have the shape of x_t \(2,\).*got \(3,\)"):
        sample(lambda x, t: jnp.zeros(3), x, solver=DDIM(), grid=TimeQuadratic(), nfe=5, schedule=schedule, parameterisation="eps")


@pytest.mark.slow
def test_saveat_returns_the_states_on_the_grid_and_the_end_is_the_same(x64):
    schedule = VPLinear()
    mixture = eight_gaussians(dtype=jnp.float64)
    denoiser = mixture.denoiser(schedule, "x0")
    x = jax.random.normal(jax.random.key(0), (8, 2), jnp.float64)
    ts = UniformLogSNR()(schedule, 6, 1.0, 1e-3)
    end = sample(denoiser, x, solver=DPMSolverPP2M(), grid=ts, nfe=6)
    path = sample(denoiser, x, solver=DPMSolverPP2M(), grid=ts, saveat=diffrax.SaveAt(ts=ts))
    assert end.nfe == path.nfe == 6 and end.num_steps == 6
    assert path.ys.shape == (7, 8, 2)
    np.testing.assert_allclose(path.ys[0], x, rtol=0, atol=0)
    np.testing.assert_allclose(path.ys[-1], end.ys, rtol=1e-12, atol=1e-12)
    # The end points are near the data: every one within 4 std of a mixture mean.
    distance = jnp.min(jnp.linalg.norm(end.ys[:, None, :] - mixture.means[None], axis=-1), axis=1)
    assert float(jnp.max(distance)) < 1.2
