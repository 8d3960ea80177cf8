import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpde.training import (
    ArrayLoader,
    CheckpointStore,
    CorruptCheckpointError,
    NonFiniteError,
    fit,
    read_metrics,
)

SCRIPT = Path(__file__).parent / "train_script.py"


class Affine(eqx.Module):
    weight: jax.Array
    bias: jax.Array

    def __init__(self, n_in, n_out):
        self.weight = jnp.zeros((n_out, n_in))
        self.bias = jnp.zeros(n_out)

    def __call__(self, x):
        return self.weight @ x + self.bias


def regression_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([[1.0, -2.0, 0.5]]).T + 0.3 + 0.05 * rng.normal(size=(n, 1))).astype(np.float32)
    return x, y


def mse_loss(model, batch, key):
    x, y = batch
    residual = jax.vmap(model)(x) - y
    return jnp.mean(residual**2), {"mse": jnp.mean(residual**2)}


def leaves(model):
    return [np.asarray(leaf) for leaf in jax.tree.leaves(eqx.filter(model, eqx.is_array))]


def assert_bit_identical(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y), f"max difference {np.max(np.abs(x - y))}"


def test_fit_converges_to_least_squares():
    x, y = regression_data()
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    exact = np.linalg.lstsq(design, y, rcond=None)[0][:, 0]
    result = fit(
        Affine(3, 1), optax.adam(optax.exponential_decay(5e-2, 500, 0.1)), mse_loss, ArrayLoader((x, y), 64), steps=1500,
        key=jax.random.key(0), progress=False,
    )
    fitted = np.concatenate([np.asarray(result.model.weight)[0], np.asarray(result.model.bias)])
    np.testing.assert_allclose(fitted, exact, atol=1e-3)
    assert result.step == 1500
    assert set(result.history[-1]) >= {"step", "loss", "mse", "steps_per_s"}


def test_array_loader_visits_each_sample_once_per_epoch():
    loader = ArrayLoader(np.arange(20), batch_size=5, seed=3)
    epoch = np.concatenate([loader.batch_at(step) for step in range(4)])
    assert sorted(epoch.tolist()) == list(range(20))
    assert not np.array_equal(loader.epoch_order(0), loader.epoch_order(1))
    np.testing.assert_array_equal(loader.batch_at(6), ArrayLoader(np.arange(20), 5, seed=3).batch_at(6))


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.zeros((4, 2)), 0), r"`batch_size` must be an integer in \[1, 4\]"),
        (((np.zeros(4), np.zeros(5)), 2), "same leading"),
    ],
)
def test_array_loader_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        ArrayLoader(*args)


def sampler(key):
    x = jax.random.normal(key, (32, 3))
    return x, x @ jnp.array([[1.0], [-2.0], [0.5]]) + 0.3


@pytest.mark.parametrize("kind", ["array_loader", "sampler", "list"])
def test_resume_is_bit_identical(tmp_path, kind):
    x, y = regression_data()
    data = {
        "array_loader": ArrayLoader((x, y), 64),
        "sampler": sampler,
        "list": [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)] * 8,
    }[kind]
    common = dict(key=jax.random.key(7), progress=False, checkpoint_every=10, log_every=5)
    whole = fit(Affine(3, 1), optax.adam(1e-2), mse_loss, data, steps=50, out_dir=tmp_path / "whole", **common)
    fit(Affine(3, 1), optax.adam(1e-2), mse_loss, data, steps=30, out_dir=tmp_path / "split", **common)
    resumed = fit(Affine(3, 1), optax.adam(1e-2), mse_loss, data, steps=50, out_dir=tmp_path / "split", **common)
    assert resumed.resumed_from == 30
    assert_bit_identical(leaves(whole.model), leaves(resumed.model))
    # metrics.jsonl reads as one run
    assert [r["step"] for r in read_metrics(tmp_path / "split" / "metrics.jsonl")] == list(range(5, 51, 5))


def run_script(out_dir, steps, sleep, devices=None, env=None):
    command = [sys.executable, str(SCRIPT), str(out_dir), str(steps), str(sleep)]
    if devices is not None:
        command.append(str(devices))
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


