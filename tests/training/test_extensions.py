"""The extension points of `fit`: EMA, extra state, callbacks, custom steps, the guard on
updates and parameters, run identities and the run-folder lock."""

import logging
import math
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpde.training import (
    AbstractTrainStep,
    ArrayLoader,
    CheckpointStore,
    EarlyStopping,
    Evaluate,
    NonFiniteError,
    RunLockedError,
    RunMismatchError,
    StepOutput,
    TrainResult,
    fit,
    read_metrics,
    run_lock,
)

from .test_engine import Affine, assert_bit_identical, leaves, mse_loss, regression_data

COMMON = dict(key=jax.random.key(0), progress=False)


class Scalar(eqx.Module):
    w: jax.Array


def linear_loss(model, batch, key):
    return 3.0 * jnp.sum(model.w), {}


def test_ema_matches_its_recursion():
    # sgd on a linear loss: w_t = w_0 − lr·3·t exactly; the EMA follows its own recursion.
    decay, lr, steps = 0.9, 0.1, 25
    result = fit(Scalar(jnp.array([1.0])), optax.sgd(lr), linear_loss, lambda k: (), steps=steps, ema_decay=decay, **COMMON)
    w, ema = 1.0, 1.0
    for _ in range(steps):
        w -= lr * 3.0
        ema = decay * ema + (1 - decay) * w
    np.testing.assert_allclose(float(result.model.w[0]), w, rtol=1e-5)
    np.testing.assert_allclose(float(result.ema_model.w[0]), ema, rtol=1e-5)
    assert fit(Scalar(jnp.array([1.0])), optax.sgd(lr), linear_loss, lambda k: (), steps=2, **COMMON).ema_model is None


def test_train_result_is_immutable():
    result = fit(Scalar(jnp.array([1.0])), optax.sgd(0.1), linear_loss, lambda k: (), steps=1, **COMMON)
    assert isinstance(result, TrainResult)
    with pytest.raises(AttributeError):
        result.step = 5


def averaging_loss(model, batch, key, extra):
    """An MSE whose weight depends on a moving average of itself, kept in `extra`."""
    loss, _ = mse_loss(model, batch, key)
    weight = 1.0 / (1.0 + extra["average"])
    new = {"average": 0.5 * extra["average"] + 0.5 * jax.lax.stop_gradient(loss), "count": extra["count"] + 1}
    return weight * loss, {"mse": loss}, new


def test_extra_state_follows_its_update_and_is_returned():
    x, y = regression_data()
    extra = {"average": jnp.zeros(()), "count": jnp.zeros((), jnp.int32)}
    result = fit(Affine(3, 1), optax.adam(1e-2), averaging_loss, ArrayLoader((x, y), 64), steps=12, extra=extra,
                 log_every=1, **COMMON)
    average = 0.0
    for record in result.history:  # the mse of each step, before its update
        average = 0.5 * average + 0.5 * record["mse"]
    assert int(result.extra["count"]) == 12
    np.testing.assert_allclose(float(result.extra["average"]), average, rtol=1e-6)


def test_extra_requires_the_three_output_loss():
    with pytest.raises(TypeError, match=r"with `extra`, `loss_fn` must return \(loss, \{name: term\}, new_extra\)"):
        fit(Scalar(jnp.array([1.0])), optax.sgd(0.1), lambda m, b, k, e: linear_loss(m, b, k), lambda k: (), steps=1,
            extra=jnp.zeros(()), **COMMON)


def test_evaluate_records_the_validation_loss_of_the_logged_model():
    x, y = regression_data()
    xv, yv = regression_data(n=64, seed=1)

    def validation(model):
        return jnp.mean((jax.vmap(model)(xv) - yv) ** 2)

    seen = []
    result = fit(Affine(3, 1), optax.adam(1e-2), mse_loss, ArrayLoader((x, y), 64), steps=40, log_every=10,
                 ema_decay=0.5, callbacks=[Evaluate(validation), Evaluate(validation, "ema_val", use_ema=True),
                                           lambda point: seen.append(dict(point.record))], **COMMON)
    assert [r["step"] for r in result.history] == [10, 20, 30, 40]
    np.testing.assert_allclose(result.history[-1]["val_loss"], float(validation(result.model)), rtol=1e-6)
    np.testing.assert_allclose(result.history[-1]["ema_val"], float(validation(result.ema_model)), rtol=1e-6)
    assert "val_loss" in seen[-1]  # a later callback sees the earlier ones' metrics


