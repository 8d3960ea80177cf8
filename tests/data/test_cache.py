"""The disk cache: hits without regenerating, misses on any config change, never trusts a bad file."""

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest

import jaxpde.data._dataset as dataset_module
from jaxpde.data import (
    FORMAT_VERSION,
    BurgersConfig,
    DarcyConfig,
    default_cache_dir,
    load_dataset,
)
from jaxpde.data._cache import cache_entry

from ._toy import ToyConfig


@pytest.fixture
def count_generations(monkeypatch):
    """Counts calls of the generator behind `load_dataset`."""
    calls = []
    original = dataset_module.generate_samples

    def counting(*args, **kwargs):
        calls.append(args[2])
        return original(*args, **kwargs)

    monkeypatch.setattr(dataset_module, "generate_samples", counting)
    return calls


def test_second_call_loads_from_disk(tmp_path, count_generations):
    config = ToyConfig(n_train=5, n_test=3)
    first = load_dataset(config, cache_dir=tmp_path, progress=False)
    assert first.generated and len(count_generations) == 2  # train and test
    second = load_dataset(config, cache_dir=tmp_path, progress=False)
    assert not second.generated and len(count_generations) == 2
    assert second.path == first.path and second.path.exists()
    for split in ("train", "test"):
        for name in ("field", "cumsum"):
            np.testing.assert_array_equal(second[split][name], first[split][name])
    np.testing.assert_array_equal(second.coordinates["x"], first.coordinates["x"])
    assert not (tmp_path / (first.path.stem + ".partial")).exists()  # chunk checkpoints cleaned up


def test_chunk_size_is_not_part_of_the_key(tmp_path, count_generations):
    config = ToyConfig(n_train=5, n_test=1)
    load_dataset(config, cache_dir=tmp_path, chunk_size=2, progress=False)
    again = load_dataset(config, cache_dir=tmp_path, chunk_size=5, progress=False)
    assert not again.generated and len(count_generations) == 2


@pytest.mark.parametrize(
    "change", [{"n_train": 6}, {"n_test": 2}, {"seed": 1}, {"resolution": 16}, {"scale": 2.0}]
)
def test_any_config_change_is_a_new_entry(tmp_path, count_generations, change):
    base = ToyConfig(n_train=5, n_test=1)
    changed = dataclasses.replace(base, **change)
    assert changed.fingerprint() != base.fingerprint()
    load_dataset(base, cache_dir=tmp_path, progress=False)
    other = load_dataset(changed, cache_dir=tmp_path, progress=False)
    assert other.generated and len(count_generations) == 4
    assert len(list(tmp_path.glob("toy-*.npz"))) == 2
    # The first entry is still valid.
    assert not load_dataset(base, cache_dir=tmp_path, progress=False).generated


def test_every_physical_field_of_a_real_config_changes_the_fingerprint():
    base = DarcyConfig()
    fingerprints = {base.fingerprint()}
    for field in dataclasses.fields(base):
        value = getattr(base, field.name)
        if isinstance(value, str):
            new = {"coefficient_basis": "sine", "solver": "direct"}[field.name]
        elif field.name == "subsample":
            new = 4  # 420 is divisible by 4
        elif field.name == "resolution":
            new = 401
        else:
            new = value + 1
        fingerprints.add(dataclasses.replace(base, **{field.name: new}).fingerprint())
    assert len(fingerprints) == len(dataclasses.fields(base)) + 1


def test_equal_values_hash_equal_whatever_their_python_type():
    assert ToyConfig(scale=1).fingerprint() == ToyConfig(scale=1.0).fingerprint()
    assert ToyConfig(resolution=8.0).fingerprint() == ToyConfig(resolution=8).fingerprint()
    assert ToyConfig(scale=1).scale == 1.0 and isinstance(ToyConfig(resolution=8.0).resolution, int)
    assert BurgersConfig(n_train=3).fingerprint() != BurgersConfig(n_train=3, dt=1e-3).fingerprint()


def test_stored_config_matches(tmp_path):
    config = ToyConfig(n_train=2, n_test=1, scale=0.5)
    data = load_dataset(config, cache_dir=tmp_path, progress=False)
    record = json.loads(data.path.with_suffix(".json").read_text())
    assert record["config"] == dataclasses.asdict(config)
    assert record["dataset"] == "toy" and record["format_version"] == FORMAT_VERSION
    assert record["fingerprint"] == config.fingerprint()
    assert data.path.name.startswith(f"toy-{config.fingerprint()[:20]}")
    with np.load(data.path) as archive:
        embedded = json.loads(str(archive["config"]))
    assert embedded == config.identity()


