"""The precond-darcy experiment: its measuring harness against ground truth, its config checks, and
(slow) a whole tiny run through the CLI."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse.linalg as spla

from jaxpde import cli
from jaxpde.data._linear_systems import DarcySystemConfig, SyntheticSPDConfig
from jaxpde.numerics.preconditioning import Jacobi
from jaxpde_experiments import precond_darcy


def test_evaluate_counts_iterations_and_residuals_like_scipy(x64):
    # The same system through scipy's CG (same norm-based test): the same iteration count.
    config = DarcySystemConfig(size=8)
    key = jax.random.key(2)
    figures = precond_darcy.evaluate({"none": None, "jacobi": Jacobi()}, config, [key], 1e-6, jnp.float64,
                                     repeats=1, log=lambda *_: None)
    operator, b = config.system(jax.tree_util.tree_map(lambda x: x.astype(jnp.float64), config.sample(key)))
    matrix = operator.to_sparse().to_scipy()
    count = []
    spla.cg(matrix, np.asarray(b).ravel(), rtol=1e-6, callback=lambda _: count.append(1))
    assert figures["none"]["iterations"] == len(count)
    assert figures["jacobi"]["iterations"] <= figures["none"]["iterations"] <= 64  # CG: at most n steps
    # pyamg comes with the `bench` extra; without it the AMG entry says it was skipped.
    names = ("none", "jacobi", "amg") if isinstance(figures.get("amg"), dict) else ("none", "jacobi")
    for name in names:
        assert figures[name]["relative_residual"] <= 1.01e-6
        assert figures[name]["results"] == ["successful"]
    if "amg" in names:
        assert figures["amg"]["iterations"] < figures["none"]["iterations"]
    else:
        assert figures["amg"] == "pyamg not installed"


@pytest.mark.slow
def test_sparse_systems_are_rebuilt_on_a_static_pattern(x64):
    # A SparseOperator passed whole into jit has a traced pattern; the harness closes over it.
    config = SyntheticSPDConfig(size=60, density=0.03)
    operators = [config.operator(config.sample(jax.random.key(i))) for i in range(2)]
    rebuild, values = precond_darcy._split(operators)
    rebuilt = jax.jit(lambda v: rebuild(v).mv(jnp.ones(60)))(values[1])
    np.testing.assert_allclose(rebuilt, operators[1].mv(jnp.ones(60)), rtol=1e-6)


def test_fourier_network_layer_is_the_truncated_fourier_multiplier_and_starts_as_the_identity():
    net = precond_darcy.FourierNetwork(3, width=2, modes=2, layers=1, key=jax.random.key(0))
    layer = eqx.filter_jit(lambda network, weights, v: network._fourier(weights, v))
    v = jax.random.normal(jax.random.key(1), (2, 16, 16))
    # Weights δ_io on every kept mode: the layer keeps modes |k1| < 2, 0 <= k2 < 2 of each channel.
    identity = jnp.zeros((2, 2, 2, 4, 2)).at[0].set(jnp.eye(2)[:, :, None, None])
    coefficients = np.fft.rfft2(np.asarray(v))
    mask = np.zeros((16, 9), bool)
    mask[[0, 1, 14, 15], :2] = True
    expected = np.fft.irfft2(np.where(mask, coefficients, 0), s=(16, 16))
    np.testing.assert_allclose(layer(net, identity, v), expected, atol=1e-5)
    # On an 8×6 grid with modes 4 every coefficient is kept: the identity map.
    wide = precond_darcy.FourierNetwork(3, width=2, modes=4, layers=1, key=jax.random.key(0))
    identity = jnp.zeros((2, 2, 2, 8, 4)).at[0].set(jnp.eye(2)[:, :, None, None])
    small = v[:, :8, :6]
    np.testing.assert_allclose(layer(wide, identity, small), small, atol=1e-5)
    # Untrained (zero projection), the network returns its residual channel on any grid.
    apply = eqx.filter_jit(lambda network, x: network(x))
    for n in (8, 20):
        x = jax.random.normal(jax.random.key(n), (3, n, n))
        np.testing.assert_array_equal(apply(net, x), x[:1])


def test_conditions_record_the_thread_settings_and_dcdm_runs_at_its_training_size_only(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", precond_darcy.SINGLE_THREADED_XLA)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")
    recorded = precond_darcy.conditions()
    assert recorded["xla_single_threaded"] and recorded["blas_single_threaded"]
    assert len(recorded["load_average_1_5_15_min"]) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert not precond_darcy.conditions()["blas_single_threaded"]
    assert precond_darcy.only_at_train_size(64, 64) == {}
    assert set(precond_darcy.only_at_train_size(128, 64)) == {"dcdm"}


@pytest.mark.parametrize("key, value, message", [
    ("sizes", (), "`sizes` must be a non-empty tuple"),
    ("steps", -1, "`steps` must be an integer >= 0"),
    ("rtol", 1.5, "`rtol` must be in"),
    ("train_size", 2, "`train_size` must be at least 4"),
])
def test_config_rejects_bad_values(key, value, message):
    with pytest.raises(ValueError, match=message):
        precond_darcy.Config(**{key: value})


@pytest.mark.slow
def test_tiny_run_through_the_cli(tmp_path):
    out = tmp_path / "run"
    argv = ["run", "precond_darcy", "--out", str(out), "--set", "sizes=8,16", "--set", "train_size=8",
            "--set", "steps=2", "--set", "n_test=1", "--set", "repeats=1", "--set", "progress=false"]
    assert cli.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["sizes_tested"] == [8, 16]
    trainers, _ = precond_darcy.learned_trainers()
    for n in ("8", "16"):
        figures = results["by_size"][n]
        for name in ("none", "jacobi", "gmg", "amg", *trainers):
            assert isinstance(figures[name], dict), (name, figures[name])
            assert figures[name]["relative_residual"] <= 1.01e-6
        assert figures["gmg"]["iterations"] < figures["jacobi"]["iterations"] < figures["none"]["iterations"]
    assert (out / "precond_darcy.png").exists()
    assert all((out / "models" / f"{name}.eqx").exists() for name in results["training"] if
               "failed" not in results["training"][name])
    assert results["table"][0][0] == "preconditioner" and results["summary"]
