"""fno-navier-stokes: the FNO-2D takes the 10-frame history (and the coordinates) to one frame (by
shape, no compile), the full scale is the paper's setting, bad configs are refused before any
work; end to end at a tiny size (slow): an error, breakeven reported, and the run resumes."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

from jaxpde import cli
from jaxpde_experiments import fno_navier_stokes as fns


def test_the_fno_maps_the_history_to_one_frame_and_full_scale_is_the_papers():
    config = fns.Config(width=4, modes=4, depth=1)
    model = eqx.filter_eval_shape(fns.build, config, jax.random.key(0))  # abstract: no initialisation run
    assert model.in_channels == config.history == 10
    x = jax.ShapeDtypeStruct((10, config.size, config.size), jnp.float32)
    assert eqx.filter_eval_shape(lambda m, x: m(x), model, x).shape == (1, config.size, config.size)
    full = fns.full_scale(fns.Config(scale="full"))
    assert (full.size, full.history, full.horizon, full.n_train, full.n_test, full.width, full.modes) == (
        64, 10, 40, 1000, 200, 20, 12)
    assert full.dataset().time == 50.0 and fns.PAPER_RELATIVE_L2 == 0.0128


@pytest.mark.parametrize("setting", ["modes=17", "subsample=3", "batch_size=999", "unroll=11", "dt=0.3", "viscosity=0"])
def test_bad_config_is_refused(refused, setting):
    refused("fno_navier_stokes", setting)


@pytest.mark.slow  # ~1-2 min of CPU: data, one training's compile, rollouts, seven classical settings
def test_tiny_run_end_to_end_and_resume(tmp_path):
    out = tmp_path / "run"
    args = ["--set", "n_train=4", "--set", "n_test=2", "--set", "horizon=2", "--set", "unroll=1", "--set", "steps=3",
            "--set", "batch_size=4", "--set", "width=4", "--set", "modes=4", "--set", "depth=1",
            "--set", "resolution=32", "--set", "dt=0.1", "--set", "progress=false",
            "--set", f"cache_dir={tmp_path / 'cache'}"]
    assert cli.main(["run", "fno_navier_stokes", "--out", str(out), *args]) == 0
    r = json.loads((out / "results.json").read_text())
    assert 0 < r["test_relative_l2"] < 10 and len(r["per_frame_relative_l2"]) == 2
    assert r["breakeven"]["emulator_seconds"] > 0 and r["breakeven"]["reference"]["name"] == "s=32, dt=0.1"
    assert all(len(row) == 3 for row in r["summary"])
    assert cli.main(["resume", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["resumed_from"] == 3 and again["test_relative_l2"] == r["test_relative_l2"]
