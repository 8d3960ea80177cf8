r"""A dataset's generating configuration: the one object that defines it, names it and hashes it.

A dataset in `jaxpde.data` is a deterministic function of a frozen dataclass, its *config*:
every parameter that can change a single stored number — the resolution the PDE is solved at,
the subsampling factor, the physical parameters, the final time, the time step and solver, the
random-field hyperparameters, the split sizes and the seed — is a field, and the width of the
compiled batch is a class attribute (`batch_size`) that the fingerprint includes. Nothing else
is: the chunk size (samples per checkpoint) and the progress bar do not change the arrays (each
sample depends on its own key and its batch only, see `jaxpde.data.generate_samples`), so they
are arguments of `jaxpde.data.load_dataset`, not fields.

The config's *fingerprint* is the SHA-256 of its canonical JSON together with the dataset's
name and `FORMAT_VERSION`; the on-disk cache is keyed by it, so changing any field — or a
change of the stored layout, which bumps `FORMAT_VERSION` — means a different cache entry and
a fresh generation, never a silently reused stale one.

A subclass adds its fields (Python scalars and strings only, so the JSON is canonical and
human-readable), a `name`, and the generator itself: ``sample(key)`` returns one sample as a
dict of JAX arrays and must be a pure, traceable function of the key (it is vmapped and
jit-compiled), and ``coordinates()`` returns the points the arrays live on.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import json
import math
from typing import Any, ClassVar

import numpy as np
from jaxtyping import Array, PRNGKeyArray

__all__ = ["DatasetConfig", "FORMAT_VERSION"]

# Bump when the meaning or layout of stored arrays changes; every cached dataset then
# regenerates, because the version is part of each fingerprint.
# 2: archives carry a SHA-256 of their contents; samples computed in fixed-width batches.
FORMAT_VERSION = 2


@dataclasses.dataclass(frozen=True)
class DatasetConfig(abc.ABC):
    """Base class of the dataset configs: split sizes, seed, identity and validation.

    **Fields (shared by every dataset):**

    - `n_train`: number of training samples, ``>= 1``.
    - `n_test`: number of test samples, ``>= 0``.
    - `seed`: the integer seed; sample ``i`` of split ``s`` is generated from
      ``fold_in(fold_in(key(seed), s), i)`` (``s = 0`` train, ``1`` test), so the test set does
      not change when `n_train` does, and the first ``m`` training samples of a larger dataset
      are those of a smaller one.

    **Class attributes a subclass sets:**

    - `name`: short identifier, used in cache file names.
    - `spatial_ndim`: number of trailing spatial axes of every stored array.
    - `closed_grid`: ``True`` if the stored points include both end nodes of every spatial axis
      (a node grid on ``[0, 1]``, as the FNO Darcy data), ``False`` for periodic point sets.
    - `batch_size`: the width of the one vmapped, compiled program that generates every sample
      (sample ``i`` is computed in batch ``i // batch_size`` alongside samples of that batch only),
      so the values do not depend on the chunk size or the split sizes. XLA rounds a vmapped
      program differently for different batch widths (measured on the Darcy CG solve: widths
      ≤ 4 and ≥ 5 differ by ~1e-7 relative), which is why the width is part of the dataset's
      definition — and of its fingerprint — rather than a run-time choice.
    """

    n_train: int = 1000
    n_test: int = 200
    seed: int = 0

    name: ClassVar[str] = "dataset"
    spatial_ndim: ClassVar[int] = 1
    closed_grid: ClassVar[bool] = False
    batch_size: ClassVar[int] = 32

    def __post_init__(self):
        # Normalise every field to its annotated Python type so that equal configs have equal
        # JSON (``1`` and ``1.0`` would otherwise hash differently).
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            object.__setattr__(self, field.name, _coerce(type(self).__name__, field.name, field.type, value))
        self._check(self.n_train >= 1, "n_train", "an integer >= 1", self.n_train)
        self._check(self.n_test >= 0, "n_test", "an integer >= 0", self.n_test)
        self.validate()

    # ---- what a subclass provides -------------------------------------------------------------

    def validate(self) -> None:
        """Check the family's fields; raise `ValueError` naming the field. Called on construction."""

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray) -> dict[str, Array]:
        """One sample: a dict of arrays, each ``(..., *spatial)``; pure and traceable in `key`.

        It may depend on the key and the dataset's own fields, but not on `n_train`, `n_test`
        or `seed` (those choose *which* keys are drawn; `load_dataset` shares one compiled
        sampler between configs that differ only in them).
        """

    @abc.abstractmethod
    def coordinates(self) -> dict[str, np.ndarray]:
        """The coordinates of the stored arrays: ``"x"`` (and ``"y"``) per spatial axis, ``"t"`` for time."""

    # ---- identity -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """What the fingerprint hashes: the dataset's name, the format version, the batch width, every field."""
        return {
            "dataset": self.name,
            "format_version": FORMAT_VERSION,
            "batch_size": self.batch_size,
            "config": self.to_dict(),
        }

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the canonical JSON of `identity`."""
        canonical = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def num_samples(self) -> dict[str, int]:
        return {"train": self.n_train, "test": self.n_test}

    # ---- helpers for subclasses ---------------------------------------------------------------

    def _check(self, ok: bool, field: str, expected: str, value) -> None:
        if not ok:
            raise ValueError(f"{type(self).__name__}: `{field}` must be {expected}, got {value!r}.")


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _coerce(owner: str, name: str, annotation, value):
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", None)
    target = _TYPES.get(kind)
    if target is None:
        raise TypeError(
            f"{owner}: field `{name}` is annotated {annotation!r}; dataset configs hold only int, float, "
            "str and bool fields, so that their JSON (and hence their cache key) is canonical."
        )
    if target is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{owner}: `{name}` must be a bool, got {value!r}.")
        return bool(value)
    if target is str:
        if not isinstance(value, str):
            raise TypeError(f"{owner}: `{name}` must be a string, got {value!r}.")
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: `{name}` must be a number, got {value!r}.")
    if target is int:
        if not math.isfinite(float(value)) or float(value) != int(value):
            raise ValueError(f"{owner}: `{name}` must be an integer, got {value!r}.")
        return int(value)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: `{name}` must be finite, got {value!r}.")
    return value
