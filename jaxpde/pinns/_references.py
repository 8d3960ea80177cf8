r"""Reference solutions of the PINN benchmarks, computed by jaxpde's own solvers and cached on disk.

Each function returns a `Reference` ``(x, t, u)`` with ``u[i, j]`` $= u(x_j, t_i)$ on a closed
grid (both ends of the interval, so a periodic solution shows $u(x_0) = u(x_{n})$), and is a
deterministic function of its arguments: the first call solves and stores the result in the
dataset cache folder (``$JAXPDE_CACHE``, else ``~/.cache/jaxpde``) under
``reference-<name>-<fingerprint>.npz``, later calls read it back (checked against its SHA-256
and its settings, like a dataset; a damaged or stale file is recomputed with a warning).

- `allen_cahn_reference`: $u_t - 10^{-4}u_{xx} + 5u^3 - 5u = 0$ on $x \in [-1, 1]$ periodic,
  $t \in [0, 1]$, $u_0 = x^2\cos(\pi x)$ — the setting of jaxpi (Wang, Sankaran, Wang &
  Perdikaris, "An expert's guide to training physics-informed neural networks", 2023), there
  solved by Chebfun; here by ETDRK4 (Cox & Matthews 2002; Kassam & Trefethen 2005) on a Fourier
  grid four times finer than the output, in float64.
- `burgers_reference`: $u_t + u u_x = \nu u_{xx}$, $\nu = 0.01/\pi$, $x \in [-1, 1]$,
  $t \in [0, 1]$, $u_0 = -\sin(\pi x)$, $u(\pm 1, t) = 0$ — the setting of Raissi, Perdikaris &
  Karniadakis (J. Comput. Phys. 378, 2019) and DeepXDE's Burgers example. The initial condition
  is odd and the equation keeps odd solutions odd, so the periodic solution on $[-1, 1)$ has
  $u(-1) = -u(1) = -u(-1)$: it vanishes at $x = \pm 1$ and solves the Dirichlet problem. Solved
  pseudo-spectrally (2/3 dealiasing) by ETDRK4 in float64; checked in the tests against the
  Cole–Hopf integral $u = -\int \sin\pi(x-\eta)\, f(x-\eta) G(\eta) d\eta / \int f(x-\eta)
  G(\eta) d\eta$, $f(y) = e^{-\cos(\pi y)/(2\pi\nu)}$, $G$ the heat kernel (agreement ~1e-8 at
  $t = 1$, ~5e-6 at the steepest time, with 2048 modes and $\Delta t = 10^{-4}$).
  (`jaxpde.pdes.cole_hopf_solution` is the closed form for a different, cosine-potential
  initial condition and does not apply here.)
- `convection_reference`: $u_t + \beta u_x = 0$ on $x \in [0, 2\pi]$ periodic, $t \in [0, 1]$,
  $u_0 = \sin x$ — the "failure modes" setting (Krishnapriyan et al., NeurIPS 2021); the exact
  solution $\sin(x - \beta t)$, nothing to cache.
"""

import dataclasses
import hashlib
import json
import math
import warnings
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..data._cache import default_cache_dir
from ..data._files import UNREADABLE, atomic_save_npz, load_npz
from ..grids import Grid
from ..numerics.time_integration import rollout
from ..pdes import AllenCahn, Burgers

__all__ = ["Reference", "allen_cahn_reference", "burgers_reference", "convection_reference", "reference_path"]

# Bump when the meaning of a stored reference changes: every cached one is then recomputed.
REFERENCE_VERSION = 1


