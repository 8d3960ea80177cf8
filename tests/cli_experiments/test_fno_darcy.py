"""fno-darcy: bad configs are refused before any work; the model maps one coefficient field to one
pressure field at the training and the zero-shot grid (by shape, no compile); the full scale is the
paper's setting; end to end at a tiny size (slow): finite errors at both grids, the plot, and the
run resumes from its checkpoints to the same figures."""

import dataclasses
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

from jaxpde import cli
from jaxpde_experiments import fno_darcy as fd


@pytest.mark.parametrize("setting", ["modes=30", "subsample=5", "fine_subsample=4", "batch_size=1001", "padding=-0.1",
                                     "steps=0"])
def test_bad_config_is_refused(refused, setting):
    refused("fno_darcy", setting)


def test_the_model_maps_one_field_at_both_grids_and_full_scale_is_the_papers():
    config = fd.Config()
    for size in (config.size, config.fine_size):
        out = eqx.filter_eval_shape(lambda a: fd.build(config, jax.random.key(0))(a),
                                    jax.ShapeDtypeStruct((1, size, size), jnp.float32))
        assert out.shape == (1, size, size)
    full = fd.full_scale(dataclasses.replace(config, scale="full"))
    assert (full.size, full.n_train, full.n_test, full.width, full.modes) == (85, 1000, 200, 32, 12)
    assert full.steps * full.batch_size == 500 * full.n_train  # 500 epochs


@pytest.mark.slow  # ~25 s of CPU: the Darcy solver's and the training step's compiles
def test_tiny_run_end_to_end_and_resume(tmp_path):
    out = tmp_path / "run"
    args = [f"--set={s}" for s in ("resolution=9", "subsample=2", "n_train=8", "n_test=4", "width=2", "modes=2",
                                   "depth=1", "steps=2", "batch_size=4", "progress=false")]
    args.append(f"--set=cache_dir={tmp_path / 'cache'}")
    assert cli.main(["run", "fno_darcy", "--out", str(out), *args]) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["grid"] == 5 and r["fine_grid"] == 9
    assert 0 < r["test_relative_l2"] < 5 and 0 < r["test_relative_l2_fine"] < 5
    assert len(r["summary"]) == 2 and all(len(row) == 3 for row in r["summary"])
    assert (out / "fno_darcy.png").exists() or "skipped" in r["plot"]
    assert cli.main(["resume", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["resumed_from"] == 2 and again["test_relative_l2"] == r["test_relative_l2"]
