"""Time grids: exact ends, monotone, each uniform in its own variable; bad input named."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.samplers import VPLinear
from jaxpde.samplers._grids import Karras, LearnedGrid, TimeQuadratic, UniformLogSNR, UniformTime

GRIDS = [UniformTime(), UniformLogSNR(), TimeQuadratic(), Karras(), LearnedGrid(jnp.linspace(-1.0, 1.0, 7))]


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: type(g).__name__)
def test_ends_are_exact_and_times_decrease(x64, grid):
    schedule = VPLinear()
    ts = np.asarray(grid(schedule, 7, 1.0, 1e-3))
    assert ts.shape == (8,)
    # Bit-exact ends: no sliver step is ever needed to reach t_end.
    assert ts[0] == 1.0 and ts[-1] == 1e-3
    assert np.all(np.diff(ts) < 0)


def test_each_grid_is_uniform_in_its_variable(x64):
    schedule = VPLinear()
    n = 9
    lam = np.asarray(schedule.log_snr(UniformLogSNR()(schedule, n, 1.0, 1e-3)))
    np.testing.assert_allclose(np.diff(lam), np.full(n, (lam[-1] - lam[0]) / n), rtol=1e-9)
    root = np.sqrt(np.asarray(TimeQuadratic()(schedule, n, 1.0, 1e-3)))
    np.testing.assert_allclose(np.diff(root), np.full(n, (root[-1] - root[0]) / n), rtol=1e-9)
    ts = Karras(rho=7.0)(schedule, n, 1.0, 1e-3)
    level = np.asarray(schedule.sigma(ts) / schedule.alpha(ts)) ** (1 / 7)
    np.testing.assert_allclose(np.diff(level), np.full(n, (level[-1] - level[0]) / n), rtol=1e-9)


def test_learned_grid_starts_at_the_grid_it_was_built_from(x64):
    schedule = VPLinear()
    quadratic = TimeQuadratic()(schedule, 6, 1.0, 1e-3)
    learned = LearnedGrid.from_grid(TimeQuadratic(), schedule, 6, 1.0, 1e-3)
    np.testing.assert_allclose(learned(schedule, 6, 1.0, 1e-3), quadratic, rtol=1e-10)
    # Any logits give a valid grid (monotone with exact ends).
    wild = LearnedGrid(jnp.asarray([8.0, -8.0, 0.0, 3.0, -2.0, 1.0]))
    ts = np.asarray(wild(schedule, 6, 1.0, 1e-3))
    assert ts[0] == 1.0 and ts[-1] == 1e-3 and np.all(np.diff(ts) < 0)


def test_bad_input_is_named():
    schedule = VPLinear()
    with pytest.raises(ValueError, match="`num_steps`"):
        UniformTime()(schedule, 0, 1.0, 1e-3)
    with pytest.raises(ValueError, match="`t_start` must be > `t_end`"):
        UniformTime()(schedule, 4, 1e-3, 1.0)
    with pytest.raises(ValueError, match="`t_end` must lie in the schedule"):
        UniformTime()(schedule, 4, 1.0, 1e-4)
    with pytest.raises(ValueError, match="`t_start` must lie in the schedule"):
        UniformTime()(schedule, 4, 2.0, 1e-3)
    with pytest.raises(ValueError, match="number of learned increments 3"):
        LearnedGrid(jnp.zeros(3))(schedule, 4, 1.0, 1e-3)
    with pytest.raises(ValueError, match="`rho`"):
        Karras(rho=-1.0)
