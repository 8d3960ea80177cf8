"""diffusion-darcy: its pieces against ground truth (the PDE residual of an exact discrete solve is
zero, the observation operator picks the observed nodes, the baseline lowers its misfit through
the solver), and the experiment end to end at a tiny size (slow: one training compile)."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde import cli
from jaxpde.numerics.stencils import DiffusionOperator
from jaxpde_experiments import diffusion_darcy as dd


def _pair(size, key):
    """A two-phase coefficient on the nodes and the exact (dense) discrete pressure, zero on the boundary."""
    a = jnp.where(jax.random.normal(key, (size, size)) > 0, dd.HIGH, dd.LOW)
    operator = DiffusionOperator(dd.interior_grid(size), a[1:-1, 1:-1])
    n = (size - 2) ** 2
    u = jnp.linalg.solve(operator.as_matrix(), jnp.ones(n)).reshape(size - 2, size - 2)
    return a, jnp.pad(u, 1)


def test_pde_residual_vanishes_on_the_discrete_solution_only():
    a, u = _pair(8, jax.random.key(0))
    assert float(jnp.max(jnp.abs(dd.pde_residual(a, u)))) < 1e-5
    # the residual is scaled by h², so a unit-scaled perturbation of u shows at O(1)
    perturbed = u.at[3, 4].add(0.1 * float(jnp.max(u)))
    assert float(jnp.max(jnp.abs(dd.pde_residual(a, perturbed)))) > 1e-3


def test_observations_and_forward_model_pick_the_same_interior_nodes():
    a, u = _pair(8, jax.random.key(1))
    normaliser = dd.Normaliser(jnp.mean(u), jnp.std(u))
    index, y = dd.observations(jax.random.key(2), u, fraction=0.25, noise=0.0, rms=1.0)
    assert index.shape == (9,)  # 25% of 6² interior nodes
    rows, cols = np.unravel_index(np.asarray(index), (8, 8))
    assert rows.min() >= 1 and rows.max() <= 6 and cols.min() >= 1 and cols.max() <= 6
    np.testing.assert_allclose(y, u[rows, cols])  # noise 0: the exact values
    x0 = normaliser.encode(a, u)
    assert x0.shape == (2, 8, 8)
    np.testing.assert_allclose(dd.PickPressure(index, normaliser)(x0), (y - normaliser.mean) / normaliser.std, rtol=1e-5, atol=1e-6)
    decoded = normaliser.decode(x0)
    np.testing.assert_allclose(decoded[0], a, rtol=1e-6)
    np.testing.assert_allclose(decoded[1], u, rtol=1e-5, atol=1e-7)
    with_pde = dd.PickPressure(index, normaliser, pde_weight=2.0)(x0)
    assert with_pde.shape == (9 + 36,)
    assert float(jnp.max(jnp.abs(with_pde[9:]))) < 1e-4  # the true pair satisfies the PDE


@pytest.mark.slow  # default-suite budget
def test_unet_maps_one_sample_to_its_shape():
    # Abstract throughout (initialised and applied by shape only): a conv net's eager CPU init
    # and compile take tens of seconds; the slow end-to-end run executes it.
    model = eqx.filter_eval_shape(dd.UNet, 4, key=jax.random.key(0))
    apply = lambda m, x, t: m(x, t)
    out = eqx.filter_eval_shape(apply, model, jnp.ones((2, 8, 8)), 0.3)
    assert out.shape == (2, 8, 8) and out.dtype == jnp.float32
    with pytest.raises(ValueError):
        eqx.filter_eval_shape(apply, model, jnp.ones((3, 8, 8)), 0.3)  # three channels: the first conv expects two


def test_bad_config_is_refused(tmp_path):
    assert cli.main(["run", "diffusion_darcy", "--out", str(tmp_path / "x"), "--set", "size=10"]) == 2
    assert cli.main(["run", "diffusion_darcy", "--out", str(tmp_path / "y"), "--set", "observed_fraction=0"]) == 2


@pytest.mark.slow  # ~2 min under load: data, a 20-step training compile, DPS and least squares
def test_tiny_run_end_to_end(tmp_path):
    out = tmp_path / "run"
    args = ["--set", "size=8", "--set", "n_train=32", "--set", "n_test=2", "--set", "width=8", "--set", "steps=20",
            "--set", "batch_size=16", "--set", "dps_steps=10", "--set", "n_posterior=2", "--set", "baseline_steps=30",
            "--set", "tikhonov=0.001", "--set", "progress=false", "--set", f"cache_dir={tmp_path / 'cache'}"]
    assert cli.main(["run", "diffusion_darcy", "--out", str(out), *args]) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["grid"] == 8 and r["observed_points"] == 2  # 5% of 36 interior nodes
    for method in (r["dps"]["posterior_mean"], r["dps"]["mean_of_samples"], r["least_squares"]["0.001"]):
        assert set(method) >= {"pressure", "coefficient", "coefficient_thresholded"}
        assert all(np.isfinite(v) for v in method.values())
    # the baseline fits its observations through the solver: the loss falls
    case = r["cases"][0]["least_squares"]["0.001"]
    assert np.isfinite(case["final_loss"]) and case["final_loss"] < case["initial_loss"]
    assert len(r["summary"]) == 2 and all(len(row) == 3 for row in r["summary"])
    assert (out / "diffusion_darcy.png").exists() or "skipped" in r["plot"]