def _damage_truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damage_flip_bytes(path: Path):
    data = bytearray(path.read_bytes())
    # Inside the first array's payload: past the zip and .npy headers, before the directory.
    for i in range(200, 240):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _damage_other_config(path: Path):
    # A valid archive made for a different config, under this config's name (e.g. a hash-prefix
    # collision or a hand-copied file).
    other = load_dataset(ToyConfig(n_train=5, n_test=1, scale=3.0), cache=False, progress=False)
    arrays = {f"train.{k}": v for k, v in other.train.items()}
    arrays.update({f"test.{k}": v for k, v in other.test.items()})
    arrays["coordinates.x"] = other.coordinates["x"]
    arrays["config"] = np.asarray(json.dumps(other.config.identity(), sort_keys=True))
    np.savez(path, **arrays)


@pytest.mark.parametrize("damage", [_damage_truncate, _damage_flip_bytes, _damage_other_config])
def test_bad_cache_file_is_regenerated(tmp_path, count_generations, damage):
    config = ToyConfig(n_train=5, n_test=1)
    first = load_dataset(config, cache_dir=tmp_path, progress=False)
    damage(first.path)
    before = len(count_generations)
    with pytest.warns(UserWarning, match="regenerating"):
        again = load_dataset(config, cache_dir=tmp_path, progress=False)
    assert again.generated and len(count_generations) == before + 2
    np.testing.assert_array_equal(again.train["field"], first.train["field"])
    # ...and the rewritten entry is valid again.
    assert not load_dataset(config, cache_dir=tmp_path, progress=False).generated


def test_interrupted_write_leaves_no_readable_entry(tmp_path, monkeypatch):
    config = ToyConfig(n_train=3, n_test=1)
    import jaxpde.data._files as files

    def failing_savez(file, **arrays):
        file.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(files.np, "savez", failing_savez)
    with pytest.raises(KeyboardInterrupt):
        load_dataset(config, cache_dir=tmp_path, progress=False)
    monkeypatch.undo()
    entry = cache_entry(config, tmp_path)
    assert not entry.arrays.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert load_dataset(config, cache_dir=tmp_path, progress=False).generated


def test_regenerate_flag_overwrites(tmp_path, count_generations):
    config = ToyConfig(n_train=2, n_test=1)
    load_dataset(config, cache_dir=tmp_path, progress=False)
    again = load_dataset(config, cache_dir=tmp_path, progress=False, regenerate=True)
    assert again.generated and len(count_generations) == 4


def test_no_cache_touches_no_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXPDE_CACHE", str(tmp_path / "cache"))
    data = load_dataset(ToyConfig(n_train=2, n_test=1), cache=False, progress=False)
    assert data.path is None and data.generated
    assert not (tmp_path / "cache").exists()


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXPDE_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    load_dataset(ToyConfig(n_train=2, n_test=1), progress=False)
    assert len(list(tmp_path.glob("toy-*.npz"))) == 1
    monkeypatch.delenv("JAXPDE_CACHE")
    assert default_cache_dir() == Path(os.path.expanduser("~/.cache/jaxpde"))


def test_invalid_split_sizes_and_chunk_size():
    with pytest.raises(ValueError, match="n_train"):
        ToyConfig(n_train=0)
    with pytest.raises(ValueError, match="n_test"):
        ToyConfig(n_test=-1)
    with pytest.raises(ValueError, match="integer"):
        ToyConfig(n_train=2.5)
    with pytest.raises(TypeError, match="number"):
        ToyConfig(scale="big")
    with pytest.raises(ValueError, match="chunk_size"):
        load_dataset(ToyConfig(n_train=2, n_test=1), cache=False, chunk_size=0)
    with pytest.raises(TypeError, match="DatasetConfig"):
        load_dataset({"n_train": 2})


