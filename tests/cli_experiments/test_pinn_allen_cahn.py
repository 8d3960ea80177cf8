"""pinn-allen-cahn: bad configs are refused by key before any work; a tiny run end to end (a coarse
reference, a few steps of the pipeline and the plain PINN) writes finite errors, the curve of
relative L2 against wall-clock time, the plot and the summary, and resumes exactly (slow)."""

import json

import jax
import jax.numpy as jnp
import pytest

from jaxpde import cli
from jaxpde_experiments import pinn_allen_cahn as ac


@pytest.mark.parametrize("setting", ["width=0", "fourier_features=3", "causal_epsilon=-1", "decay_rate=0",
                                     "network=resnet", "reference_x=100", "learning_rate=0"])
def test_bad_config_is_refused(refused, setting):
    refused("pinn_allen_cahn", setting)


def test_the_pipeline_network_is_exactly_periodic_and_starts_at_the_initial_condition():
    config = ac.Config(width=8, depth=1, fourier_features=8)
    pipeline = ac.Variant("pipeline", "modified_mlp", True, 8, 1.0, True, "exact", "none", 1.0)
    net = ac.build_network(pipeline, config.width, config.depth, 2.0, jax.random.key(0))
    model = ac.InitialCondition(net, ac.u0)
    x = jnp.array([[-1.0], [-0.3], [0.4]])
    both = jax.jit(lambda x, t: (jax.vmap(net)(x, t), jax.vmap(model)(x, t)))
    n, u = both(jnp.concatenate([x, x + 2.0, x]), jnp.array([0.5] * 6 + [0.0] * 3))
    assert jnp.allclose(n[:3], n[3:6], atol=1e-5)  # the network is 2-periodic in x
    assert jnp.array_equal(u[6:], jax.vmap(ac.u0)(x))  # u(x, 0) = x² cos(πx) exactly


TINY = ["--set", "width=4", "--set", "depth=1", "--set", "fourier_features=4", "--set", "residual_points=32",
        "--set", "initial_points=8", "--set", "steps=4", "--set", "eval_every=2", "--set", "warmup_steps=0",
        "--set", "weighting_every=2", "--set", "causal_chunks=4", "--set", "reference_x=17", "--set", "reference_t=5",
        "--set", "reference_modes=64", "--set", "progress=false", "--set", "initial=loss",
        "--set", "windows=2"]


@pytest.mark.slow  # ~1 min of CPU: a coarse reference, two trainings' compiles, the plot
def test_tiny_run_end_to_end_and_resume(tmp_path):
    out = tmp_path / "run"
    args = [*TINY, "--set", f"cache_dir={tmp_path / 'cache'}"]
    assert cli.main(["run", "pinn_allen_cahn", "--out", str(out), *args]) == 0
    r = json.loads((out / "results.json").read_text())
    for name in ("pipeline", "plain"):
        assert 0 < r[name]["relative_l2"] < 10
        steps = [c[0] for c in r[name]["relative_l2_vs_wall"]]
        assert steps == [2, 4]
    assert (out / "pinn_allen_cahn.png").exists() or "skipped" in r["plot"]
    assert len(r["summary"]) == 2 and all(len(row) == 3 for row in r["summary"])
    assert cli.main(["resume", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["pipeline"]["resumed_from"] == 4
    assert again["pipeline"]["relative_l2"] == r["pipeline"]["relative_l2"]
