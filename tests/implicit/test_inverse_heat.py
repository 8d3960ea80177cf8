"""inverse-heat: the closed-form oracle it compares with, bad configurations refused, a tiny run (slow)."""

import json

import numpy as np
import pytest

from jaxpde import cli
from jaxpde_experiments import inverse_heat


def test_closed_form_filter_limits():
    config = inverse_heat.Config(points=16)
    y = np.random.default_rng(0).normal(size=16)
    # λ = 0: the exact inverse; λ → ∞ with order 0: zero; order 1 keeps the mean (its symbol is 0 at k = 0)
    np.testing.assert_allclose(inverse_heat.closed_form(y, 0.1, 0.0, 0, config), inverse_heat.exact_inverse(y, config), rtol=1e-10)
    assert np.max(np.abs(inverse_heat.closed_form(y, 0.1, 1e30, 0, config))) < 1e-20
    np.testing.assert_allclose(inverse_heat.closed_form(y, 0.1, 1e30, 1, config), np.mean(y), atol=1e-12)


@pytest.mark.parametrize("key, value", [("points", "4"), ("levels", "1.5"), ("kappa", "0")])
def test_bad_config_is_refused(tmp_path, key, value):
    assert cli.main(["run", "inverse-heat", "--out", str(tmp_path / "x"), "--set", f"{key}={value}"]) == 2


@pytest.mark.slow  # ~30 s: bilevel compiles through the heat solve
def test_tiny_run_end_to_end(tmp_path):
    out = tmp_path / "run"
    args = ["--set", "points=16", "--set", "tune_steps=3", "--set", "max_steps=30", "--set", "levels=0.01",
            "--set", "progress=false"]
    assert cli.main(["run", "inverse_heat", "--out", str(out), *args]) == 0
    r = json.loads((out / "results.json").read_text())
    (row,) = r["levels"]
    for order in (0, 1):
        t = row[f"tikhonov_{order}"]
        # the tuned minimiser is the closed-form Tikhonov filter at the tuned λ
        assert t["closed_form_at_tuned_weight_max_abs"] < 1e-5
        assert t["relative_l2"] < row["exact_inverse"]["relative_l2"]
    assert (out / "inverse_heat.png").exists() or "skipped" in r["plot"]