# Slow (the default suite's budget): tests/reliability/test_training.py kills twice at random points
# in the default set.
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_kill_9_at_a_random_step_then_resume_is_bit_identical(tmp_path, seed):
    steps = 60
    reference = run_script(tmp_path / "reference", steps, 0.0)
    assert reference.wait(timeout=300) == 0, reference.stdout.read().decode()

    victim = run_script(tmp_path / "victim", steps, 0.02)
    checkpoints = tmp_path / "victim" / "checkpoints"
    deadline = time.monotonic() + 120
    while not (checkpoints.exists() and any(p.name.isdigit() for p in checkpoints.iterdir())):
        assert victim.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # Somewhere between the first checkpoint (step 7) and the end (~1.2 s of batches later).
    time.sleep(random.Random(seed).uniform(0.0, 0.8))
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "victim" / "final.npz").exists(), "the run finished before the kill"

    resumed = run_script(tmp_path / "victim", steps, 0.0)
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read().decode()
    a, b = np.load(tmp_path / "reference" / "final.npz"), np.load(tmp_path / "victim" / "final.npz")
    assert_bit_identical([a[k] for k in a.files], [b[k] for k in b.files])


def damage(checkpoint_dir: Path):
    """Truncate every data file of one checkpoint, as a full disk or a bad copy would."""
    for path in checkpoint_dir.rglob("*"):
        if path.is_file() and path.stat().st_size > 0 and "state" in path.parts:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_damaged_latest_checkpoint_falls_back_to_previous(tmp_path):
    x, y = regression_data()
    common = dict(key=jax.random.key(0), progress=False, checkpoint_every=10, log_every=10)
    whole = fit(Affine(3, 1), optax.adam(1e-2), mse_loss, ArrayLoader((x, y), 64), steps=40, **common)
    fit(Affine(3, 1), optax.adam(1e-2), mse_loss, ArrayLoader((x, y), 64), steps=30, out_dir=tmp_path, **common)
    damage(tmp_path / "checkpoints" / "30")
    # A leftover of a save killed half-way: never a candidate.
    (tmp_path / "checkpoints" / "40.orbax-checkpoint-tmp-1234").mkdir()
    resumed = fit(Affine(3, 1), optax.adam(1e-2), mse_loss, ArrayLoader((x, y), 64), steps=40, out_dir=tmp_path, **common)
    assert resumed.resumed_from == 20
    assert_bit_identical(leaves(whole.model), leaves(resumed.model))


def test_fingerprint_mismatch_is_detected(tmp_path):
    store = CheckpointStore(tmp_path, keep=2, asynchronous=False)
    arrays = [jnp.arange(4.0), jnp.ones((2, 2), jnp.int32)]
    store.save(1, arrays, {})
    store.save(2, arrays, {})
    store.wait()
    meta = tmp_path / "2" / "meta" / "metadata"
    record = json.loads(meta.read_text())
    record["fingerprint"] += 1
    meta.write_text(json.dumps(record))
    with pytest.raises(CorruptCheckpointError, match="fingerprint"):
        store.restore(2, arrays)
    restored, metadata = store.restore_latest(arrays)
    assert metadata["step"] == 1
    assert_bit_identical([np.asarray(a) for a in restored], [np.asarray(a) for a in arrays])


def nan_at_batch(k):
    x, y = regression_data(n=64)
    batches = [(x[:32], y[:32])] * 20
    bad = y[:32].copy()
    bad[3] = np.nan
    batches[k] = (x[:32], bad)
    return batches


def test_nan_guard_names_step_and_term_and_keeps_last_good_checkpoint(tmp_path):
    def loss(model, batch, key):
        x, y = batch
        fit_term = jnp.mean((jax.vmap(model)(x) - y) ** 2)
        return fit_term + 0.1 * jnp.sum(model.weight**2), {"data": fit_term, "weight_decay": jnp.sum(model.weight**2)}

    with pytest.raises(NonFiniteError, match=r"non-finite loss term 'data' at step 13 .*step 10\) is kept") as info:
        fit(Affine(3, 1), optax.sgd(1e-2), loss, nan_at_batch(12), steps=20, key=jax.random.key(0),
            out_dir=tmp_path, checkpoint_every=5, log_every=4, progress=False)
    assert info.value.step == 13 and np.isnan(info.value.values["data"])
    assert CheckpointStore(tmp_path / "checkpoints").steps() == [5, 10]


def test_nan_guard_catches_gradients():
    def loss(model, batch, key):  # finite value, infinite gradient: d/dw sqrt(w^2) at w = 0
        return jnp.sqrt(jnp.sum(model.weight**2)), {}

    with pytest.raises(NonFiniteError, match="non-finite gradient at step 1"):
        fit(Affine(3, 1), optax.sgd(1e-2), loss, nan_at_batch(0), steps=5, key=jax.random.key(0), progress=False)


