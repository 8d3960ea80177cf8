"""The precond-darcy experiment: its measuring harness against ground truth, its config checks, and
(slow) a whole tiny run through the CLI."""

import json

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
