"""Fault suite of the dataset layer: kill -9 during generation, damaged cache files, bad inputs.

Every case compares against an uninterrupted, fault-free generation (bit-identical arrays) or
checks the exact error the library promises.
"""

import dataclasses
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde import Grid
from jaxpde.data import BurgersConfig, load_dataset
from jaxpde.data._cache import cache_entry
from jaxpde.data._files import HASH_KEY, content_hash
from jaxpde.numerics import etdrk
from jaxpde.pdes import Burgers

ROOT = Path(__file__).parents[2]


@dataclasses.dataclass(frozen=True)
class CheckpointedBurgers(BurgersConfig):
    """A small Burgers dataset in narrow batches, so one generation writes many chunk checkpoints."""

    name: ClassVar[str] = "burgers_reliability"
    batch_size: ClassVar[int] = 2


CONFIG = CheckpointedBurgers(n_train=12, n_test=4, resolution=32, time=0.05, dt=1e-3)
NUM_CHUNKS = (12 + 4) // 2

# The child generates CONFIG into a cache folder, printing a line after every chunk it saves;
# the short sleeps around each save widen the window in which a kill lands between the
# computation, the write and the rename of a chunk.
CHILD = textwrap.dedent(
    """
    import sys, time
    import jaxpde.data._generate as generate
    from jaxpde.data import load_dataset
    from tests.reliability.test_data import CONFIG

    save = generate.atomic_save_npz

    def announced_save(path, arrays):
        time.sleep(0.02)
        out = save(path, arrays)
        print("SAVED", path.parent.name, path.name, flush=True)
        time.sleep(0.02)
        return out

    generate.atomic_save_npz = announced_save
    print("READY", flush=True)
    load_dataset(CONFIG, cache_dir=sys.argv[1], chunk_size=2, progress=False)
    print("DONE", flush=True)
    """
)


@pytest.fixture(scope="module")
def fault_free():
    return load_dataset(CONFIG, cache=False, progress=False)


def _assert_same(data, reference):
    for split in ("train", "test"):
        assert set(data[split]) == set(reference[split])
        for key in reference[split]:
            np.testing.assert_array_equal(data[split][key], reference[split][key], err_msg=f"{split}.{key}")