def test_keyboard_interrupt_saves_a_checkpoint_and_resume_completes(tmp_path):
    x, y = regression_data()
    batches = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)] * 4

    class Interrupted:
        def __iter__(self):
            for i, batch in enumerate(batches):
                if i == 13:
                    raise KeyboardInterrupt
                yield batch

    common = dict(key=jax.random.key(0), progress=False, checkpoint_every=100, log_every=5)
    with pytest.raises(KeyboardInterrupt):
        fit(Affine(3, 1), optax.adam(1e-2), mse_loss, Interrupted(), steps=30, out_dir=tmp_path, **common)
    assert CheckpointStore(tmp_path / "checkpoints").steps() == [13]
    resumed = fit(Affine(3, 1), optax.adam(1e-2), mse_loss, batches, steps=30, out_dir=tmp_path, **common)
    whole = fit(Affine(3, 1), optax.adam(1e-2), mse_loss, batches, steps=30, **common)
    assert resumed.resumed_from == 13
    assert_bit_identical(leaves(whole.model), leaves(resumed.model))


def test_one_shot_iterator_cannot_resume(tmp_path):
    x, y = regression_data()
    common = dict(key=jax.random.key(0), progress=False, checkpoint_every=5)
    fit(Affine(3, 1), optax.sgd(1e-2), mse_loss, [(x, y)] * 5, steps=5, out_dir=tmp_path, **common)
    with pytest.raises(ValueError, match="one-shot iterator"):
        fit(Affine(3, 1), optax.sgd(1e-2), mse_loss, iter([(x, y)] * 10), steps=10, out_dir=tmp_path, **common)


