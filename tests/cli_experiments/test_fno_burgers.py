"""fno-burgers: bad configs are refused before any work; the model maps one initial condition to one
solution at the training and the zero-shot grid (by shape, no compile); Fourier interpolation is exact
on a band-limited field; the full scale is the paper's setting; end to end at a tiny size (slow):
finite errors at both grids and the run resumes to the same figures."""

import dataclasses
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde import cli
from jaxpde_experiments import fno_burgers as fb


@pytest.mark.parametrize("setting", ["modes=200", "subsample=3", "batch_size=999", "weight_decay=-1", "depth=0"])
def test_bad_config_is_refused(refused, setting):
    refused("fno_burgers", setting)


def test_model_shapes_interpolation_and_full_scale():
    config = fb.Config()
    for size in (config.size, config.resolution):
        out = eqx.filter_eval_shape(lambda u: fb.build(config, jax.random.key(0))(u), jax.ShapeDtypeStruct((1, size), jnp.float32))
        assert out.shape == (1, size)
    x = np.arange(16) / 16
    wave = lambda x: np.sin(2 * np.pi * 3 * x) + 0.5 * np.cos(2 * np.pi * 5 * x)  # noqa: E731
    np.testing.assert_allclose(np.asarray(fb.fourier_interpolate(jnp.asarray(wave(x)), 64)), wave(np.arange(64) / 64),
                               atol=1e-5)
    full = fb.full_scale(dataclasses.replace(config, scale="full"))
    assert (full.size, full.n_train, full.n_test, full.width, full.modes) == (1024, 1000, 200, 64, 16)


@pytest.mark.slow  # ~20 s of CPU: the Burgers solver's and the training step's compiles
def test_tiny_run_end_to_end_and_resume(tmp_path):
    out = tmp_path / "run"
    args = [f"--set={s}" for s in ("resolution=32", "subsample=2", "n_train=8", "n_test=4", "width=2", "modes=3",
                                   "depth=1", "steps=2", "batch_size=4", "progress=false")]
    args.append(f"--set=cache_dir={tmp_path / 'cache'}")
    assert cli.main(["run", "fno_burgers", "--out", str(out), *args]) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["grid"] == 16 and r["fine_grid"] == 32
    assert all(0 < r[k] < 5 for k in ("test_relative_l2", "test_relative_l2_fine", "test_relative_l2_fine_interpolated"))
    assert cli.main(["resume", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["resumed_from"] == 2 and again["test_relative_l2"] == r["test_relative_l2"]
