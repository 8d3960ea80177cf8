"""pinn-convection: bad configs are refused by key; the residual vanishes on the exact solution
sin(x − βt); a tiny run of every variant end to end (slow)."""

import json

import jax
import jax.numpy as jnp
import pytest

from jaxpde import cli
from jaxpde_experiments import pinn_convection as cv


@pytest.mark.parametrize("setting", ["betas=-30", "variants=plain,plain", "variants=resnet", "steps=0",
                                     "fourier_features=5"])
def test_bad_config_is_refused(refused, setting):
    refused("pinn_convection", setting)


def test_the_residual_vanishes_on_the_exact_solution_and_not_on_a_wrong_speed():
    exact = lambda x, t: jnp.sin(x[0] - 30.0 * t)  # noqa: E731
    points = jnp.array([[0.3], [2.0], [5.5]]), jnp.array([0.1, 0.5, 0.9])
    residual = jax.jit(jax.vmap(lambda x, t, beta: cv.convection(exact, x, t, beta), (0, 0, None)))
    assert float(jnp.abs(residual(*points, 30.0)).max()) < 1e-4
    assert float(jnp.abs(residual(*points, 50.0)).max()) > 1.0


@pytest.mark.slow  # ~1-2 min of CPU: four variants' compiles at two speeds
def test_tiny_run_of_every_variant(tmp_path):
    out = tmp_path / "run"
    args = ["--set", "width=4", "--set", "depth=1", "--set", "fourier_features=4", "--set", "residual_points=32",
            "--set", "initial_points=8", "--set", "steps=4", "--set", "eval_every=1", "--set", "warmup_steps=0",
            "--set", "causal_chunks=4", "--set", "weighting_every=1", "--set", "progress=false", "--set", "betas=30,50",
            "--set", "windows=2", "--set", f"variants={','.join(cv.VARIANTS)}"]
    assert cli.main(["run", "pinn_convection", "--out", str(out), *args]) == 0
    r = json.loads((out / "results.json").read_text())
    for beta in ("beta30", "beta50"):
        assert set(r[beta]) == set(cv.VARIANTS)
        assert all(0 < v["relative_l2"] < 10 for v in r[beta].values())
    assert len(r["summary"]) == 2
    assert cli.main(["resume", str(out)]) == 0