def test_resume_false_refuses_to_overwrite(tmp_path):
    x, y = regression_data()
    common = dict(key=jax.random.key(0), progress=False, out_dir=tmp_path)
    fit(Affine(3, 1), optax.sgd(1e-2), mse_loss, [(x, y)] * 3, steps=3, **common)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        fit(Affine(3, 1), optax.sgd(1e-2), mse_loss, [(x, y)] * 3, steps=3, resume=False, **common)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(steps=-1), ValueError, "`steps` must be an integer >= 0"),
        (dict(log_every=0), ValueError, "`log_every` must be an integer >= 1"),
        (dict(key=0), TypeError, "`key` must be a JAX PRNG key"),
        (dict(devices=99), ValueError, "`devices` must be between 1 and"),
        (dict(data=42), TypeError, "`data` must be a sampler function"),
        (dict(loss_fn=lambda m, b, k: jax.vmap(m)(b[0])), ValueError, "loss term 'loss' must be a scalar"),
        (dict(model=lambda x: x), TypeError, "`model` must be an equinox.Module"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    x, y = regression_data()
    arguments = dict(model=Affine(3, 1), optimiser=optax.sgd(1e-2), loss_fn=mse_loss, data=[(x, y)], steps=1,
                     key=jax.random.key(0), progress=False)
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        fit(**arguments)


MULTI_DEVICE = """
import jax, jax.numpy as jnp, numpy as np, optax, equinox as eqx
from jaxpde.training import fit, ArrayLoader
assert len(jax.devices()) == 4, jax.devices()
rng = np.random.default_rng(0)
x = rng.normal(size=(512, 2)).astype(np.float32)
y = np.sin(x[:, :1]) * np.cos(x[:, 1:]).astype(np.float32)
def loss(model, batch, key):
    xb, yb = batch
    return jnp.mean((jax.vmap(model)(xb) - yb) ** 2)
def sampler(key):
    xb = jax.random.normal(key, (64, 2))
    return xb, jnp.sin(xb[:, :1]) * jnp.cos(xb[:, 1:])
for data in (ArrayLoader((x, y), 64), sampler):
    runs = {}
    for devices in (1, 4):
        model = eqx.nn.MLP(2, 1, 32, 2, key=jax.random.key(1))
        result = fit(model, optax.adam(1e-2), loss, data, steps=20, key=jax.random.key(0), devices=devices,
                     progress=False)
        runs[devices] = [np.asarray(a) for a in jax.tree.leaves(eqx.filter(result.model, eqx.is_array))]
        if devices == 4:
            assert len(jax.tree.leaves(result.model)[0].sharding.device_set) == 4
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(runs[1], runs[4]))
    assert diff <= 1e-5, diff
    print("max difference", diff)
"""


def test_data_parallel_on_4_devices_matches_single_device():
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4"}
    done = subprocess.run([sys.executable, "-c", MULTI_DEVICE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("max difference") == 2


def test_batch_must_split_evenly_across_devices():
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4"}
    code = (
        "import jax, jax.numpy as jnp, optax, equinox as eqx\n"
        "from jaxpde.training import fit\n"
        "m = eqx.nn.Linear(2, 1, key=jax.random.key(0))\n"
        "try:\n"
        "    fit(m, optax.sgd(0.1), lambda m, b, k: jnp.mean(jax.vmap(m)(b)), [jnp.ones((6, 2))], steps=1,\n"
        "        key=jax.random.key(0), progress=False)\n"
        "except ValueError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert "multiple of 4" in done.stdout, done.stdout + done.stderr


def test_checkpoint_retention_keeps_newest(tmp_path):
    x, y = regression_data()
    fit(Affine(3, 1), optax.sgd(1e-2), mse_loss, ArrayLoader((x, y), 32), steps=50, key=jax.random.key(0),
        out_dir=tmp_path, checkpoint_every=10, keep_checkpoints=2, progress=False)
    assert CheckpointStore(tmp_path / "checkpoints").steps() == [40, 50]
    shutil.rmtree(tmp_path)


# ----------------------------------------------------------------------------- steps_per_call


@pytest.mark.parametrize("kind", ["array_loader", "sampler", "list"])
def test_steps_per_call_trains_exactly_as_one_step_per_call(kind, monkeypatch):
    from jaxpde.training import _engine

    made = []

    def counted(train_step, length):
        steps = scanned_steps(train_step, length)

        def call(state, inputs):
            made.append(int(state.step))
            return steps(state, inputs)

        return call

    scanned_steps = _engine.scanned_steps
    monkeypatch.setattr(_engine, "scanned_steps", counted)
    x, y = regression_data()
    data = {
        # 8 steps per epoch: calls of 5 steps fit inside some epochs and straddle others.
        "array_loader": ArrayLoader((x, y), 32),
        "sampler": sampler,
        "list": [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)] * 8,
    }[kind]
    common = dict(key=jax.random.key(7), progress=False, log_every=10)
    one = fit(Affine(3, 1), optax.adam(1e-2), mse_loss, data, steps=53, **common)
    many = fit(Affine(3, 1), optax.adam(1e-2), mse_loss, data, steps=53, steps_per_call=5, **common)
    # Calls start at multiples of 5 and end by step 53; an ArrayLoader's (8 steps per epoch) stay
    # inside an epoch; a list's host batches go one per call.
    expected = {"array_loader": [0, 10, 25, 35, 40], "sampler": list(range(0, 50, 5)), "list": []}[kind]
    assert made == expected
    assert many.step == 53
    assert [r["step"] for r in many.history] == [10, 20, 30, 40, 50, 53]
    assert [r["loss"] for r in many.history] == [r["loss"] for r in one.history]
    assert_bit_identical(leaves(one.model), leaves(many.model))


def test_steps_per_call_resume_is_bit_identical(tmp_path):
    common = dict(key=jax.random.key(7), progress=False, checkpoint_every=10, log_every=5, steps_per_call=5)
    whole = fit(Affine(3, 1), optax.adam(1e-2), mse_loss, sampler, steps=50, out_dir=tmp_path / "whole", **common)
    fit(Affine(3, 1), optax.adam(1e-2), mse_loss, sampler, steps=30, out_dir=tmp_path / "split", **common)
    resumed = fit(Affine(3, 1), optax.adam(1e-2), mse_loss, sampler, steps=50, out_dir=tmp_path / "split", **common)
    assert resumed.resumed_from == 30
    assert_bit_identical(leaves(whole.model), leaves(resumed.model))


def test_steps_per_call_nan_guard_names_the_step_inside_a_call(tmp_path):
    # The update of step 13 (the 13th) is non-finite; it lies inside the call of steps 13-16.
    def loss(model, batch, key, extra):
        x, y = batch
        fit_term = jnp.mean((jax.vmap(model)(x) - y) ** 2)
        fit_term = jnp.where(extra == 12, jnp.nan, fit_term)
        return fit_term, {"data": fit_term}, extra + 1

    with pytest.raises(NonFiniteError, match=r"non-finite loss term 'data' at step 13 .*step 8\) is kept"):
        fit(Affine(3, 1), optax.sgd(1e-2), loss, sampler, steps=20, key=jax.random.key(0), extra=jnp.zeros((), jnp.int32),
            out_dir=tmp_path, checkpoint_every=8, log_every=4, steps_per_call=4, progress=False)
    assert CheckpointStore(tmp_path / "checkpoints").steps() == [8]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps_per_call=0), r"`steps_per_call` must be an integer >= 1, got 0"),
        (dict(steps_per_call=3, log_every=10), r"`log_every` \(10\) must be a multiple of `steps_per_call` \(3\)"),
        (dict(steps_per_call=5, log_every=10, checkpoint_every=12, out_dir=True), r"`checkpoint_every` \(12\) must be a multiple"),
    ],
)
def test_steps_per_call_bad_input(tmp_path, kwargs, match):
    if kwargs.get("out_dir"):
        kwargs["out_dir"] = tmp_path
    with pytest.raises(ValueError, match=match):
        fit(Affine(3, 1), optax.sgd(1e-2), mse_loss, sampler, steps=10, key=jax.random.key(0), progress=False, **kwargs)