class Reference(NamedTuple):
    """A solution on a grid: ``x`` of shape ``(nx,)``, ``t`` of shape ``(nt,)``, ``u[t, x]``.

    Unpacks as ``x, t, u = reference``.
    """

    x: Float[np.ndarray, " nx"]
    t: Float[np.ndarray, " nt"]
    u: Float[np.ndarray, "nt nx"]

    def points(self) -> tuple[Float[Array, "n 1"], Float[Array, " n"]]:
        """Every grid point as PINN inputs: ``x`` of shape ``(nt·nx, 1)`` and ``t`` of shape ``(nt·nx,)``,
        in the order of ``u.reshape(-1)``."""
        tt, xx = np.meshgrid(self.t, self.x, indexing="ij")
        return jnp.asarray(xx.reshape(-1, 1)), jnp.asarray(tt.reshape(-1))

    def relative_l2(self, prediction) -> float:
        r"""$\|p - u\|_2 / \|u\|_2$ over the grid for a prediction of shape ``u.shape`` (or flat)."""
        prediction = np.asarray(prediction, dtype=np.float64).reshape(self.u.shape)
        return float(np.linalg.norm(prediction - self.u) / np.linalg.norm(self.u))


@dataclasses.dataclass(frozen=True)
class _Setting:
    """Every number that changes a stored reference (its fingerprint is the cache key)."""

    name: str
    parameters: tuple[tuple[str, float | int], ...]

    def identity(self) -> dict:
        return {"reference": self.name, "version": REFERENCE_VERSION, **dict(self.parameters)}

    def fingerprint(self) -> str:
        canonical = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def reference_path(setting: _Setting, cache_dir: str | Path | None = None) -> Path:
    folder = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
    return folder / f"reference-{setting.name}-{setting.fingerprint()[:20]}.npz"


def _cached(setting: _Setting, compute, cache_dir) -> Reference:
    path = reference_path(setting, cache_dir)
    if path.exists():
        try:
            stored = load_npz(path)
            identity = json.loads(str(stored["setting"]))
            if identity != setting.identity():
                raise ValueError(f"made with {identity}, requested {setting.identity()}")
            reference = Reference(stored["x"], stored["t"], stored["u"])
            if not np.isfinite(reference.u).all():
                raise ValueError("it holds non-finite values")
            return reference
        except UNREADABLE as error:
            warnings.warn(f"jaxpde.pinns: cached reference {path} is invalid ({error}); recomputing.", stacklevel=3)
    reference = compute()
    if not np.isfinite(reference.u).all():
        raise FloatingPointError(
            f"jaxpde.pinns: the {setting.name} solve with {dict(setting.parameters)} is not finite (under-resolved); "
            "increase `solve_points` or `steps_per_save`."
        )
    arrays = {"x": reference.x, "t": reference.t, "u": reference.u}
    atomic_save_npz(path, {**arrays, "setting": np.asarray(json.dumps(setting.identity(), sort_keys=True))})
    return reference


