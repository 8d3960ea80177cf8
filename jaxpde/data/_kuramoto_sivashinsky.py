r"""Kuramoto–Sivashinsky trajectories on the chaotic attractor, for autoregressive emulators.

$$\partial_t u + u\,\partial_x u + \partial_x^2 u + \partial_x^4 u = 0, \qquad x \in [0, L) \text{ periodic},$$

(the convective form of `jaxpde.pdes.KuramotoSivashinsky`, pseudo-spectral with 2/3
dealiasing, ETDRK in time). Each trajectory starts from a smooth Gaussian random field
``N(0, σ²(−Δ + τ²I)^{−α})``, is integrated for a `burn_in` time that is discarded — the
transient from the random start onto the attractor — and then saved every `save_interval` up
to `time`.

Defaults: ``L = 60`` with 256 points (a domain with about nine unstable wavelengths ``2π√2``,
the chaotic regime of the emulator benchmarks), ETDRK4 with ``dt = 0.1``, frames every
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

from ..grids import Grid
from ..pdes.kuramoto_sivashinsky import KuramotoSivashinsky
from ._trajectory import TrajectoryConfig

__all__ = ["KuramotoSivashinskyConfig"]


@dataclasses.dataclass(frozen=True)
class KuramotoSivashinskyConfig(TrajectoryConfig):
    r"""1D Kuramoto–Sivashinsky trajectories (see the module docstring).

    Arrays: ``"u"`` of shape ``(n, time/save_interval + 1, s)`` (frame 0 is the state right
    after the burn-in); coordinates ``"x"`` (``jL/s``) and ``"t"`` (measured from the end of the
    burn-in).

    **Fields** (besides `n_train`, `n_test`, `seed`): those of `jaxpde.data.TrajectoryConfig`
    (`resolution`, `subsample`; `dt`, `save_interval`, `time`, `burn_in` — times multiples of
    `dt`, `time` a multiple of `save_interval`; `solver`; `sigma`, `tau`, `alpha` of the random
    initial field) and

    - `length`: the period ``L``.
    """

    length: float = 60.0
    resolution: int = 256
    dt: float = 0.1
    save_interval: float = 0.5
    time: float = 100.0
    burn_in: float = 100.0

    name: ClassVar[str] = "kuramoto_sivashinsky"
    spatial_ndim: ClassVar[int] = 1
    batch_size: ClassVar[int] = 64

    def grid(self) -> Grid:
        return Grid(self.resolution, self.length)

    def pde(self) -> KuramotoSivashinsky:
        return KuramotoSivashinsky(self.grid())
