r"""`Dataset` (train/test arrays with their coordinates and config) and `load_dataset`.

``load_dataset(config)`` returns the dataset that `config` defines: from the disk cache when a
valid entry exists, otherwise generated (vmapped chunks with a progress bar, resumable after an
interruption) and then cached. The same config gives the same arrays on every machine run —
bit-for-bit on the same backend and library versions — whatever the chunk size, and whatever
the split sizes for the samples they share. A cached entry is verified before it is trusted (its
content hash, its config, finite samples; see `jaxpde.data._cache`); a bad one is regenerated.

Sample ``i`` of the training split is generated from ``fold_in(fold_in(key(seed), 0), i)`` and
of the test split from ``fold_in(fold_in(key(seed), 1), i)``: the splits are independent
streams, so growing `n_train` keeps the test set (and the existing training samples) unchanged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from ._cache import cache_entry, read_entry, remove_partial, write_entry
from ._config import DatasetConfig
from ._generate import generate_samples
from ._resolution import coarse_size, subsample

__all__ = ["Dataset", "load_dataset", "split_key"]

SPLITS = ("train", "test")
_SPATIAL_COORDINATES = ("x", "y", "z")


@dataclasses.dataclass(frozen=True)
class _Sampler:
    """``config.sample`` as a callable that hashes and compares by the config's value.

    (Bound methods compare by the identity of their instance, so equal configs would not share
    the compiled chunk function.) `sample` depends on the physical fields only, so the split
    sizes and seed are normalised away before wrapping: configs that differ only in those share
    one compilation.
    """

    config: DatasetConfig

    def __call__(self, key):
        return self.config.sample(key)


def split_key(seed: int, split: str):
    """The base key of a split: ``fold_in(key(seed), 0)`` for train, ``1`` for test."""
    if split not in SPLITS:
        raise ValueError(f"split_key: `split` must be one of {SPLITS}, got {split!r}.")
    return jax.random.fold_in(jax.random.key(seed), SPLITS.index(split))


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A generated dataset: NumPy arrays per split, their coordinates, and the config that made them.

    **Fields:**

    - `config`: the generating `DatasetConfig`.
    - `train`, `test`: dicts of arrays, each ``(n_split, ..., *spatial)``.
    - `coordinates`: ``"x"`` (``"y"``) — the 1D point coordinates of each spatial axis — and
      ``"t"`` for time series.
    - `path`: the cache file, or ``None`` if not cached.
    - `generated`: ``True`` if this call generated the arrays, ``False`` if they came from disk.
    - `subsample_factor`: the extra coarsening applied by `subsample` after loading (1 if none).
    """

    config: DatasetConfig
    train: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    coordinates: dict[str, np.ndarray]
    path: Path | None = None
    generated: bool = False
    subsample_factor: int = 1

    def __getitem__(self, split: str) -> dict[str, np.ndarray]:
        if split not in SPLITS:
            raise KeyError(f"Dataset: no split {split!r}; the splits are {SPLITS}.")
        return getattr(self, split)

    @property
    def resolution(self) -> tuple[int, ...]:
        """Points per spatial axis of the stored arrays."""
        return tuple(len(self.coordinates[name]) for name in _SPATIAL_COORDINATES[: self.config.spatial_ndim])

    def grid_points(self) -> np.ndarray:
        """All spatial points, shape ``(*resolution, spatial_ndim)`` (the FNO "grid" input layout)."""
        axes = [self.coordinates[name] for name in _SPATIAL_COORDINATES[: self.config.spatial_ndim]]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)

    def subsample(self, factor: int) -> Dataset:
        """Every `factor`-th point along each spatial axis (FNO-style ``[::r]``), checked.

        Periodic data need ``factor | n``; closed node grids (Darcy) need ``factor | n - 1``
        (see `jaxpde.data.subsample`).
        """
        ndim = self.config.spatial_ndim
        closed = self.config.closed_grid
        axes = tuple(range(-ndim, 0))
        for n in self.resolution:
            coarse_size(n, factor, closed)

        def coarsen(split):
            return {name: subsample(value, factor, axes=axes, closed=closed) for name, value in split.items()}

        coordinates = {
            name: subsample(value, factor, closed=closed) if name in _SPATIAL_COORDINATES else value
            for name, value in self.coordinates.items()
        }
        return dataclasses.replace(
            self,
            train=coarsen(self.train),
            test=coarsen(self.test),
            coordinates=coordinates,
            subsample_factor=self.subsample_factor * factor,
        )


def load_dataset(
    config: DatasetConfig,
    *,
    cache_dir: str | Path | None = None,
    cache: bool = True,
    chunk_size: int | None = None,
    progress: bool = True,
    regenerate: bool = False,
) -> Dataset:
    """The dataset defined by `config`: from the cache if a valid entry exists, else generated.

    **Arguments:**

    - `config`: a `DatasetConfig` (e.g. `DarcyConfig(n_train=1000, n_test=200)`).
    - `cache_dir`: the cache folder (default ``$JAXPDE_CACHE`` or ``~/.cache/jaxpde``).
    - `cache`: ``False`` to generate in memory without touching the disk.
    - `chunk_size`: samples per chunk — the unit of progress and of the resumable checkpoints —
      rounded up to a multiple of ``config.batch_size`` (default: ``config.batch_size``). It never
      changes the values: every sample is computed in its fixed batch of ``config.batch_size``
      (see `jaxpde.data.generate_samples`), and that width sets the memory and the throughput.
    - `progress`: show the tqdm bar while generating.
    - `regenerate`: ignore (and overwrite) an existing cache entry.
    """
    if not isinstance(config, DatasetConfig):
        raise TypeError(f"load_dataset: `config` must be a DatasetConfig, got {type(config).__name__}.")
    chunk_size = config.batch_size if chunk_size is None else chunk_size
    if not isinstance(chunk_size, (int, np.integer)) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"load_dataset: `chunk_size` must be an integer >= 1, got {chunk_size!r}.")
    # One compiled shape for both splits; no chunk larger than the larger split.
    chunk_size = int(min(chunk_size, max(config.num_samples.values())))
    entry = cache_entry(config, cache_dir) if cache else None
    if entry is not None and regenerate:
        remove_partial(entry)  # start from scratch: do not reuse chunks of an earlier run either
    if entry is not None and not regenerate:
        splits = read_entry(entry, config)
        if splits is not None:
            return Dataset(config, splits["train"], splits["test"], splits["coordinates"], entry.arrays, False)

    splits = {}
    # The stored format is float32 whatever the caller's global x64 setting, so that one config
    # always means the same numbers (the Darcy "direct" solver's float64 runs on the host).
    sampler = _Sampler(dataclasses.replace(config, n_train=1, n_test=0, seed=0))
    with jax.enable_x64(False):
        for split in SPLITS:
            checkpoint = None if entry is None else entry.partial / split
            splits[split] = generate_samples(
                sampler,
                split_key(config.seed, split),
                config.num_samples[split],
                chunk_size=chunk_size,
                batch_size=config.batch_size,
                progress=progress,
                desc=f"{config.name} {split}",
                checkpoint_dir=checkpoint,
            )
    coordinates = {name: np.asarray(value) for name, value in config.coordinates().items()}
    if entry is not None:
        write_entry(entry, config, {**splits, "coordinates": coordinates})
        remove_partial(entry)
    return Dataset(config, splits["train"], splits["test"], coordinates, None if entry is None else entry.arrays, True)