def test_early_stopping_stops_on_a_plateau_and_a_resumed_run_stays_stopped(tmp_path):
    x, y = regression_data()
    # lr = 0: the loss never improves; patience 2 stops at the third log point.
    run = dict(steps=100, log_every=5, callbacks=[EarlyStopping("loss", patience=2)], out_dir=tmp_path, **COMMON)
    result = fit(Affine(3, 1), optax.sgd(0.0), mse_loss, [(x[:32], y[:32])] * 100, **run)
    assert result.step == 15 and "loss has not improved for 2 log points" in result.stop_reason
    assert CheckpointStore(tmp_path / "checkpoints").steps()[-1] == 15
    again = fit(Affine(3, 1), optax.sgd(0.0), mse_loss, [(x[:32], y[:32])] * 100, **run)
    assert again.step == 15 and again.stop_reason == result.stop_reason and again.history == ()


class FixedPoint(eqx.Module):
    x: jax.Array


class FixedPointStep(AbstractTrainStep):
    """x ← scale·cos(x): not a gradient step. Its fixed point for scale 1 is the Dottie number."""

    def init(self, model):
        return jnp.zeros((), jnp.int32)  # counts its own updates, to show the state is threaded

    def __call__(self, loss_fn, model, opt_state, batch, key, extra):
        loss, terms, extra = loss_fn(model, batch, key, extra)
        new = eqx.tree_at(lambda m: m.x, model, batch * jnp.cos(model.x))
        return StepOutput(new, opt_state + 1, extra, loss, terms)


def residual(model, batch, key):
    return jnp.sum((model.x - jnp.cos(model.x)) ** 2), {}


def test_a_user_step_trains_a_fixed_point():
    result = fit(FixedPoint(jnp.array([0.0, 1.0])), FixedPointStep(), residual, [jnp.ones(1)] * 200, steps=200, **COMMON)
    np.testing.assert_allclose(np.asarray(result.model.x), 0.7390851332, atol=1e-6)
    assert int(result.opt_state) == 200 and result.history[-1]["loss"] < 1e-12


def test_a_user_step_is_guarded_on_its_new_parameters(tmp_path):
    scales = [jnp.ones(1)] * 20
    scales[7] = jnp.full(1, jnp.nan)  # the update of step 8 writes NaN parameters; its loss is finite
    with pytest.raises(NonFiniteError, match=r"non-finite parameters at step 8 .*step 5\) is kept") as info:
        fit(FixedPoint(jnp.array([0.0])), FixedPointStep(), residual, scales, steps=20, out_dir=tmp_path,
            checkpoint_every=5, log_every=10, **COMMON)
    assert info.value.term == "parameters" and math.isfinite(info.value.values["loss"])


def test_lbfgs_gets_the_loss_for_its_line_search():
    x, y = regression_data()
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    exact = np.linalg.lstsq(design, y, rcond=None)[0][:, 0]
    result = fit(Affine(3, 1), optax.lbfgs(), mse_loss, [(x, y)] * 30, steps=30, **COMMON)
    fitted = np.concatenate([np.asarray(result.model.weight)[0], np.asarray(result.model.bias)])
    np.testing.assert_allclose(fitted, exact, atol=1e-4)


class TwoParameters(eqx.Module):
    used: jax.Array
    unused: jax.Array


def test_guard_catches_a_nan_update_of_adam_with_eps_0():
    # The unused parameter has gradient 0, so Adam's update is 0 / (sqrt(0) + 0) = NaN.
    model = TwoParameters(jnp.ones(2), jnp.ones(2))
    with pytest.raises(NonFiniteError, match="non-finite update at step 1") as info:
        fit(model, optax.adam(1e-2, eps=0.0), lambda m, b, k: jnp.sum(m.used**2), lambda k: (), steps=5, **COMMON)
    assert info.value.term == "update"


