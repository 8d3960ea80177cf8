"""pinn-inverse: bad configs are refused by name; observations are distinct reference values with
the stated noise; the model's viscosity is the one the residual sees; end to end (slow)."""

import json
import math

import jax
import numpy as np
import pytest

from jaxpde import cli
from jaxpde.pinns import Reference
from jaxpde_experiments import pinn_inverse as pi


@pytest.mark.parametrize("setting", ["noise=-0.1", "num_observations=0", "initial_viscosity=0", "num_observations=30000"])
def test_bad_config_is_refused_naming_the_key(setting):
    name, value = setting.split("=")
    with pytest.raises(ValueError, match=f"`{name}`"):
        pi.Config(**{name: type(getattr(pi.Config, name))(value)})


@pytest.mark.slow  # eager sampling: ~4 s of CPU
def test_observations_are_distinct_grid_values_with_the_stated_noise():
    x, t = np.linspace(-1, 1, 9), np.linspace(0, 1, 5)
    u = np.sin(3 * x)[None] * np.cos(t)[:, None]
    reference = Reference(x, t, u)
    clean = pi.observe(reference, 20, 0.0, jax.random.key(0))
    assert clean.x.shape == (20, 1) and clean.t.shape == (20,)
    assert len({(float(a), float(b)) for a, b in zip(clean.x[:, 0], clean.t)}) == 20
    np.testing.assert_allclose(clean.values, np.sin(3 * np.asarray(clean.x[:, 0])) * np.cos(np.asarray(clean.t)), atol=1e-6)
    noisy = pi.observe(reference, 45, 0.1, jax.random.key(0))
    spread = np.std(np.asarray(noisy.values) - np.sin(3 * np.asarray(noisy.x[:, 0])) * np.cos(np.asarray(noisy.t)))
    assert 0.5 * 0.1 * u.std() < spread < 1.5 * 0.1 * u.std()


@pytest.mark.slow  # two fit stages with an InverseModel: ~40 s of CPU
def test_tiny_run_end_to_end_and_resume(tmp_path):
    out = tmp_path / "run"
    args = ["--set", "adam_steps=20", "--set", "lbfgs_steps=8", "--set", "width=8", "--set", "depth=2", "--set", "num_points=64",
            "--set", "lbfgs_points=128", "--set", "num_observations=50", "--set", "log_every=4", "--set", "progress=false",
            "--set", f"cache_dir={tmp_path / 'cache'}"]
    assert cli.main(["run", "pinn_inverse", "--out", str(out), *args]) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["viscosity"] > 0 and math.isfinite(r["viscosity_relative_error"]) and r["viscosity_vs_step"]
    assert r["viscosity_vs_step"][0]["viscosity"] != r["viscosity"]  # ν is trained
    assert cli.main(["resume", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["resumed_from"] == {"adam": 20, "lbfgs": 8} and again["viscosity"] == r["viscosity"]
