"""Chunked generation: keys, determinism, chunk-size independence, resume after interruption."""

import dataclasses

import jax
import numpy as np
import pytest

from jaxpde.data import (
    BurgersConfig,
    generate_samples,
    load_dataset,
    sample_key,
    split_key,
)

from ._toy import ToyConfig


def _normal_sample(key):
    return {"v": jax.random.normal(key, (3,)), "s": jax.random.uniform(key, ())}


def test_sample_i_uses_fold_in_key():
    key = jax.random.key(7)
    out = generate_samples(_normal_sample, key, 5, chunk_size=2, progress=False)
    assert out["v"].shape == (5, 3) and out["s"].shape == (5,)
    for i in range(5):
        expected = _normal_sample(jax.random.fold_in(key, i))
        np.testing.assert_array_equal(out["v"][i], np.asarray(expected["v"]))
        np.testing.assert_array_equal(out["s"][i], np.asarray(expected["s"]))
    np.testing.assert_array_equal(
        jax.random.key_data(sample_key(key, 3)), jax.random.key_data(jax.random.fold_in(key, 3))
    )


@pytest.mark.parametrize("chunk_size", [1, 3, 5, 8])
def test_chunk_size_does_not_change_values(chunk_size):
    key = jax.random.key(0)
    reference = generate_samples(_normal_sample, key, 5, chunk_size=2, progress=False)
    out = generate_samples(_normal_sample, key, 5, chunk_size=chunk_size, progress=False)
    for name in reference:
        np.testing.assert_array_equal(out[name], reference[name])


def test_zero_samples_gives_empty_arrays_of_the_right_shape():
    out = generate_samples(_normal_sample, jax.random.key(0), 0, progress=False)
    assert out["v"].shape == (0, 3) and out["s"].shape == (0,)


def test_bad_arguments():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="num_samples"):
        generate_samples(_normal_sample, key, -1)
    with pytest.raises(ValueError, match="chunk_size"):
        generate_samples(_normal_sample, key, 4, chunk_size=0)
    with pytest.raises(TypeError, match="dict of arrays"):
        generate_samples(lambda k: jax.random.normal(k, (2,)), key, 2)


def test_interrupted_generation_resumes_from_finished_chunks(tmp_path):
    calls = []
    fail_on_call = {"n": 3}

    def host(x):
        calls.append(len(x))
        if len(calls) == fail_on_call["n"]:
            raise RuntimeError("simulated interruption")
        return x

    def sample(key):
        x = jax.random.normal(key, (4,))
        return {"x": jax.pure_callback(host, jax.ShapeDtypeStruct((4,), x.dtype), x, vmap_method="broadcast_all")}

    key = jax.random.key(3)
    with pytest.raises(Exception, match="simulated interruption"):
        generate_samples(sample, key, 10, chunk_size=3, progress=False, checkpoint_dir=tmp_path)
    # Two chunks finished and were saved; the third was interrupted and left nothing readable.
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["chunk3-000000.npz", "chunk3-000001.npz"]
    assert not list(tmp_path.glob(".*.tmp"))
    calls.clear()
    fail_on_call["n"] = -1
    resumed = generate_samples(sample, key, 10, chunk_size=3, progress=False, checkpoint_dir=tmp_path)
    assert len(calls) == 2  # only chunks 2 and 3 (of 0..3) are computed
    calls.clear()
    fresh = generate_samples(sample, key, 10, chunk_size=3, progress=False)
    np.testing.assert_array_equal(resumed["x"], fresh["x"])
    # A damaged checkpoint is recomputed, not trusted.
    (tmp_path / "chunk3-000000.npz").write_bytes(b"not a zip file")
    calls.clear()
    again = generate_samples(sample, key, 10, chunk_size=3, progress=False, checkpoint_dir=tmp_path)
    assert len(calls) == 1
    np.testing.assert_array_equal(again["x"], fresh["x"])


def test_split_keys_are_independent_streams():
    train, test = split_key(0, "train"), split_key(0, "test")
    assert not np.array_equal(jax.random.key_data(train), jax.random.key_data(test))
    with pytest.raises(ValueError, match="split"):
        split_key(0, "validation")


def test_growing_n_train_keeps_existing_samples_and_the_test_set():
    small = load_dataset(ToyConfig(n_train=3, n_test=2), cache=False, progress=False)
    large = load_dataset(ToyConfig(n_train=6, n_test=2), cache=False, progress=False)
    np.testing.assert_array_equal(large.train["field"][:3], small.train["field"])
    np.testing.assert_array_equal(large.test["field"], small.test["field"])
    assert small.train["field"].shape == (3, 8) and small.test["cumsum"].shape == (2, 8)


# ---- a real dataset: determinism and chunk-size independence ----------------------------------

BURGERS = BurgersConfig(n_train=5, n_test=2, resolution=64, time=0.1, dt=1e-3)


@pytest.fixture(scope="module")
def burgers_chunk2():
    return load_dataset(BURGERS, cache=False, chunk_size=2, progress=False)