def test_guard_catches_a_schedule_hitting_inf_and_the_last_checkpoint_is_good(tmp_path):
    x, y = regression_data()
    schedule = lambda count: jnp.where(count >= 5, jnp.inf, 1e-2)  # noqa: E731
    with pytest.raises(NonFiniteError, match=r"non-finite update at step 6 .*step 5\) is kept") as info:
        fit(Affine(3, 1), optax.sgd(schedule), mse_loss, ArrayLoader((x, y), 64), steps=20, out_dir=tmp_path,
            checkpoint_every=1, log_every=10, asynchronous_checkpoints=False, **COMMON)
    assert info.value.last_checkpoint == 5
    store = CheckpointStore(tmp_path / "checkpoints")
    assert store.steps()[-1] == 5
    template = [np.zeros((1, 3), np.float32), np.zeros(1, np.float32), np.zeros((), np.int32)]
    restored, _ = store.restore_latest(template + [np.zeros((), np.int32), np.zeros(2, np.uint32)])
    assert all(np.all(np.isfinite(np.asarray(a))) for a in restored)
    store.close()


def identity_run(out_dir, steps=10, model=None, loader_seed=0, key=0, lr=1e-2, run_config=None, **kwargs):
    x, y = regression_data()
    return fit(model or Affine(3, 1), optax.adam(lr), mse_loss, ArrayLoader((x, y), 64, seed=loader_seed), steps=steps,
               key=jax.random.key(key), out_dir=out_dir, progress=False, checkpoint_every=5,
               run_config=run_config if run_config is not None else {"lr": lr, "steps": steps}, **kwargs)


@pytest.mark.parametrize(
    "change, keys",
    [
        (dict(lr=2e-2), {"run_config.lr"}),
        (dict(loader_seed=1), {"data.seed"}),
        (dict(key=1), {"key"}),
        (dict(model=Affine(3, 2)), {"model.weight", "model.bias", "optimiser_state[0].mu.weight"}),
        (dict(steps=8), {"steps"}),
        (dict(ema_decay=0.9), {"ema_decay"}),
    ],
)
def test_resuming_a_different_run_is_refused_naming_the_differences(tmp_path, change, keys):
    identity_run(tmp_path)
    with pytest.raises(RunMismatchError, match="different run") as info:
        identity_run(tmp_path, **change)
    assert keys <= set(info.value.differences), info.value.differences
    assert isinstance(info.value, ValueError)
    if "run_config.lr" in keys:
        assert info.value.differences["run_config.lr"] == (1e-2, 2e-2) and "run_config.lr: 0.01 → 0.02" in str(info.value)


def test_a_larger_steps_extends_the_run_exactly(tmp_path, caplog):
    whole = identity_run(tmp_path / "whole", steps=20, run_config={})
    identity_run(tmp_path / "split", steps=10, run_config={})
    with caplog.at_level(logging.WARNING, logger="jaxpde.training._engine"):
        extended = identity_run(tmp_path / "split", steps=20, run_config={})
    assert "extending the run" in caplog.text and "from 10 to 20 steps" in caplog.text
    assert extended.resumed_from == 10
    assert_bit_identical(leaves(whole.model), leaves(extended.model))


def test_run_lock_is_reentrant_and_excludes_other_processes(tmp_path):
    code = (
        "import sys, time\nfrom jaxpde.training import run_lock\n"
        f"with run_lock({str(tmp_path)!r}):\n    print('held', flush=True)\n    time.sleep(60)\n"
    )
    with run_lock(tmp_path):
        with run_lock(tmp_path):  # the CLI holds it and calls fit on the same folder
            identity_run(tmp_path, steps=2)
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert other.returncode != 0 and "RunLockedError" in other.stderr and "is in use by process" in other.stderr
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=rf"in use by process {holder.pid} on host"):
            identity_run(tmp_path, steps=4)
    finally:
        holder.kill()
        holder.wait()
    assert identity_run(tmp_path, steps=4).step == 4  # the kernel dropped the dead holder's lock
