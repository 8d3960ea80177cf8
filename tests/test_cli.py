import json
import subprocess
import sys
from pathlib import Path

import pytest

from jaxpde import cli

FIXTURES = Path(__file__).parent / "cli_experiments"


@pytest.fixture
def fixture_experiments(monkeypatch):
    monkeypatch.setenv("JAXPDE_EXPERIMENTS", str(FIXTURES))


def test_list_shows_the_repository_experiments(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "tour" in out
    for name in cli.available():
        assert name.replace("_", "-") in out  # listed as the issues name them: precond-darcy


def test_dashed_and_underscored_names_are_one_experiment(tmp_path, fixture_experiments):
    assert cli.main(["run", "line-fit", "--set", "steps=20", "--out", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["experiment"] == "line_fit"


def test_run_writes_config_results_metrics_and_checkpoints(tmp_path, fixture_experiments):
    out = tmp_path / "run"
    assert cli.main(["run", "line_fit", "--set", "steps=200", "--set", "optimiser=adam", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert abs(results["slope"] - 2.0) < 1e-2 and abs(results["intercept"] + 1.0) < 1e-2
    config = json.loads((out / "config.json").read_text())
    assert config == {"experiment": "line_fit", "config": {"steps": 200, "learning_rate": 0.1, "seed": 0,
                                                           "optimiser": "adam", "verbose": False}}
    assert (out / "metrics.jsonl").exists() and (out / "checkpoints").is_dir()


def test_resume_continues_from_the_checkpoint(tmp_path, fixture_experiments):
    out = tmp_path / "run"
    assert cli.main(["run", "line_fit", "--set", "steps=20", "--out", str(out)]) == 0
    # Pretend the run was meant to be longer and was interrupted at step 20.
    record = json.loads((out / "config.json").read_text())
    record["config"]["steps"] = 40
    (out / "config.json").write_text(json.dumps(record))
    assert cli.main(["resume", str(out)]) == 0
    assert json.loads((out / "results.json").read_text())["resumed_from"] == 20


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "no_such_experiment"], "unknown experiment 'no_such_experiment'; choose one of: line-fit"),
        (["run", "line_fit", "--set", "stepz=3"], "unknown config key 'stepz'; valid keys: steps (int), learning_rate (float)"),
        (["run", "line_fit", "--set", "steps=many"], "config key 'steps' expects int; got 'many'"),
        (["run", "line_fit", "--set", "optimiser=lbfgs"], "config key 'optimiser' must be one of adam, sgd; got 'lbfgs'"),
        (["run", "line_fit", "--set", "verbose=maybe"], "expects a bool"),
        (["run", "line_fit", "--set", "steps"], "--set expects key=value"),
        (["resume", "/nonexistent/folder"], "is not a run folder"),
    ],
)
def test_bad_input_exits_2_and_lists_choices(argv, message, capsys, fixture_experiments):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_console_script_exit_code(tmp_path):
    done = subprocess.run([sys.executable, "-m", "jaxpde.cli", "run", "tour", "--set", "nonsense=1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "unknown config key 'nonsense'" in done.stderr


def test_record_writes_the_results_file_the_readme_is_built_from(tmp_path, monkeypatch):
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    (experiments / "line_fit.py").write_text((FIXTURES / "line_fit.py").read_text())
    monkeypatch.setenv("JAXPDE_EXPERIMENTS", str(experiments))
    assert cli.main(["run", "line_fit", "--record", "--out", str(tmp_path / "run")]) == 0
    recorded = json.loads((experiments / "results" / "line_fit.json").read_text())
    assert recorded["experiment"] == "line_fit" and recorded["config"]["steps"] == 40
    assert recorded["machine"]["jax_backend"] == "cpu" and "slope" in recorded


def test_a_full_scale_record_stands_beside_the_cpu_budget_one(tmp_path, monkeypatch):
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    # line_fit with a `scale` field, as the repository's experiments have.
    source = (FIXTURES / "line_fit.py").read_text().replace(
        "class Config:\n", 'class Config:\n    scale: Literal["cpu", "full"] = "cpu"\n')
    (experiments / "line_fit.py").write_text(source)
    monkeypatch.setenv("JAXPDE_EXPERIMENTS", str(experiments))
    assert cli.main(["run", "line_fit", "--record", "--out", str(tmp_path / "cpu")]) == 0
    assert cli.main(["run", "line_fit", "--record", "--set", "scale=full", "--out", str(tmp_path / "full")]) == 0
    cpu = json.loads((experiments / "results" / "line_fit.json").read_text())
    full = json.loads((experiments / "results" / "line_fit_full.json").read_text())
    assert cpu["config"]["scale"] == "cpu" and full["config"]["scale"] == "full"


def test_results_are_strict_json():
    # A blown-up classical setting's NaN error is written as null: NaN is not JSON.
    import json
    import math

    from jaxpde.cli import _strict_json

    text = _strict_json({"error": math.nan, "rows": [(1.0, math.inf)], "ok": 0.5})
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the JSON")) == {
        "error": None, "rows": [[1.0, None]], "ok": 0.5}
