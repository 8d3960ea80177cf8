r"""Kuramoto–Sivashinsky trajectories on the chaotic attractor, for autoregressive emulators.

$$\partial_t u + u\,\partial_x u + \partial_x^2 u + \partial_x^4 u = 0, \qquad x \in [0, L) \text{ periodic},$$

(the convective form of `jaxpde.pdes.KuramotoSivashinsky`, pseudo-spectral with 2/3
dealiasing, ETDRK in time). Each trajectory starts from a smooth Gaussian random field
``N(0, σ²(−Δ + τ²I)^{−α})``, is integrated for a `burn_in` time that is discarded — the
transient from the random start onto the attractor — and then saved every `save_interval` up
to `time`.

Defaults: ``L = 60`` with 256 points (the setting of the emulator benchmarks in METHODS.md,
a domain with about nine unstable wavelengths ``2π√2``), ETDRK4 with ``dt = 0.1``, frames every
``0.5``, ``T = 100`` after a burn-in of ``100`` (measured: the field's standard deviation grows
from ``~0.5`` to the attractor's ``~1.2`` within it). Against a ``dt = 0.005`` solve, ``dt = 0.1``
differs by ``~7e-5`` (relative L2) after 5 time units, the same as ``dt = 0.01`` — the level at
which float32 rounding, amplified by the chaos, dominates. Cost: ≈ 165 trajectories/s on 2
shared CPU cores (measured). References: Kassam & Trefethen
(2005) §5 (the ETDRK4 KS solve); Lippe et al., "PDE-Refiner" (NeurIPS 2023) for KS as an
emulator benchmark.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from jaxtyping import Array, PRNGKeyArray

from ..grids import Grid
from ..pdes.kuramoto_sivashinsky import KuramotoSivashinsky
from ..random_fields import GaussianRandomField
from ._config import DatasetConfig
from ._resolution import coarse_size, subsample
from ._time_stepping import etdrk_solver, num_steps, trajectory

__all__ = ["KuramotoSivashinskyConfig"]


@dataclasses.dataclass(frozen=True)
class KuramotoSivashinskyConfig(DatasetConfig):
    r"""1D Kuramoto–Sivashinsky trajectories (see the module docstring).

    Arrays: ``"u"`` of shape ``(n, time/save_interval + 1, s)`` (frame 0 is the state right
    after the burn-in); coordinates ``"x"`` (``jL/s``) and ``"t"`` (measured from the end of the
    burn-in).

    **Fields** (besides `n_train`, `n_test`, `seed`):

    - `length`: the period ``L``; `resolution`, `subsample`: solve points and the stride kept.
    - `dt`, `save_interval`, `time`, `burn_in`: ETDRK step, frame spacing, saved span and
      discarded span (times are multiples of `dt`; `time` a multiple of `save_interval`).
    - `solver`: ``"ETDRK1"`` … ``"ETDRK4"``.
    - `sigma`, `tau`, `alpha`: the random initial field.
    """

    length: float = 60.0
    resolution: int = 256
    subsample: int = 1
    dt: float = 0.1
    save_interval: float = 0.5
    time: float = 100.0
    burn_in: float = 100.0
    solver: str = "ETDRK4"
    sigma: float = 1.0
    tau: float = 1.0
    alpha: float = 2.0

    name: ClassVar[str] = "kuramoto_sivashinsky"
    spatial_ndim: ClassVar[int] = 1
    closed_grid: ClassVar[bool] = False
    default_chunk_size: ClassVar[int] = 64

    def validate(self) -> None:
        coarse_size(self.resolution, self.subsample)
        self.pde()
        self.initial_field()
        etdrk_solver(self.solver, type(self).__name__)
        self._steps()

    def _steps(self) -> tuple[int, int, int]:
        owner = type(self).__name__
        per_save = num_steps(self.save_interval, self.dt, "save_interval", owner)
        saves = num_steps(self.time, self.save_interval, "time", owner)
        burn = num_steps(self.burn_in, self.dt, "burn_in", owner, allow_zero=True)
        return per_save, saves, burn

    def grid(self) -> Grid:
        return Grid(self.resolution, self.length)

    def pde(self) -> KuramotoSivashinsky:
        return KuramotoSivashinsky(self.grid())

    def initial_field(self) -> GaussianRandomField:
        return GaussianRandomField(self.grid(), self.sigma, self.tau, self.alpha)

    def sample(self, key: PRNGKeyArray) -> dict[str, Array]:
        per_save, saves, burn = self._steps()
        u0 = self.initial_field().sample(key)
        frames = trajectory(self.pde(), u0, self.dt, per_save, saves, etdrk_solver(self.solver), burn)
        return {"u": subsample(frames, self.subsample)}

    def coordinates(self) -> dict[str, np.ndarray]:
        _, saves, _ = self._steps()
        s = coarse_size(self.resolution, self.subsample)
        x = (np.arange(s) * (self.length / s)).astype(np.float32)
        return {"x": x, "t": (np.arange(saves + 1) * self.save_interval).astype(np.float32)}
