"""Breakeven: the rollout count on synthetic costs, the cheapest matching setting, the unmatched
case, Fourier resampling, and classical settings of the heat equation scored and timed."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.grids import Grid
from jaxpde.pdes.diffusion import Heat
from jaxpde.neural_operators._breakeven import (
    SolverSetting,
    breakeven,
    breakeven_rollouts,
    evaluate_settings,
    fourier_resample,
    training_seconds,
)


def test_rollout_count_on_known_costs():
    # C = 100 s of data + training, the emulator 0.5 s per rollout, its matching solver 5 s:
    # 100 / 4.5 = 22.2 -> the 23rd rollout pays it back.
    assert breakeven_rollouts(100.0, 0.5, 5.0) == 23
    assert breakeven_rollouts(90.0, 0.5, 5.0) == 20  # exactly divisible
    assert breakeven_rollouts(10.0, 2.0, 2.0) == math.inf  # no faster: never
    settings = [SolverSetting("coarse", 0.1, 3.0), SolverSetting("medium", 0.01, 5.0), SolverSetting("fine", 1e-3, 20.0)]
    result = breakeven(0.02, 0.5, settings, data_seconds=60.0, training_seconds=40.0, reference=settings[-1])
    assert result.matched.name == "medium" and result.is_matched
    assert result.rollouts == 23 and result.rollouts_vs_reference == math.ceil(100 / 19.5)
    assert result.speedup == pytest.approx(10.0) and result.fixed_seconds == 100.0
    assert json.loads(json.dumps(result.as_dict()))["matched"]["name"] == "medium"
    # More accurate than every setting: the most accurate one, flagged (an upper bound on N*).
    better = breakeven(1e-4, 0.5, settings, data_seconds=60.0, training_seconds=40.0)
    assert better.matched.name == "fine" and not better.is_matched
    slow = breakeven(0.5, 4.0, settings, data_seconds=1.0, training_seconds=1.0)
    assert slow.matched.name == "coarse" and slow.as_dict()["rollouts"] == "inf"
    with pytest.raises(ValueError, match="emulator_seconds"):
        breakeven_rollouts(1.0, -1.0, 2.0)


def test_fourier_resample_is_exact_on_band_limited_fields():
    x16 = 2 * np.pi * np.arange(16) / 16
    u = np.cos(x16) + 0.3 * np.sin(3 * x16)
    coarse, back = jax.jit(lambda u: (fourier_resample(u, (8,)), fourier_resample(fourier_resample(u, (8,)), (16,))))(u)
    x8 = 2 * np.pi * np.arange(8) / 8
    np.testing.assert_allclose(coarse, np.cos(x8) + 0.3 * np.sin(3 * x8), atol=1e-6)
    np.testing.assert_allclose(back, u, atol=1e-6)
    two = np.stack([u, 2 * u])[:, :, None] * np.ones((1, 1, 6))  # (2, 16, 6): a batch of 2D fields
    assert jax.eval_shape(lambda v: fourier_resample(v, (8, 12)), two).shape == (2, 8, 12)


def test_heat_settings_are_scored_against_the_exact_solution_and_timed():
    kappa, interval, frames = 0.1, 0.5, 4
    make = lambda n: Heat(Grid(n, 2 * np.pi), kappa)  # noqa: E731
    x = 2 * np.pi * np.arange(32) / 32
    initial = jnp.asarray(np.stack([np.cos(x) + np.sin(5 * x), np.sin(2 * x)]), jnp.float32)
    decay = lambda m, t: np.exp(-kappa * m**2 * t)  # noqa: E731
    times = interval * np.arange(1, frames + 1)[:, None]
    reference = jnp.asarray(np.stack([np.cos(x) * decay(1, times) + np.sin(5 * x) * decay(5, times),
                                      np.sin(2 * x) * decay(2, times)]), jnp.float32)

    def error(p, r):
        return jnp.linalg.norm(p - r) / jnp.linalg.norm(r)

    out = evaluate_settings(make, initial, reference, interval, [(32, 0.5), (8, 0.25)], error, repeats=1)
    assert [s.name for s in out] == ["s=32, dt=0.5", "s=8, dt=0.25"]
    assert out[0].error < 1e-5  # ETDRK is exact for the heat equation on a resolving grid
    # 8 points keep |m| <= 3: the sin(5x) part is lost, exactly its share of the norm
    lost = np.linalg.norm(np.sin(5 * x) * decay(5, times)) / np.linalg.norm(reference)
    assert out[1].error == pytest.approx(lost, rel=1e-3)
    assert all(s.seconds > 0 for s in out)
    with pytest.raises(ValueError, match="divide"):
        evaluate_settings(make, initial, reference, interval, [(32, 0.3)], error)


def test_training_seconds_adds_the_time_logged_before_a_resume(tmp_path):
    from types import SimpleNamespace

    lines = [{"step": 50, "wall_s": 10.0}, {"step": 100, "wall_s": 21.0}, {"step": 150, "wall_s": 2.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert training_seconds(tmp_path, SimpleNamespace(resumed_from=100), 5.0) == 26.0
    assert training_seconds(tmp_path, SimpleNamespace(resumed_from=None), 5.0) == 5.0
