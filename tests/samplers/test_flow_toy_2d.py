"""flow-toy-2d end to end at a tiny size: reflow straightens the paths of a trained 2-D flow and
does not raise its transport cost; one-step sampling improves; the run resumes from its checkpoints."""

import json

import pytest

from jaxpde import cli

SMALL = ["--set", "datasets=eight_gaussians", "--set", "width=32", "--set", "depth=2", "--set", "steps=150",
         "--set", "reflow_steps=150", "--set", "reflow_pairs=512", "--set", "batch_size=128", "--set", "n_eval=256",
         "--set", "nfe=1,4", "--set", "straightness_steps=16", "--set", "ema_decay=0.9", "--set", "progress=false"]


@pytest.mark.slow  # ~40 s of CPU: two trainings, evaluations and a resume
def test_reflow_straightens_a_trained_flow(tmp_path):
    out = tmp_path / "flow"
    assert cli.main(["run", "flow_toy_2d", "--out", str(out), *SMALL]) == 0
    r = json.loads((out / "results.json").read_text())["eight_gaussians"]
    rf1, rf2 = r["rf1"], r["rf2"]
    assert rf2["straightness"] < 0.35 * rf1["straightness"]  # 0.19 vs 0.78 measured
    assert rf2["transport_cost"] <= 1.02 * rf1["transport_cost"]
    assert rf2["transport_cost"] < r["independent_transport_cost"]
    assert rf2["sw2"]["1"] < rf1["sw2"]["1"]
    # the exact 1-rectified flow of the mixture is curved too
    assert r["exact_rf1"]["straightness"] > 5 * rf2["straightness"]
    assert (out / "flow_toy_2d.png").exists() or "skipped" in json.loads((out / "results.json").read_text())["plot"]
    # resuming reads the final checkpoints of both stages
    assert cli.main(["resume", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())["eight_gaussians"]
    assert again["resumed_from"] == {"rf1": 150, "rf2": 150}
    assert again["rf2"]["sw2"] == rf2["sw2"]


def test_bad_config_is_refused(tmp_path):
    assert cli.main(["run", "flow_toy_2d", "--out", str(tmp_path / "x"), "--set", "datasets=spirals"]) == 2
