"""pinn-poisson-gn: bad configs refused before any work; (slow) the manufactured solution zeroes the
problem's residuals; a tiny Gauss–Newton run end to end; all three optimisers at a small
size, Gauss–Newton far ahead of Adam, and the run resumes from its checkpoints."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde import cli
from jaxpde_experiments import pinn_poisson_gn as pg


@pytest.mark.parametrize("setting", ["methods=adam,lbfgs", "methods=adam,adam", "gn_cg_steps=0", "gn_damping=-1", "width=0"])
def test_bad_config_is_refused(refused, setting):
    refused("pinn_poisson_gn", setting)


@pytest.mark.slow  # ~1.3 s of CPU (sampling and residual compiles)
def test_the_manufactured_solution_zeroes_every_residual(x64):
    config = pg.Config(num_points=16, boundary_points=8)
    problem = pg.make_problem(config)
    residuals = jax.jit(problem.residuals, static_argnums=0)(pg.exact, problem.sample(jax.random.key(0)))
    assert set(residuals) == {"residual", "boundary"}
    for r in residuals.values():
        assert float(jnp.max(jnp.abs(r))) < 1e-12


@pytest.mark.slow  # one Gauss-Newton step's compile: 3 s of CPU on a quiet machine, far more under load
def test_tiny_gauss_newton_run(tmp_path):
    out = tmp_path / "run"
    args = ["--set", "methods=gauss_newton", "--set", "gn_steps=3", "--set", "width=4", "--set", "num_points=16",
            "--set", "boundary_points=8", "--set", "evaluations=3", "--set", "eval_resolution=5", "--set", "progress=false"]
    assert cli.main(["run", "pinn_poisson_gn", "--out", str(out), *args]) == 0
    r = json.loads((out / "results.json").read_text())
    gn = r["methods"]["gauss_newton"]
    assert len(gn["curve"]) == 3 and 0 < gn["relative_l2"] < 10 and r["parameters"] == 17
    assert gn["curve"][-1]["loss"] < gn["curve"][0]["loss"] or gn["curve"][0]["loss"] < 1e-8


@pytest.mark.slow  # three methods' compiles and a few hundred steps: ~1-2 min of CPU
def test_small_run_gauss_newton_beats_adam_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["--set", "adam_steps=200", "--set", "soap_steps=100", "--set", "gn_steps=30", "--set", "width=16",
            "--set", "num_points=100", "--set", "boundary_points=40", "--set", "evaluations=5", "--set", "progress=false"]
    assert cli.main(["run", "pinn_poisson_gn", "--out", str(out), *args]) == 0
    r = json.loads((out / "results.json").read_text())
    methods = r["methods"]
    assert methods["gauss_newton"]["relative_l2"] < 0.1 * methods["adam"]["relative_l2"]
    assert 0 < methods["soap"]["relative_l2"] < 1.5  # at 100 steps SOAP is still settling its eigenbasis: no ranking
    assert (out / "pinn_poisson_gn.png").exists() or "skipped" in r["plot"]
    assert len(r["summary"]) == 3 and all(len(row) == 3 for row in r["summary"])
    assert cli.main(["resume", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())
    for name in ("adam", "soap", "gauss_newton"):
        assert again["methods"][name]["resumed_from"] == methods[name]["steps"]
        assert again["methods"][name]["relative_l2"] == methods[name]["relative_l2"]
