"""inverse-darcy: bad configurations are refused before any work; a tiny run end to end (slow)."""

import json

import numpy as np
import pytest

from jaxpde import cli


@pytest.mark.parametrize("key, value", [("size", "2"), ("levels", "0"), ("observations", "0"), ("tv_epsilon", "-1")])
def test_bad_config_is_refused(tmp_path, key, value):
    assert cli.main(["run", "inverse-darcy", "--out", str(tmp_path / "x"), "--set", f"{key}={value}"]) == 2


@pytest.mark.slow  # ~1 min: the bilevel compile through the Darcy solve
def test_tiny_run_end_to_end(tmp_path):
    out = tmp_path / "run"
    args = ["--set", "size=8", "--set", "observations=16", "--set", "validation=8", "--set", "tune_steps=2",
            "--set", "max_steps=30", "--set", "levels=0.01", "--set", "progress=false"]
    assert cli.main(["run", "inverse_darcy", "--out", str(out), *args]) == 0
    r = json.loads((out / "results.json").read_text())
    (row,) = r["levels"]
    for name in ("prior_mean", "unregularised", "tikhonov", "tv"):
        assert np.isfinite(row[name]["coefficient_relative_l2"])
    # the prior mean a = 1 is the starting point: every fit lowers the data misfit from it
    for name in ("unregularised", "tikhonov", "tv"):
        assert row[name]["misfit_per_observation"] < row["prior_mean"]["misfit_per_observation"]
    assert row["tikhonov"]["weight"] > 0 and len(row["tikhonov"]["weight_history"]) == 2
    assert (out / "inverse_darcy.png").exists() or "skipped" in r["plot"]
