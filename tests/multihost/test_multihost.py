"""Several processes on one machine: the launcher, start-up failures, `fit` and dataset generation.

Every job here is two processes × two CPU devices on localhost (gloo collectives), started with
``python -m jaxpde.launch``, the way a user tries a multi-host script before a cluster. The
ground truths: a global sum known in closed form; the same run on one process with four
devices (`fit` to 1e-5, a dataset bit for bit); an uninterrupted two-process run (a killed and
resumed one, bit for bit).
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxpde import distributed
from jaxpde.launch import process_environment
from tests.reliability.test_training import assert_bit_identical, final, finish, wait_for_checkpoint

HERE = Path(__file__).parent
COLLECTIVE, FIT, DATA = HERE / "worker_collective.py", HERE / "worker_fit.py", HERE / "worker_data.py"
# The single-process references: one process, four CPU devices.
ENV_4_DEVICES = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4"}


def launch_command(*args, processes=2, timeout=120):
    return [
        sys.executable, "-m", "jaxpde.launch", "-n", str(processes), "--cpu-devices", "2", "--timeout", str(timeout),
        *map(str, args),
    ]


def run(command, env=None, timeout=300):
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def start(command, env=None):
    command = [str(part) for part in command]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


# --- quick: the launcher, a collective, start-up failures -------------------------------------


def test_launcher_environment_replaces_the_device_count_and_keeps_other_flags():
    base = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8 --xla_cpu_enable_fast_math=false", "HOME": "/h"}
    env = process_environment(base, 1, 2, "127.0.0.1:1234", 3, 30.0)
    assert env["XLA_FLAGS"].split() == ["--xla_cpu_enable_fast_math=false", "--xla_force_host_platform_device_count=3"]
    assert (env[distributed.ENV_ADDRESS], env[distributed.ENV_NUM_PROCESSES], env[distributed.ENV_PROCESS_ID]) == (
        "127.0.0.1:1234", "2", "1",
    )
    assert env["JAX_PLATFORMS"] == "cpu" and env["HOME"] == "/h" and env[distributed.ENV_TIMEOUT] == "30"


def test_two_processes_sum_over_four_devices():
    # Process p holds rows 10p + (0, 1): the global sum over the 4-device mesh is 0+1+10+11 = 22.
    result = run(launch_command(COLLECTIVE))
    assert result.returncode == 0, result.stdout + result.stderr
    for p in (0, 1):
        assert f"[{p}] process {p} of 2: devices 4 sum 22.0 gathered [[0.25], [1.25]] agree False" in result.stdout


def test_a_process_that_fails_to_start_stops_the_job():
    # Process 1 exits (status 3) before joining; process 0 would wait for it at start-up. The
    # launcher kills it at once and reports which process failed.
    started = time.monotonic()
    result = run(launch_command(COLLECTIVE, 1, timeout=120), timeout=60)
    assert result.returncode == 3
    assert "jaxpde.launch: process 1 of 2 exited with status 3; stopping the other processes." in result.stderr
    assert "sum" not in result.stdout
    assert time.monotonic() - started < 60  # far from process 0's 120 s start-up deadline


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("process_id", [0, 1])
def test_a_missing_peer_is_a_clear_start_up_timeout(process_id):
    # No launcher: one process of a job of two, its peer never started (process 0 hosts the
    # coordinator; process 1 finds none). Either exits after the deadline, naming itself.
    address = f"127.0.0.1:{_free_port()}"
    env = {
        **os.environ, "JAX_PLATFORMS": "cpu", distributed.ENV_ADDRESS: address, distributed.ENV_NUM_PROCESSES: "2",
        distributed.ENV_PROCESS_ID: str(process_id), distributed.ENV_TIMEOUT: "2",
    }
    result = run([sys.executable, str(COLLECTIVE)], env=env, timeout=60)
    assert result.returncode == distributed.EXIT_TIMEOUT, result.stderr
    assert (
        f"jaxpde.distributed.initialize: process {process_id} could not meet all 2 processes at the coordinator "
        f"{address} within 2 s" in result.stderr
    )


def test_initialize_checks_its_arguments():
    with pytest.raises(ValueError, match=r"`process_id` must be in \[0, 2\), got 2"):
        distributed.initialize("127.0.0.1:1", 2, 2)
    with pytest.raises(ValueError, match="`timeout` must be a positive number of seconds, got 0"):
        distributed.initialize("127.0.0.1:1", 2, 0, timeout=0)


# --- slow: fit, resume, datasets ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("data", ["array", "sampler"])
def test_fit_on_two_processes_matches_one_process_with_four_devices(tmp_path, data):
    one = start([sys.executable, str(FIT), tmp_path / "one", data, 20], env=ENV_4_DEVICES)
    two = start(launch_command(FIT, tmp_path / "two", data, 20))
    assert "of 1 done: step 20, resumed from None, 4 devices" in finish(one)
    output = finish(two)
    assert "[0] process 0 of 2 done: step 20" in output and "[1] process 1 of 2 done: step 20" in output
    reference, ours = final(tmp_path / "one"), final(tmp_path / "two")
    initial = [np.asarray(leaf) for leaf in _initial_arrays()]
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(reference, initial) if a.shape == b.shape)
    assert moved > 1e-2  # 20 steps moved the parameters: agreeing to 1e-5 is not trivial
    for a, b in zip(reference, ours):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5)
    # Process 0 alone writes the metrics: one line per step.
    from jaxpde.training import read_metrics

    assert [r["step"] for r in read_metrics(tmp_path / "two" / "metrics.jsonl")] == list(range(1, 21))


def _initial_arrays():
    import equinox as eqx
    import jax

    return jax.tree.leaves(eqx.filter(eqx.nn.MLP(2, 1, 16, 2, key=jax.random.key(1)), eqx.is_array))


@pytest.mark.slow
def test_kill_9_of_one_process_then_restart_of_both_resumes_bit_identical(tmp_path):
    # 40 steps, a collective checkpoint every 5, EMA, extra state and a validation callback on.
    # Process 1 is killed after the checkpoint past step 5, process 0 after the one past step 20.
    steps = 40
    reference = start(launch_command(FIT, tmp_path / "reference", "array", steps))
    victim_dir = tmp_path / "victim"
    victim = start(launch_command(FIT, victim_dir, "array", steps, 0.15))
    for killed, after in ((1, 5), (0, 20)):
        wait_for_checkpoint(victim_dir, victim, newer_than=after, timeout=300)
        os.kill(int((victim_dir / f"pid-{killed}").read_text()), signal.SIGKILL)
        output = victim.communicate(timeout=120)[0]
        assert victim.returncode == 128 + signal.SIGKILL, output
        assert f"process {killed} of 2 exited with status 137 (killed by SIGKILL)" in output
        assert not (victim_dir / "final.npz").exists(), "the run finished before the kill"
        victim = start(launch_command(FIT, victim_dir, "array", steps, 0.15))
    output = finish(victim, timeout=400)
    resumed = [int(line.rsplit("resumed from ", 1)[1].split(",")[0]) for line in output.splitlines() if "resumed from" in line]
    assert len(resumed) == 2 and resumed[0] == resumed[1] >= 20  # both processes, from one collective checkpoint
    finish(reference)
    assert_bit_identical(final(tmp_path / "reference"), final(victim_dir))
    from jaxpde.training import read_metrics

    kept = read_metrics(victim_dir / "metrics.jsonl")
    assert [r["step"] for r in kept] == list(range(1, steps + 1))
    expected = read_metrics(tmp_path / "reference" / "metrics.jsonl")
    assert [r["loss"] for r in kept] == [r["loss"] for r in expected]


@pytest.mark.slow
def test_a_second_job_on_a_locked_folder_fails_on_every_process(tmp_path):
    from jaxpde.training import run_lock

    with run_lock(tmp_path / "run"):
        started = time.monotonic()
        result = run(launch_command(FIT, tmp_path / "run", "array", 5), timeout=300)
    assert result.returncode == 1
    assert f"is in use by process {os.getpid()}" in result.stdout
    assert "RunLockedError" in result.stdout and "done" not in result.stdout
    assert time.monotonic() - started < 120


@pytest.mark.slow
def test_dataset_generated_by_two_processes_equals_the_one_process_dataset(tmp_path):
    one = start([sys.executable, str(DATA), tmp_path / "cache-one", tmp_path / "one.npz"], env=ENV_4_DEVICES)
    two = start(launch_command(DATA, tmp_path / "cache-two", tmp_path / "two.npz"))
    finish(one)
    finish(two)
    with np.load(tmp_path / "one.npz") as a, np.load(tmp_path / "two.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name
        assert b["generated"].tolist() == [True, False] and bool(b["reread_equal"])
        np.testing.assert_array_equal(b["direct.u1"], b["train.u1"])
        assert np.std(b["train.u1"]) > 0.01  # real solutions, not zeros
    # The cache entries are the same bytes: same content hash in their records.
    import json

    records = [json.loads(path.read_text()) for path in sorted(tmp_path.glob("cache-*/*.json"))]
    assert len(records) == 2 and records[0]["content_sha256"] == records[1]["content_sha256"]
    # Each process computed its share: chunk c (two samples) by process c mod 2.
    for process, chunks in ((0, [0, 2]), (1, [1, 3])):
        files = sorted(path.name for path in (tmp_path / "cache-two" / f"chunks-{process}").iterdir())
        assert files == [f"chunk2-{c:06d}.npz" for c in chunks]