@pytest.mark.parametrize("chunk_size", [1, 3])
def test_same_seed_same_arrays_any_chunk_size(burgers_chunk2, chunk_size):
    # Bit for bit, including chunks of one (FFTs in a batch of one would round differently).
    other = load_dataset(BURGERS, cache=False, chunk_size=chunk_size, progress=False)
    for split in ("train", "test"):
        for name in ("u0", "u1"):
            np.testing.assert_array_equal(other[split][name], burgers_chunk2[split][name])
    assert burgers_chunk2.train["u1"].dtype == np.float32


def test_different_seed_different_arrays(burgers_chunk2):
    other = load_dataset(dataclasses.replace(BURGERS, seed=1), cache=False, chunk_size=2, progress=False)
    assert not np.allclose(other.train["u0"], burgers_chunk2.train["u0"])
    # Distinct samples within a split, too.
    assert not np.allclose(burgers_chunk2.train["u0"][0], burgers_chunk2.train["u0"][1])


def test_global_x64_does_not_change_the_stored_numbers(burgers_chunk2):
    with jax.enable_x64(True):
        other = load_dataset(BURGERS, cache=False, chunk_size=2, progress=False)
    assert other.train["u0"].dtype == np.float32
    np.testing.assert_array_equal(other.train["u1"], burgers_chunk2.train["u1"])



# ---- every dataset: chunk-size and split-size independence, bit for bit -----------------------

from jaxpde.data import (  # noqa: E402
    BurgersTrajectoryConfig,
    DarcyConfig,
    KuramotoSivashinskyConfig,
    NavierStokesConfig,
)

# Small versions of every dataset. n_train = 6 matters: the old generator compiled a batch of
# min(chunk, n) samples, and XLA rounds the vmapped Darcy CG differently for widths <= 4 and >= 5
# (measured: 2-3e-7 relative between chunk sizes 1-3 and the default).
EVERY_DATASET = {
    "burgers": BurgersConfig(n_train=6, n_test=1, resolution=32, time=0.05, dt=1e-3),
    "burgers_trajectories": BurgersTrajectoryConfig(
        n_train=6, n_test=1, resolution=32, subsample=2, time=0.04, save_interval=0.02, dt=1e-3
    ),
    "navier_stokes": NavierStokesConfig(n_train=6, n_test=1, resolution=16, time=0.1, save_interval=0.05, dt=1e-2),
    "kuramoto_sivashinsky": KuramotoSivashinskyConfig(
        n_train=6, n_test=1, resolution=32, length=20.0, time=1.0, save_interval=0.5, burn_in=0.5
    ),
    "darcy_cg": DarcyConfig(n_train=6, n_test=1, resolution=33, subsample=2),
    "darcy_direct": DarcyConfig(n_train=6, n_test=1, resolution=17, subsample=1, solver="direct"),
    "toy": ToyConfig(n_train=6, n_test=1),
}


@pytest.mark.parametrize("name", sorted(EVERY_DATASET))
def test_every_dataset_is_bit_identical_for_any_chunk_and_split_size(name):
    config = EVERY_DATASET[name]
    reference = load_dataset(config, cache=False, progress=False)
    for chunk_size in (1, 3):
        other = load_dataset(config, cache=False, chunk_size=chunk_size, progress=False)
        for split in ("train", "test"):
            for key in reference[split]:
                np.testing.assert_array_equal(other[split][key], reference[split][key], err_msg=f"{split}.{key}")
    # A smaller and a larger training split share their first samples, and the test split.
    for n_train in (3, 7):
        other = load_dataset(dataclasses.replace(config, n_train=n_train), cache=False, chunk_size=1, progress=False)
        m = min(n_train, config.n_train)
        for key in reference["train"]:
            np.testing.assert_array_equal(other.train[key][:m], reference.train[key][:m])
            np.testing.assert_array_equal(other.test[key], reference.test[key])
    assert all(np.isfinite(v).all() for v in reference.train.values())


def test_a_non_finite_sample_is_refused_with_its_index():
    def sample(key):
        x = jax.random.normal(key, (4,))
        return {"x": jax.numpy.where(x[0] > 1.0, jax.numpy.nan, x)}

    key = jax.random.key(0)
    values = [float(jax.random.normal(sample_key(key, i), (4,))[0]) for i in range(8)]
    bad = [i for i, v in enumerate(values) if v > 1.0]
    assert bad, "the fixed key should give at least one sample with x[0] > 1"
    with pytest.raises(ValueError, match=rf"non-finite values \(NaN/Inf\) in `x` of samples \[{bad[0]}"):
        generate_samples(sample, key, 8, chunk_size=8, progress=False)


def test_chunk_size_rounds_up_to_the_batch_width(tmp_path):
    out = generate_samples(_normal_sample, jax.random.key(1), 7, chunk_size=3, batch_size=4, progress=False, checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["chunk4-000000.npz", "chunk4-000001.npz"]
    ref = generate_samples(_normal_sample, jax.random.key(1), 7, batch_size=4, chunk_size=8, progress=False)
    np.testing.assert_array_equal(out["v"], ref["v"])
    with pytest.raises(ValueError, match="batch_size"):
        generate_samples(_normal_sample, jax.random.key(1), 7, batch_size=0)
