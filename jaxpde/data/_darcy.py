r"""The FNO-paper Darcy flow dataset: coefficient ``a`` ↦ pressure ``u``.

$$-\nabla\cdot\big(a(x)\nabla u(x)\big) = f, \quad x \in (0, 1)^2, \qquad u = 0 \text{ on } \partial(0,1)^2,$$

with ``f = 1`` and the two-phase coefficient ``a = 12`` where ``z ≥ 0``, ``a = 3`` where
``z < 0``, for a Gaussian random field ``z ~ N(0, (−Δ + 9I)^{−2})`` (``σ = 1, τ = 3, α = 2``).

**Grid.** Everything lives on the node grid ``x_j = j/(n-1)``, ``j = 0, …, n-1``, of the unit
square *including* the boundary nodes, as in the paper's data (``n = 421``). The unknowns are
the ``(n-2)²`` interior nodes — `jaxpde.Grid((n-2, n-2), boundary="dirichlet")`, spacing
``1/(n-1)`` — and the stored solution has the zero boundary rows and columns put back. Coarser
data keep every ``r``-th node, which needs ``r | n - 1``: ``421 → 85`` with ``r = 5`` (the
paper's ``s = 85``), ``253 → 85`` with ``r = 3``, ``241 → 81`` with ``r = 3``.

**Coefficient field.** By default (``coefficient_basis = "cosine"``) ``z`` is the
Karhunen–Loève series in the eigenfunctions of the *Neumann* Laplacian on the square
(`jaxpde.random_fields.NeumannGaussianField`), ``φ_m(x) = c_{m_1}c_{m_2}\cos(π m_1 x_1)\cos(π m_2 x_2)`` (``c_0 = 1``, ``c_m = √2``), with
eigenvalues ``σ²(π²|m|² + τ²)^{−α}``, ``m_i = 0, …, n-1``, the constant mode dropped — the
basis of the paper's generator, which therefore gives random phases up to and on the boundary
(the boundary values of ``a`` are part of the stored input, though the solve does not use
them). ``coefficient_basis = "sine"`` uses `jaxpde.random_fields.GaussianRandomField` on the
interior Dirichlet grid instead (``z = 0`` on the boundary, so ``a = 12`` there). The threshold
only sees the sign of ``z``, so ``σ`` does not matter.

**Discretisation.** The cell-centred 5-point finite-volume operator of
`jaxpde.pdes.Darcy.operator` (`jaxpde.numerics.stencils.DiffusionOperator`): face
conductivities are harmonic means of the two adjacent nodes' ``a``, boundary faces take the
adjacent interior node's value. Solvers:

- ``"gmg"`` (default): `jaxpde.pdes.Darcy.solve` with the geometric-multigrid preconditioner
  (`jaxpde.preconditioners.GeometricMultigrid`: a symmetric V-cycle with Galerkin coarse
  operators) in float32 "to working precision" (CG stops when the true residual stagnates, at
  the float32 floor, about 15 iterations at ``251²`` unknowns; it raises if it breaks down),
  vmapped over a chunk, on any backend. At ``253²`` its relative L2 difference from the float64
  direct solve is at most ``9e-6`` (median ``4e-6``, 32 samples) and a chunk takes about a third
  of SuperLU's time (measured, `benchmarks/darcy_dataset_generation.py`).
- ``"cg"``: the same with Jacobi preconditioning (the default before multigrid): hundreds of
  iterations, about 1.5× SuperLU's time on a CPU; relative L2 difference from the direct solve
  ``1.4e-6`` median, ``1.7e-5`` max.
- ``"direct"``: SuperLU (`scipy.sparse.linalg.spsolve`) in float64 on the host, through
  `jax.pure_callback`, of the very matrix the CG paths apply: the stencil operator's own sparse
  export (`DiffusionOperator.to_sparse`, float32 entries), so the solvers differ only by
  CG's stopping error. Exact to float64 rounding for that matrix, stored as float32; host only,
  one sample at a time.

The solver is part of the config (and of its fingerprint): the three give different float32
roundings of the same solution, so a cache written with ``solver="cg"`` (the old default) is
not reused by the ``"gmg"`` default.

**What differs from the paper** (Li et al., ICLR 2021, §5.2; its MATLAB generator): the paper
evaluates its cosine series at cell centres, spline-interpolates ``a`` to the nodes and uses
arithmetic-mean face coefficients in a second-order finite-difference solve at ``421²``; here
``a`` is evaluated directly at the nodes, stays piecewise constant, and the faces use harmonic
means (flux-continuous across the jumps). The default resolution is the paper's 421 nodes;
``resolution = 253, subsample = 3`` gives the same 85² training grid at less than half the
cost.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse.linalg as sparse_linalg
from jaxtyping import Array, Float, PRNGKeyArray
from scipy import sparse

from ..grids import Grid
from ..numerics.preconditioning import Jacobi
from ..numerics.stencils import DiffusionOperator
from ..pdes.elliptic import Darcy
from ..random_fields import GaussianRandomField, NeumannGaussianField, thresholded
from ._config import DatasetConfig
from ._resolution import coarse_size, subsample

__all__ = ["DarcyConfig"]

_SOLVERS = ("gmg", "cg", "direct")
_BASES = ("cosine", "sine")


def _direct_solve_host(values: np.ndarray, indices: np.ndarray, source: float, shape: tuple[int, ...]) -> np.ndarray:
    """SuperLU solves in float64 of the exported stencil matrices; leading axes are a batch.

    `values` ``(*batch, nnz)`` and `indices` ``(*batch', nnz, 2)`` (broadcastable: the sparsity
    pattern is the same for every sample) are the BCOO export of `DiffusionOperator.to_sparse`.
    """
    values = np.asarray(values)
    batch = values.shape[:-1]
    indices = np.broadcast_to(np.asarray(indices), (*batch, *np.shape(indices)[-2:]))
    size = int(np.prod(shape))
    rhs = np.full(size, source, dtype=np.float64)
    out = np.empty((*batch, *shape), np.float32)
    for b in np.ndindex(*batch):
        rows, cols = indices[b][:, 0], indices[b][:, 1]
        matrix = sparse.csc_matrix((values[b].astype(np.float64), (rows, cols)), shape=(size, size))
        out[b] = sparse_linalg.spsolve(matrix, rhs).reshape(shape)
    return out


@dataclasses.dataclass(frozen=True)
class DarcyConfig(DatasetConfig):
    r"""The FNO Darcy dataset (see the module docstring).

    Arrays: ``"coefficient"`` and ``"solution"``, each ``(n, s, s)`` on the node grid with
    ``s = (resolution - 1)/subsample + 1`` (boundary nodes included; the solution is zero
    there); coordinates ``"x"``, ``"y"`` (``j/(s-1)``).

    **Fields** (besides `n_train`, `n_test`, `seed`):

    - `resolution`: nodes per side of the solve grid, boundary included (paper: 421).
    - `subsample`: keep every `subsample`-th node; must divide ``resolution - 1``.
    - `sigma`, `tau`, `alpha`: the field ``z ~ N(0, σ²(−Δ + τ²I)^{−α})``.
    - `high`, `low`, `threshold`: ``a = high`` where ``z ≥ threshold``, else ``low``.
    - `source`: the constant ``f``.
    - `coefficient_basis`: ``"cosine"`` (Neumann eigenfunctions, the paper's) or ``"sine"``.
    - `solver`: ``"gmg"`` (float32 multigrid-PCG on any device, the default), ``"cg"`` (float32
      Jacobi-PCG) or ``"direct"`` (float64 SuperLU on the host).
    """

    resolution: int = 421
    subsample: int = 5
    sigma: float = 1.0
    tau: float = 3.0
    alpha: float = 2.0
    high: float = 12.0
    low: float = 3.0
    threshold: float = 0.0
    source: float = 1.0
    coefficient_basis: str = "cosine"
    solver: str = "gmg"

    name: ClassVar[str] = "darcy"
    spatial_ndim: ClassVar[int] = 2
    closed_grid: ClassVar[bool] = True
    batch_size: ClassVar[int] = 16

    def validate(self) -> None:
        if self.resolution < 4:
            self._check(False, "resolution", "an integer >= 4 (nodes per side, boundary included)", self.resolution)
        coarse_size(self.resolution, self.subsample, closed=True)
        self._check(self.coefficient_basis in _BASES, "coefficient_basis", f"one of {_BASES}", self.coefficient_basis)
        self._check(self.solver in _SOLVERS, "solver", f"one of {_SOLVERS}", self.solver)
        self._check(self.high > 0, "high", "positive (a is a conductivity)", self.high)
        self._check(self.low > 0, "low", "positive (a is a conductivity)", self.low)
        # The random field's own checks (sigma > 0, tau >= 0, alpha > 0).
        GaussianRandomField(Grid((2, 2), boundary="dirichlet"), self.sigma, self.tau, self.alpha)

    def interior_grid(self) -> Grid:
        """The grid of unknowns: ``(resolution - 2)²`` interior nodes, spacing ``1/(resolution - 1)``."""
        return Grid((self.resolution - 2,) * 2, boundary="dirichlet")

    def field(self, key: PRNGKeyArray) -> Float[Array, "n n"]:
        """The Gaussian field ``z`` on all ``resolution²`` nodes."""
        if self.coefficient_basis == "cosine":
            shape = (self.resolution, self.resolution)
            return NeumannGaussianField(shape, jnp.float32(self.sigma), self.tau, self.alpha).sample(key)
        grid = self.interior_grid()
        sigma = jnp.asarray(self.sigma, jnp.float32)
        interior = GaussianRandomField(grid, sigma, self.tau, self.alpha).sample(key)
        return jnp.pad(interior, 1)

    def coefficient(self, key: PRNGKeyArray) -> Float[Array, "n n"]:
        """``a`` on all ``resolution²`` nodes."""
        return thresholded(self.field(key), self.high, self.low, self.threshold)

    def solve(self, coefficient: Float[Array, "n n"]) -> Float[Array, "n n"]:
        """``u`` on all nodes (zero on the boundary) for ``a`` given on all nodes."""
        grid = self.interior_grid()
        interior = coefficient[1:-1, 1:-1]
        if self.solver in ("gmg", "cg"):
            # rtol=0: reference data, "to working precision" (Darcy.solve's float32 default,
            # rtol=1e-5, is tuned for gradients, not for data).
            if self.solver == "gmg":
                # Imported here: the preconditioners sit above the data layer.
                from ..preconditioners._multigrid import GeometricMultigrid

                preconditioner = GeometricMultigrid()
            else:
                preconditioner = Jacobi()
            u = Darcy(source=self.source).solve(grid, interior, rtol=0.0, preconditioner=preconditioner)
        else:
            # The stencil operator's own sparse export — the matrix the CG path applies — solved
            # exactly on the host, so the two solvers differ only by CG's stopping error.
            matrix = DiffusionOperator(grid, interior).to_sparse().matrix
            u = jax.pure_callback(
                lambda values, indices: _direct_solve_host(values, indices, self.source, grid.shape),
                jax.ShapeDtypeStruct(grid.shape, jnp.float32),
                matrix.data,
                matrix.indices,
                vmap_method="expand_dims",
            )
        return jnp.pad(u, 1)

    def sample(self, key: PRNGKeyArray) -> dict[str, Array]:
        a = self.coefficient(key)
        u = self.solve(a)
        axes = (-2, -1)
        return {
            "coefficient": subsample(a, self.subsample, axes=axes, closed=True),
            "solution": subsample(u, self.subsample, axes=axes, closed=True),
        }

    def coordinates(self) -> dict[str, np.ndarray]:
        s = coarse_size(self.resolution, self.subsample, closed=True)
        x = (np.arange(s) / (s - 1)).astype(np.float32)
        return {"x": x, "y": x.copy()}
