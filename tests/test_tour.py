"""The main job (`jaxpde run`) runs end to end; its solver figures meet their ground truth."""

import json

import pytest

from jaxpde import cli


def _run_small(tmp_path):
    out = tmp_path / "tour"
    argv = ["run", "tour", "--out", str(out), "--set", "n_train=20", "--set", "n_test=10", "--set", "steps=60",
            "--set", "batch_size=10", "--set", "darcy_points=31", "--set", f"cache_dir={tmp_path / 'cache'}",
            "--set", "progress=false", "--set", "preconditioner_steps=5", "--set", "sampler_points=64",
            "--set", "pinn_gauss_newton_steps=5", "--set", "pinn_adam_steps=50"]
    assert cli.main(argv) == 0
    return out


def test_tour_runs_small(tmp_path):
    out = _run_small(tmp_path)
    results = json.loads((out / "results.json").read_text())
    assert results["burgers_relative_l2"] < 1e-4  # ETDRK4 vs Cole–Hopf, float32
    assert results["darcy_cg_jacobi_relative_residual"] <= 1e-4
    assert results["darcy_cg_none_relative_residual"] <= 1e-4
    assert results["dataset_generated"] is True
    assert results["darcy_cg_gmg_iterations"] < results["darcy_cg_ic0_iterations"] < results["darcy_cg_jacobi_iterations"]
    assert results["darcy_cg_neural_if_iterations"] < results["darcy_cg_jacobi_iterations"]
    assert results["sampler_dpm_solver_pp_2m_nfe"] == results["sampler_euler_nfe"] == 10
    assert results["sampler_dpm_solver_pp_2m_error"] < 0.5 * results["sampler_euler_error"]  # 0.04 vs 0.13 at full size
    assert 0 < results["surrogate_test_relative_l2"] < 1.0
    # the inverse Darcy row: the regularised recovery beats the prior mean a = 1 (0.26 vs 0.56 measured standalone)
    assert results["inverse_darcy_relative_l2"] < 0.85 * results["inverse_darcy_prior_relative_l2"]
    # the PINN row: five Gauss–Newton steps beat fifty Adam steps (0.92 vs 5.2; 3.2e-3 vs 4.8e-2 at 30 vs 3000)
    assert results["pinn_gauss_newton_relative_l2"] < 0.5 * results["pinn_adam_relative_l2"]
    for name in ("config.json", "metrics.jsonl", "tour.png"):
        assert (out / name).exists()


@pytest.mark.slow  # the small run again, then its resume (~100 s of CPU); the default set runs it once
def test_tour_resumes_from_its_checkpoints_and_reads_the_cached_dataset(tmp_path):
    out = _run_small(tmp_path)
    assert cli.main(["resume", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["dataset_generated"] is False and again["surrogate_resumed_from"] == 60
