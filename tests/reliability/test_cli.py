"""The command line refuses bad input with exit status 2 before doing any work, keeps one writer
per run folder, and never resumes a different run in a folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxpde import cli

FIXTURES = Path(__file__).parent.parent / "cli_experiments"


@pytest.fixture
def line_fit(monkeypatch):
    monkeypatch.setenv("JAXPDE_EXPERIMENTS", str(FIXTURES))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["steps=0"], "`steps` must be a positive integer, got 0"),
        (["steps=-5"], "`steps` must be a positive integer, got -5"),
        (["batch_size=500"], "`batch_size` (500) must not exceed `n_train` (200)"),
        (["n_train=-1"], "`n_train` must be a positive integer, got -1"),
        (["learning_rate=-0.1"], "`learning_rate` must be positive and finite, got -0.1"),
        (["learning_rate=nan"], "`learning_rate` must be positive and finite, got nan"),
        (["checkpoint_every=-1"], "`checkpoint_every` must be >= 0"),
        (["resolution=100"], "`resolution` must divide 1024"),
        (["darcy_points=1"], "`darcy_points` must be an integer >= 3"),
    ],
)
def test_tour_config_is_validated_before_any_work(overrides, message, tmp_path, capsys):
    argv = ["run", "tour", "--out", str(tmp_path / "run"), "--set", f"cache_dir={tmp_path / 'cache'}"]
    for item in overrides:
        argv += ["--set", item]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()  # nothing was done


def test_unwritable_out_exits_2(tmp_path, capsys, line_fit):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert cli.main(["run", "line_fit", "--out", str(blocker / "run")]) == 2
    assert "is not a writable folder" in capsys.readouterr().err


def test_a_changed_config_is_refused_with_the_keys_that_differ(tmp_path, capsys, line_fit):
    out = tmp_path / "run"
    assert cli.main(["run", "line_fit", "--out", str(out), "--set", "steps=20"]) == 0
    record = (out / "config.json").read_text()
    capsys.readouterr()
    assert cli.main(["run", "line_fit", "--out", str(out), "--set", "steps=20", "--set", "seed=3",
                     "--set", "learning_rate=0.05"]) == 2
    err = capsys.readouterr().err
    assert "learning_rate: 0.1 -> 0.05" in err and "seed: 0 -> 3" in err
    assert (out / "config.json").read_text() == record  # the record still describes the run on disk
    # Fewer steps is not an extension either.
    assert cli.main(["run", "line_fit", "--out", str(out), "--set", "steps=10"]) == 2
    assert "steps: 20 -> 10" in capsys.readouterr().err


def test_more_steps_extends_the_run_and_says_so(tmp_path, capsys, line_fit):
    out = tmp_path / "run"
    assert cli.main(["run", "line_fit", "--out", str(out), "--set", "steps=20"]) == 0
    capsys.readouterr()
    assert cli.main(["run", "line_fit", "--out", str(out), "--set", "steps=40"]) == 0
    assert "extending the run" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["resumed_from"] == 20
    assert json.loads((out / "config.json").read_text())["config"]["steps"] == 40


def test_another_experiment_in_the_folder_is_refused(tmp_path, capsys, line_fit):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"experiment": "tour", "config": {}}))
    assert cli.main(["run", "line_fit", "--out", str(out)]) == 2
    assert "holds a run of experiment 'tour'" in capsys.readouterr().err


def test_a_second_writer_exits_2_naming_the_holder(tmp_path, line_fit):
    """A process holds the folder's lock; the CLI in another process refuses to write there."""
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from jaxpde.training import run_lock\n"
         f"with run_lock({str(out)!r}):\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        env = {**os.environ, "JAXPDE_EXPERIMENTS": str(FIXTURES)}
        done = subprocess.run([sys.executable, "-m", "jaxpde.cli", "run", "line_fit", "--out", str(out)],
                              capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 2
        assert str(holder.pid) in done.stderr
        assert not (out / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
