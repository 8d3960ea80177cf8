"""deq-darcy: the two operators share their parameters and map a Darcy coefficient to a pressure field
(by shape, no compile), bad configs are refused before any work; end to end at a tiny size (slow):
finite errors, the implicit gradient's memory flat in the iteration cap while the weight-tied
network's grows with its depth, and the run resumes from its checkpoints."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

from jaxpde import cli
from jaxpde_experiments import deq_darcy as dd


def test_both_models_have_the_same_parameters_and_map_one_sample_to_its_grid():
    config = dd.Config(width=2, modes=2)
    models = {kind: dd.build(config, kind, jax.random.key(0)) for kind in ("deq", "weight_tied")}
    assert dd.parameter_count(models["deq"]) == dd.parameter_count(models["weight_tied"])
    # same initial weights: the DEQ and the weight-tied core hold one and the same cell
    assert bool(eqx.tree_equal(models["deq"].core.cell, models["weight_tied"].core.cell))
    a = jax.ShapeDtypeStruct((config.size, config.size), jnp.float32)
    for model in models.values():
        out = eqx.filter_eval_shape(lambda m, a: m(a), model, a)
        assert out.shape == (config.size, config.size) and out.dtype == jnp.float32


@pytest.mark.parametrize("setting", ["modes=15", "gamma=1.0", "subsample=3", "batch_size=999", "memory_steps=0"])
def test_bad_config_is_refused(refused, setting):
    refused("deq_darcy", setting)


@pytest.mark.slow  # ~2 min of CPU: data, two trainings' compiles, six gradient compiles for the memory sweep
def test_tiny_run_end_to_end_and_resume(tmp_path):
    out = tmp_path / "run"
    args = ["--set", "n_train=32", "--set", "n_test=8", "--set", "steps=4", "--set", "batch_size=8", "--set", "width=4",
            "--set", "modes=4", "--set", "memory_steps=2,8", "--set", "progress=false",
            "--set", f"cache_dir={tmp_path / 'cache'}"]
    assert cli.main(["run", "deq_darcy", "--out", str(out), *args]) == 0
    r = json.loads((out / "results.json").read_text())
    deq, tied = r["deq"], r["weight_tied"]
    assert deq["parameters"] == tied["parameters"]
    for model in (deq, tied):
        assert 0 < model["test_relative_l2"] < 1.5 and model["gradient_memory"]["temp_bytes"] > 0
    assert 1 <= deq["forward_iterations"]["mean"] <= deq["forward_iterations"]["max"] <= 60
    assert deq["lipschitz_bound"] <= 0.9 + 1e-6
    sweep = r["gradient_memory_vs_max_steps"]
    assert sweep["2"]["implicit"] == sweep["8"]["implicit"]  # no buffer grows with the iteration cap
    assert sweep["8"]["weight_tied"] > sweep["2"]["weight_tied"]  # every layer's activations are kept
    assert len(r["summary"]) == 2 and all(len(row) == 3 for row in r["summary"])
    assert (out / "deq_darcy.png").exists() or "skipped" in r["plot"]
    assert cli.main(["resume", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["deq"]["resumed_from"] == 4 and again["weight_tied"]["resumed_from"] == 4
    assert again["deq"]["test_relative_l2"] == deq["test_relative_l2"]
