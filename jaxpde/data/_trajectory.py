r"""The base of the time-dependent datasets: a PDE on a periodic grid, a random initial field, ETDRK.

Every time-dependent dataset in `jaxpde.data` is the same pipeline,

$$u_0 \sim N\big(0, σ^2(−Δ + τ^2 I)^{−α}\big), \qquad \partial_t u = \mathcal L u + \mathcal N(u),
  \qquad \text{stored: } u(t_k) \text{ on every } r\text{-th point},$$

the initial field from `jaxpde.random_fields.GaussianRandomField` on the PDE's grid, the
semi-linear PDE integrated with constant-step ETDRK (Cox & Matthews 2002; Kassam & Trefethen
2005) by `jaxpde.numerics.time_integration`, the result subsampled for storage. Two bases hold
what the datasets share:

- `TimeDependentConfig`: the fields ``resolution``, ``subsample``, ``time``, ``dt``,
  ``solver``, ``sigma``, ``tau``, ``alpha``, their validation, the initial field, the solver,
  the stored spatial coordinates. A subclass adds its physical fields, `grid()`, `pde()` and
  ``sample(key)`` (the FNO Burgers operator ``u0 ↦ u(T)`` is one).
- `TrajectoryConfig`: adds ``save_interval`` and ``burn_in`` and the whole ``sample``: frames
  ``u(kΔ)``, ``k = 0, …, time/Δ``, after a discarded burn-in, stored under the name
  `frames_name`, with the ``"t"`` coordinate. A new trajectory dataset is a subclass with its
  fields, `name`, `grid()` and `pde()`::

      @dataclasses.dataclass(frozen=True)
      class KdVConfig(TrajectoryConfig):
          resolution: int = 128
          length: float = 20.0
          name: ClassVar[str] = "kdv"

          def grid(self):
              return Grid(self.resolution, self.length)

          def pde(self):
              return KdV(self.grid())

Times are physical (``time = 50.0``, ``save_interval = 1.0``) and must be integer multiples of
the step ``dt`` so that every saved frame falls exactly on a step — a config whose times do not
divide is rejected rather than rounded.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import ClassVar

import numpy as np
from jaxtyping import Array, PRNGKeyArray

from ..grids import Grid
from ..numerics.etdrk import ETDRK1, ETDRK2, ETDRK3, ETDRK4, AbstractETDRK
from ..numerics.time_integration import trajectory
from ..random_fields import GaussianRandomField
from ._config import DatasetConfig
from ._resolution import coarse_size, subsample

__all__ = ["SOLVERS", "TimeDependentConfig", "TrajectoryConfig", "etdrk_solver", "num_steps"]

SOLVERS: dict[str, type[AbstractETDRK]] = {"ETDRK1": ETDRK1, "ETDRK2": ETDRK2, "ETDRK3": ETDRK3, "ETDRK4": ETDRK4}
_SPATIAL_NAMES = ("x", "y", "z")


def etdrk_solver(name: str, owner: str = "dataset") -> AbstractETDRK:
    """The ETDRK solver called `name` (``"ETDRK1"`` … ``"ETDRK4"``)."""
    if name not in SOLVERS:
        raise ValueError(f"{owner}: `solver` must be one of {tuple(SOLVERS)}, got {name!r}.")
    return SOLVERS[name]()


def num_steps(interval: float, dt: float, name: str, owner: str, allow_zero: bool = False) -> int:
    """``interval / dt`` as an integer, or a `ValueError` if `dt` does not divide `interval`."""
    if not dt > 0:
        raise ValueError(f"{owner}: `dt` must be positive, got {dt!r}.")
    if interval < 0 or (interval == 0 and not allow_zero):
        raise ValueError(f"{owner}: `{name}` must be {'>= 0' if allow_zero else 'positive'}, got {interval!r}.")
    steps = round(interval / dt)
    # Relative tolerance for the binary rounding of decimal inputs such as 1.0 / 1e-4.
    if not math.isclose(steps * dt, interval, rel_tol=1e-9, abs_tol=1e-12) or (steps == 0 and not allow_zero):
        raise ValueError(
            f"{owner}: `{name}` = {interval!r} must be an integer multiple of `dt` = {dt!r} "
            f"({name} / dt = {interval / dt!r})."
        )
    return int(steps)


@dataclasses.dataclass(frozen=True)
class TimeDependentConfig(DatasetConfig):
    r"""Base of the datasets of a semi-linear PDE on a periodic grid from a Gaussian random start.

    **Fields** (besides `n_train`, `n_test`, `seed`):

    - `resolution`: points per axis of the periodic grid the PDE is solved on.
    - `subsample`: keep every `subsample`-th point per axis for storage (must divide `resolution`).
    - `time`: the final time ``T``; `dt`: the ETDRK step (``T/dt`` must be an integer).
    - `solver`: ``"ETDRK1"`` … ``"ETDRK4"``.
    - `sigma`, `tau`, `alpha`: the initial field ``N(0, σ²(−Δ + τ²I)^{−α})``.

    **A subclass provides** `grid()` (the solve grid: ``resolution`` points per axis), `pde()`
    (a semi-linear PDE of `jaxpde.pdes` on that grid), `steps()`, ``sample(key)`` and
    ``coordinates()``; `validate` builds the PDE and the field and counts the steps, so their
    own checks (viscosity > 0, times multiples of `dt`, …) run when the config is made.
    """

    resolution: int = 64
    subsample: int = 1
    time: float = 1.0
    dt: float = 1e-3
    solver: str = "ETDRK4"
    sigma: float = 1.0
    tau: float = 1.0
    alpha: float = 2.0

    closed_grid: ClassVar[bool] = False

    @abc.abstractmethod
    def grid(self) -> Grid:
        """The periodic grid the PDE is solved on."""

    @abc.abstractmethod
    def pde(self):
        """The semi-linear PDE (a `jaxpde.pdes` model with ``semilinear_term()``) on `grid()`."""

    def validate(self) -> None:
        owner = type(self).__name__
        coarse_size(self.resolution, self.subsample)
        self.pde()  # the PDE's own checks
        self.initial_field()  # the random field's own checks (sigma > 0, tau >= 0, alpha > 0)
        etdrk_solver(self.solver, owner)
        self.steps()

    @abc.abstractmethod
    def steps(self) -> dict[str, int]:
        """The step counts the times define, checked (`num_steps`); called by `validate`."""

    def initial_field(self) -> GaussianRandomField:
        """``N(0, σ²(−Δ + τ²I)^{−α})`` on `grid()`."""
        return GaussianRandomField(self.grid(), self.sigma, self.tau, self.alpha)

    def integrator(self) -> AbstractETDRK:
        """The ETDRK solver named by `solver`."""
        return etdrk_solver(self.solver, type(self).__name__)

    def store(self, field: Array) -> Array:
        """Every `subsample`-th point along the trailing `spatial_ndim` axes (what is stored)."""
        return subsample(field, self.subsample, axes=tuple(range(-self.spatial_ndim, 0)))

    def spatial_coordinates(self) -> dict[str, np.ndarray]:
        """``"x"`` (``"y"``, ``"z"``): the stored points ``j L/s`` per axis, ``s = resolution/subsample``."""
        grid = self.grid()
        out = {}
        for name, n, length, origin in zip(_SPATIAL_NAMES, grid.shape, grid.lengths, grid.origin):
            s = coarse_size(n, self.subsample)
            out[name] = (origin + np.arange(s) * (length / s)).astype(np.float32)
        return out


@dataclasses.dataclass(frozen=True)
class TrajectoryConfig(TimeDependentConfig):
    r"""Base of the trajectory datasets: frames ``u(kΔ)``, ``k = 0, …, time/Δ``, after a burn-in.

    Arrays: `frames_name` (default ``"u"``) of shape ``(n, time/save_interval + 1, *s)``; frame 0
    is the state right after the burn-in. Coordinates: the spatial ones and ``"t"`` (``kΔ``,
    measured from the end of the burn-in).

    **Fields:** those of `TimeDependentConfig`, and

    - `save_interval`: ``Δ``, a multiple of `dt`; `time` must be a multiple of ``Δ``.
    - `burn_in`: integrated first and discarded (a multiple of `dt`, ``>= 0``) — the transient
      from the random start onto an attractor.
    """

    save_interval: float = 0.1
    burn_in: float = 0.0

    frames_name: ClassVar[str] = "u"

    def steps(self) -> dict[str, int]:
        """``{"per_save": Δ/dt, "saves": time/Δ, "burn_in": burn_in/dt}``, checked."""
        owner = type(self).__name__
        return {
            "per_save": num_steps(self.save_interval, self.dt, "save_interval", owner),
            "saves": num_steps(self.time, self.save_interval, "time", owner),
            "burn_in": num_steps(self.burn_in, self.dt, "burn_in", owner, allow_zero=True),
        }

    def sample(self, key: PRNGKeyArray) -> dict[str, Array]:
        steps = self.steps()
        u0 = self.initial_field().sample(key)
        frames = trajectory(
            self.pde(), u0, self.dt, steps["per_save"], steps["saves"], self.integrator(), steps["burn_in"]
        )
        return {self.frames_name: self.store(frames)}

    def coordinates(self) -> dict[str, np.ndarray]:
        t = (np.arange(self.steps()["saves"] + 1) * self.save_interval).astype(np.float32)
        return {**self.spatial_coordinates(), "t": t}