def test_interrupted_dataset_generation_resumes_without_redoing_chunks(tmp_path, monkeypatch):
    config = ToyConfig(n_train=6, n_test=2)
    original = dataset_module.generate_samples

    def interrupted_at_test_split(*args, **kwargs):
        if kwargs["desc"].endswith("test"):
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(dataset_module, "generate_samples", interrupted_at_test_split)
    with pytest.raises(KeyboardInterrupt):
        load_dataset(config, cache_dir=tmp_path, chunk_size=4, progress=False)
    monkeypatch.undo()
    entry = cache_entry(config, tmp_path)
    assert not entry.arrays.exists()
    chunks = sorted((entry.partial / "train").glob("*.npz"))
    assert [p.name for p in chunks] == ["chunk4-000000.npz", "chunk4-000001.npz"]
    import jaxpde.data._generate as generate_module

    saved = []
    save = generate_module.atomic_save_npz
    monkeypatch.setattr(generate_module, "atomic_save_npz", lambda path, arrays: saved.append(path) or save(path, arrays))
    resumed = load_dataset(config, cache_dir=tmp_path, chunk_size=4, progress=False)
    # Only the test split's chunk was computed; the finished train chunks were read back.
    assert [(p.parent.name, p.name) for p in saved] == [("test", "chunk4-000000.npz")]
    assert resumed.generated and entry.arrays.exists() and not entry.partial.exists()
    fresh = load_dataset(config, cache=False, chunk_size=4, progress=False)
    np.testing.assert_array_equal(resumed.train["field"], fresh.train["field"])
    np.testing.assert_array_equal(resumed.test["field"], fresh.test["field"])


# ---- altered contents with valid CRCs, non-finite samples ----------------------------------


def _resave(path: Path, edit):
    """Read every member, apply `edit` to the dict, write a fresh archive (all CRCs valid)."""
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    edit(arrays)
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def _edit_value(arrays):
    arrays["train.field"] = arrays["train.field"].copy()
    arrays["train.field"][1, 2] += 0.5


def _nan_fill(arrays):
    arrays["test.field"] = np.full_like(arrays["test.field"], np.nan)


def _nan_fill_and_rehash(arrays):
    # An editor who also recomputes the content hash: caught by the finiteness check instead.
    from jaxpde.data._files import HASH_KEY, content_hash

    _nan_fill(arrays)
    del arrays[HASH_KEY]
    arrays[HASH_KEY] = np.asarray(content_hash(arrays))


def _drop_hash(arrays):
    from jaxpde.data._files import HASH_KEY

    del arrays[HASH_KEY]


@pytest.mark.parametrize(
    "edit, reason",
    [
        (_edit_value, "do not match their SHA-256"),
        (_nan_fill, "do not match their SHA-256"),
        (_nan_fill_and_rehash, "non-finite values in test `field`"),
        (_drop_hash, "no content hash"),
    ],
)
def test_altered_contents_with_valid_crcs_are_regenerated(tmp_path, count_generations, edit, reason):
    # Used to be accepted: the CRCs of a re-saved archive are valid again.
    config = ToyConfig(n_train=5, n_test=2)
    first = load_dataset(config, cache_dir=tmp_path, progress=False)
    _resave(first.path, edit)
    with pytest.warns(UserWarning, match=reason):
        again = load_dataset(config, cache_dir=tmp_path, progress=False)
    assert again.generated and len(count_generations) == 4
    for split in ("train", "test"):
        np.testing.assert_array_equal(again[split]["field"], first[split]["field"])
    assert not load_dataset(config, cache_dir=tmp_path, progress=False).generated


def test_content_hash_is_recorded_beside_the_config(tmp_path):
    from jaxpde.data._files import HASH_KEY, load_npz

    data = load_dataset(ToyConfig(n_train=2, n_test=1), cache_dir=tmp_path, progress=False)
    record = json.loads(data.path.with_suffix(".json").read_text())
    with np.load(data.path) as archive:
        assert str(archive[HASH_KEY]) == record["content_sha256"]
    assert HASH_KEY not in load_npz(data.path)  # verified and removed on read


def test_edited_chunk_checkpoint_is_recomputed(tmp_path):
    config = ToyConfig(n_train=8, n_test=1)
    original = dataset_module.generate_samples

    def interrupted_at_test_split(*args, **kwargs):
        if kwargs["desc"].endswith("test"):
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    import unittest.mock

    with unittest.mock.patch.object(dataset_module, "generate_samples", interrupted_at_test_split):
        with pytest.raises(KeyboardInterrupt):
            load_dataset(config, cache_dir=tmp_path, chunk_size=4, progress=False)
    chunk = cache_entry(config, tmp_path).partial / "train" / "chunk4-000001.npz"
    _resave(chunk, lambda arrays: arrays.__setitem__("field", np.zeros_like(arrays["field"])))
    resumed = load_dataset(config, cache_dir=tmp_path, chunk_size=4, progress=False)
    fresh = load_dataset(config, cache=False, chunk_size=4, progress=False)
    np.testing.assert_array_equal(resumed.train["field"], fresh.train["field"])
    assert np.abs(resumed.train["field"][4:]).min() > 0
