"""deeponet-burgers: bad configs are refused before any work; the model maps one set of sensor values
and any query points to values there (by shape, no compile), with periodic trunk features; end to end
at a tiny size (slow): finite errors on the sensor grid and the finer grid, and the run resumes."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde import cli
from jaxpde_experiments import deeponet_burgers as db


@pytest.mark.parametrize("setting", ["subsample=3", "batch_size=999", "harmonics=0", "activation=swish"])
def test_bad_config_is_refused(refused, setting):
    refused("deeponet_burgers", setting)


def test_sensor_values_and_any_points_map_to_values_there():
    config = db.Config()
    y = jnp.asarray([0.0, 0.25, 0.999])
    features = db.periodic_features(y, 2)
    np.testing.assert_allclose(np.asarray(features[1]), [0, -1, 1, 0], atol=1e-6)  # cos 2π/4, cos π, sin 2π/4, sin π
    np.testing.assert_allclose(np.asarray(db.periodic_features(y + 1, 2)), np.asarray(features), atol=1e-5)  # periodic
    out = eqx.filter_eval_shape(lambda u, q: db.build(config, jax.random.key(0))(u, q),
                                jax.ShapeDtypeStruct((1, config.sensors), jnp.float32),
                                jax.ShapeDtypeStruct((37, 2 * config.harmonics), jnp.float32))
    assert out.shape == (1, 37)


@pytest.mark.slow  # ~20 s of CPU: the Burgers solver's and the training step's compiles
def test_tiny_run_end_to_end_and_resume(tmp_path):
    out = tmp_path / "run"
    args = [f"--set={s}" for s in ("resolution=32", "subsample=4", "n_train=8", "n_test=4", "latent=4", "width=4",
                                   "steps=2", "batch_size=4", "progress=false")]
    args.append(f"--set=cache_dir={tmp_path / 'cache'}")
    assert cli.main(["run", "deeponet_burgers", "--out", str(out), *args]) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["sensors"] == 8 and r["fine_grid"] == 32
    assert 0 < r["test_relative_l2"] < 5 and 0 < r["test_relative_l2_fine"] < 5
    assert cli.main(["resume", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["resumed_from"] == 2 and again["test_relative_l2_fine"] == r["test_relative_l2_fine"]
