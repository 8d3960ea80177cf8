"""A tiny dataset config for the infrastructure tests: cheap to compile, easy to reason about."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxpde.data import DatasetConfig


@dataclasses.dataclass(frozen=True)
class ToyConfig(DatasetConfig):
    """``field = scale * N(0, I)`` on `resolution` periodic points and its running sum."""

    resolution: int = 8
    scale: float = 1.0

    name: ClassVar[str] = "toy"
    spatial_ndim: ClassVar[int] = 1
    batch_size: ClassVar[int] = 4

    def validate(self) -> None:
        self._check(self.resolution >= 2, "resolution", "an integer >= 2", self.resolution)

    def sample(self, key):
        field = self.scale * jax.random.normal(key, (self.resolution,))
        return {"field": field, "cumsum": jnp.cumsum(field)}

    def coordinates(self):
        return {"x": np.arange(self.resolution, dtype=np.float32) / self.resolution}
