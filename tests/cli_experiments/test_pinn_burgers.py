"""pinn-burgers: bad configs are refused by name before any work; the hard-constrained network meets
the initial and boundary conditions exactly; end to end at a tiny size with resume (slow)."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde import cli
from jaxpde_experiments import pinn_burgers as pb


@pytest.mark.parametrize(
    "setting, key",
    [("width=0", "width"), ("num_points=0", "num_points"), ("learning_rate=-1", "learning_rate"), ("adam_steps=-1", "adam_steps"),
     ("gn_steps=-1", "gn_steps"), ("gn_damping=0", "gn_damping")],
)
def test_bad_config_is_refused_naming_the_key(setting, key):
    name, value = setting.split("=")
    with pytest.raises(ValueError, match=f"`{key}`"):
        pb.Config(**{name: type(getattr(pb.Config, name))(value)})
    with pytest.raises(ValueError, match="nothing would be trained"):
        pb.Config(adam_steps=0, lbfgs_steps=0, gn_steps=0)


@pytest.mark.slow  # ~1 s of CPU
def test_hard_network_meets_the_conditions_exactly_and_the_problem_is_the_residual_alone():
    config = pb.Config(width=4, depth=1)
    net = pb.Network(4, 1, True, key=jax.random.key(0))
    x, t = jnp.linspace(-1, 1, 5)[:, None], jnp.linspace(0, 1, 4)

    @eqx.filter_jit
    def values(net):
        u0 = jax.vmap(lambda x: net(x, jnp.zeros(())))(x)
        ends = jax.vmap(lambda t: jnp.stack([net(jnp.array([-1.0]), t), net(jnp.array([1.0]), t)]))(t)
        return u0, ends

    u0, ends = values(net)
    np.testing.assert_allclose(u0, -np.sin(np.pi * np.asarray(x[:, 0])), atol=1e-6)
    np.testing.assert_allclose(ends, 0, atol=1e-6)
    assert pb.make_problem(config).terms == ("residual",)
    soft = pb.make_problem(pb.Config(hard=False))
    assert soft.terms == ("residual", "initial", "boundary/left", "boundary/right")


@pytest.mark.slow  # compiles three fit stages (Adam, L-BFGS, Gauss–Newton): ~50 s of CPU
def test_tiny_run_end_to_end_and_resume(tmp_path):
    out = tmp_path / "run"
    args = ["--set", "adam_steps=20", "--set", "lbfgs_steps=8", "--set", "gn_steps=4", "--set", "width=8", "--set", "depth=2",
            "--set", "num_points=64", "--set", "lbfgs_points=128", "--set", "gn_points=128", "--set", "log_every=4",
            "--set", "progress=false", "--set", f"cache_dir={tmp_path / 'cache'}"]
    assert cli.main(["run", "pinn_burgers", "--out", str(out), *args]) == 0
    r = json.loads((out / "results.json").read_text())
    assert 0 < r["relative_l2"] < 1.5 and r["error_vs_wall_clock"]
    assert [e["wall_s"] for e in r["error_vs_wall_clock"]] == sorted(e["wall_s"] for e in r["error_vs_wall_clock"])
    assert len(r["summary"]) == 1 and len(r["summary"][0]) == 3
    assert (out / "pinn_burgers.png").exists() or "skipped" in r["plot"]
    assert cli.main(["resume", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["resumed_from"] == {"adam": 20, "lbfgs": 8, "gn": 4} and again["relative_l2"] == r["relative_l2"]
