"""emulator-ks: the three emulators share one backbone (the refiner's has its two extra input
channels, nothing else differs) and map a KS frame to a frame (by shape, no compile); bad configs
are refused before any work; end to end at a tiny size (slow): correlation times within the
horizon, breakeven reported, and the run resumes from its checkpoints."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

from jaxpde import cli
from jaxpde_experiments import emulator_ks as ek


def test_the_emulators_share_the_backbone_and_keep_the_frame_shape():
    config = ek.Config(width=4, depth=2, modes=4)
    # Abstract models (no initialisation run): only the refiner's input channels differ.
    recipes = ek.emulators(config)
    models = {kind: eqx.filter_eval_shape(ek.backbone, config, recipes[kind].input_channels(1), jax.random.key(0))
              for kind in ek.MODELS}
    assert models["one_step"].in_channels == models["unrolled"].in_channels == 1
    assert models["refiner"].in_channels == 3  # the noisy estimate and the step k/K
    shapes = {kind: [leaf.shape for leaf in jax.tree.leaves(m)] for kind, m in models.items()}
    assert shapes["one_step"] == shapes["unrolled"] and shapes["refiner"][1:] == shapes["one_step"][1:]
    for kind, model in models.items():
        x = jax.ShapeDtypeStruct((model.in_channels, config.size), jnp.float32)
        assert eqx.filter_eval_shape(lambda m, x: m(x), model, x).shape == (1, config.size)


@pytest.mark.parametrize(
    "setting", ["modes=80", "subsample=3", "batch_size=999", "unroll=100", "min_noise_std=1.0", "models=one_step,foo",
                "interval=0.25", "breakeven_frames=400", "test_time=20.0"]
)
def test_bad_config_is_refused(refused, setting):
    refused("emulator_ks", setting)


@pytest.mark.slow  # ~1-2 min of CPU: data, three trainings' compiles, rollouts, seven classical settings
def test_tiny_run_end_to_end_and_resume(tmp_path):
    out = tmp_path / "run"
    args = ["--set", "n_train=8", "--set", "n_test=4", "--set", "time=10.0", "--set", "test_time=12.0", "--set", "burn_in=20.0", "--set", "steps=4",
            "--set", "batch_size=8", "--set", "width=4", "--set", "depth=1", "--set", "modes=4", "--set", "unroll=2",
            "--set", "breakeven_frames=3", "--set", "progress=false", "--set", f"cache_dir={tmp_path / 'cache'}"]
    assert cli.main(["run", "emulator_ks", "--out", str(out), *args]) == 0
    r = json.loads((out / "results.json").read_text())
    for kind in ek.MODELS:
        assert 0 <= r[kind]["correlation_time_mean"] <= r["horizon_time"]
        assert r[kind]["breakeven"]["emulator_seconds"] > 0 and r[kind]["breakeven"]["matched"]["name"]
    assert "refiner_over_one_step" in r and len(r["classical_settings"]) == 6  # None when one-step's time is 0
    assert 0 <= r["persistence_correlation_time_mean"] <= r["horizon_time"]
    assert all(len(row) == 3 for row in r["summary"])
    assert cli.main(["resume", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())
    assert all(again[kind]["resumed_from"] == 4 for kind in ek.MODELS)
    assert again["one_step"]["correlation_time_mean"] == r["one_step"]["correlation_time_mean"]