def _check_int(owner: str, name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}: `{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_sizes(owner: str, num_x: int, num_t: int, solve_points: int, steps_per_save: int) -> None:
    _check_int(owner, "num_x", num_x, 3)
    _check_int(owner, "num_t", num_t, 2)
    _check_int(owner, "solve_points", solve_points, 4)
    _check_int(owner, "steps_per_save", steps_per_save, 1)
    if (num_x - 1) < 2 or solve_points % (num_x - 1):
        raise ValueError(
            f"{owner}: `solve_points` must be a multiple of num_x - 1 = {num_x - 1} (the output keeps every "
            f"k-th point of the periodic solve grid, plus the right end), got {solve_points!r}."
        )


def _spectral_solve(pde, u0, num_t: int, steps_per_save: int, num_x: int) -> Reference:
    """ETDRK4 from t = 0 to 1 with frames at ``t_i = i / (num_t - 1)``, subsampled to ``num_x`` closed points."""
    dt = 1.0 / ((num_t - 1) * steps_per_save)
    frames = rollout(pde, u0, dt, (num_t - 1) * steps_per_save, save_every=steps_per_save)
    frames = np.concatenate([np.asarray(u0)[None], np.asarray(frames)], axis=0)
    stride = pde.grid.shape[0] // (num_x - 1)
    u = frames[:, ::stride]
    u = np.concatenate([u, u[:, :1]], axis=1)  # the right end equals the left one (periodic)
    (x,) = pde.grid.axes()
    x = np.append(np.asarray(x)[::stride], pde.grid.origin[0] + pde.grid.lengths[0])
    return Reference(x.astype(np.float64), np.linspace(0.0, 1.0, num_t), u.astype(np.float64))


def allen_cahn_reference(
    num_x: int = 513,
    num_t: int = 201,
    *,
    diffusivity: float = 1e-4,
    reaction: float = 5.0,
    solve_points: int = 2048,
    steps_per_save: int = 200,
    cache_dir: str | Path | None = None,
) -> Reference:
    r"""jaxpi's Allen–Cahn solution $u[t, x]$ on ``num_x`` closed points of $[-1, 1]$, ``num_t`` times in $[0, 1]$.

    Solved with ``solve_points`` Fourier modes and $\Delta t$ = 1 / ((num_t − 1)·steps_per_save)
    (default 2.5e−5) in float64, then subsampled. ``num_x - 1`` must divide ``solve_points``.
    """
    owner = "allen_cahn_reference"
    _check_sizes(owner, num_x, num_t, solve_points, steps_per_save)
    setting = _Setting(
        "allen-cahn",
        (
            ("num_x", num_x),
            ("num_t", num_t),
            ("diffusivity", float(diffusivity)),
            ("reaction", float(reaction)),
            ("solve_points", solve_points),
            ("steps_per_save", steps_per_save),
        ),
    )

    def compute():
        with jax.enable_x64(True):
            grid = Grid(solve_points, lengths=2.0, origin=-1.0)
            (x,) = grid.axes()
            pde = AllenCahn(grid, diffusivity, reaction)
            return _spectral_solve(pde, x**2 * jnp.cos(jnp.pi * x), num_t, steps_per_save, num_x)

    return _cached(setting, compute, cache_dir)


def burgers_reference(
    num_x: int = 257,
    num_t: int = 101,
    *,
    viscosity: float = 0.01 / math.pi,
    solve_points: int = 2048,
    steps_per_save: int = 100,
    cache_dir: str | Path | None = None,
) -> Reference:
    r"""The Burgers solution of Raissi et al. / DeepXDE, $u[t, x]$ on ``num_x`` closed points of $[-1, 1]$.

    ``num_t`` times in $[0, 1]$; solved with ``solve_points`` Fourier modes (2/3-dealiased) and
    $\Delta t$ = 1 / ((num_t − 1)·steps_per_save) (default 1e−4) in float64.
    """
    owner = "burgers_reference"
    _check_sizes(owner, num_x, num_t, solve_points, steps_per_save)
    if not (isinstance(viscosity, (int, float)) and viscosity > 0 and math.isfinite(viscosity)):
        raise ValueError(f"{owner}: `viscosity` must be a positive number, got {viscosity!r}.")
    setting = _Setting(
        "burgers",
        (
            ("num_x", num_x),
            ("num_t", num_t),
            ("viscosity", float(viscosity)),
            ("solve_points", solve_points),
            ("steps_per_save", steps_per_save),
        ),
    )

    def compute():
        with jax.enable_x64(True):
            grid = Grid(solve_points, lengths=2.0, origin=-1.0)
            (x,) = grid.axes()
            pde = Burgers(grid, float(viscosity))
            return _spectral_solve(pde, -jnp.sin(jnp.pi * x), num_t, steps_per_save, num_x)

    return _cached(setting, compute, cache_dir)


def convection_reference(beta: float, num_x: int = 257, num_t: int = 101) -> Reference:
    r"""$u = \sin(x - \beta t)$ on ``num_x`` closed points of $[0, 2\pi]$ and ``num_t`` times in $[0, 1]$."""
    owner = "convection_reference"
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta):
        raise ValueError(f"{owner}: `beta` must be a finite number, got {beta!r}.")
    _check_int(owner, "num_x", num_x, 2)
    _check_int(owner, "num_t", num_t, 2)
    x = np.linspace(0.0, 2 * np.pi, num_x)
    t = np.linspace(0.0, 1.0, num_t)
    return Reference(x, t, np.sin(x[None, :] - beta * t[:, None]))