def _kill_after(cache_dir: Path, saves: int, delay: float) -> list[str]:
    """Run the child, SIGKILL it `delay` s after its `saves`-th chunk save; return its output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(cache_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        for line in child.stdout:
            lines.append(line.strip())
            if sum(entry.startswith("SAVED") for entry in lines) >= saves and lines[-1].startswith(("SAVED", "READY")):
                break
        else:
            raise AssertionError("child ended before the kill point:\n" + "\n".join(lines))
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, lines
    return lines


class _no_warning:
    """Fail if the block warns (a resumed generation has nothing to complain about)."""

    def __enter__(self):
        self._catch = warnings.catch_warnings(record=True)
        self._records = self._catch.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)
        messages = [str(r.message) for r in self._records if "jaxpde" in str(r.message)]
        assert not messages, messages


# Kill points drawn once from a fixed seed (reproducible): after k of the chunk saves, plus a
# random fraction of the time one chunk takes; k = 0 kills during compilation or the first chunk.
_RNG = random.Random(13)
KILL_POINTS = [(0, _RNG.uniform(0.0, 0.5))] + [(_RNG.randint(1, NUM_CHUNKS - 1), _RNG.uniform(0.0, 0.05)) for _ in range(2)]


@pytest.mark.parametrize(
    "saves, delay",
    [pytest.param(*point, marks=pytest.mark.slow) if i == 2 else point for i, point in enumerate(KILL_POINTS)],
)
def test_kill_9_during_generation_then_resume_is_bit_identical(tmp_path, fault_free, saves, delay):
    _kill_after(tmp_path, saves, delay)
    entry = cache_entry(CONFIG, tmp_path)
    assert not entry.arrays.exists()  # the killed run never finished, so no entry claims it did
    finished = sorted(entry.partial.rglob("chunk*.npz")) if entry.partial.exists() else []
    assert len(finished) >= saves
    with _no_warning():
        resumed = load_dataset(CONFIG, cache_dir=tmp_path, chunk_size=2, progress=False)
    assert resumed.generated and entry.arrays.exists() and not entry.partial.exists()
    _assert_same(resumed, fault_free)
    again = load_dataset(CONFIG, cache_dir=tmp_path, progress=False)
    assert not again.generated
    _assert_same(again, fault_free)


# ---- damaged cache files -------------------------------------------------------------------


def _torn(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _resave(path: Path, edit):
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    edit(arrays)
    with open(path, "wb") as file:
        np.savez(file, **arrays)  # a fresh archive: every CRC is valid


def _member(arrays, name):
    """The member holding `name`: ``"train.u1"`` in a cache archive, ``"u1"`` in a chunk."""
    return next(key for key in sorted(arrays) if key == name or key.endswith("." + name))


def _edited(path: Path):
    def edit(arrays):
        key = _member(arrays, "u1")
        arrays[key] = arrays[key] * np.float32(1.0001)

    _resave(path, edit)


def _nan_filled(path: Path):
    def edit(arrays):
        key = _member(arrays, "u0")
        arrays[key] = np.full_like(arrays[key], np.nan)
        del arrays[HASH_KEY]
        arrays[HASH_KEY] = np.asarray(content_hash(arrays))  # even with a recomputed hash

    _resave(path, edit)


@pytest.mark.parametrize(
    "damage, reason",
    [(_torn, "unreadable"), (_edited, "do not match their SHA-256"), (_nan_filled, "non-finite values")],
)
def test_damaged_cache_file_is_rejected_and_regenerated(tmp_path, fault_free, damage, reason):
    first = load_dataset(CONFIG, cache_dir=tmp_path, progress=False)
    _assert_same(first, fault_free)
    damage(first.path)
    with pytest.warns(UserWarning, match=reason):
        again = load_dataset(CONFIG, cache_dir=tmp_path, progress=False)
    assert again.generated
    _assert_same(again, fault_free)
    assert not load_dataset(CONFIG, cache_dir=tmp_path, progress=False).generated


def test_damaged_chunk_checkpoints_are_recomputed(tmp_path, fault_free):
    # A killed run's checkpoints, then each of them torn, edited or NaN-filled.
    _kill_after(tmp_path, NUM_CHUNKS - 2, 0.0)
    chunks = sorted(cache_entry(CONFIG, tmp_path).partial.rglob("chunk*.npz"))
    assert len(chunks) >= 3
    for damage, path in zip((_torn, _edited, _nan_filled), chunks):
        damage(path)
    resumed = load_dataset(CONFIG, cache_dir=tmp_path, chunk_size=2, progress=False)
    _assert_same(resumed, fault_free)


def test_stale_format_entry_is_not_trusted(tmp_path, fault_free):
    # An entry copied under another fingerprint's name (or an older format): the embedded
    # identity differs, so it is regenerated.
    first = load_dataset(CONFIG, cache_dir=tmp_path, progress=False)
    other = dataclasses.replace(CONFIG, seed=1)
    shutil.copy(first.path, cache_entry(other, tmp_path).arrays)
    with pytest.warns(UserWarning, match="different config"):
        data = load_dataset(other, cache_dir=tmp_path, progress=False)
    assert data.generated and not np.array_equal(data.train["u0"], fault_free.train["u0"])


# ---- messages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: Grid(64.0), TypeError, r"Grid: `shape` must be an int or a tuple of 1 to 3 ints"),
        (lambda: Grid(8, origin=float("nan")), ValueError, r"Grid: every entry of `origin` must be finite"),
        (
            lambda: etdrk.solve(Burgers(Grid(16), 0.1), jnp.full(16, jnp.nan), 0.1, 0.01),
            ValueError,
            r"solve: `u0` must be finite everywhere.*16 of 16 values",
        ),
    ],
    ids=["grid-float-shape", "grid-nan-origin", "solve-nan-u0"],
)
def test_bad_inputs_get_messages_that_name_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()
