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

- ``"gmg"`` (default): float32 CG preconditioned by geometric multigrid
  (`jaxpde.numerics.multigrid.GeometricMultigrid`: a symmetric V-cycle with Galerkin coarse
  operators, built once per sample), vmapped over a chunk, on any backend. A first solve to
  ``rtol = 1e-3`` is followed by `refinement` sweeps (default 1) of iterative refinement with
  **float-float residuals** (`jaxpde.numerics.refinement`: ``r = b - A u`` exact to ``O(ε₃₂²)``
  from float32 arithmetic alone, the correction solved by the same multigrid-PCG to
  ``rtol = 1e-2``, ``u`` held as a float32 pair and rounded at the end) — no float64, so TPUs
  too. With ``refinement = 0`` there is one solve "to working precision" instead (CG stops when
  the true residual stagnates). Measured at ``253²`` (`benchmarks/darcy_dataset_generation.py`,
  48 samples): both give the float32 rounding of the exact solution (relative L2 from the
  direct solve at most ``2.9e-8`` refined, ``3.3e-8`` unrefined), the refined path in fewer CG
  iterations: ``0.12×`` SuperLU's time per sample (``0.16×`` unrefined).
- ``"cg"``: the same with Jacobi preconditioning (the default before multigrid): hundreds of
  iterations, ``0.8×`` SuperLU's time per sample on a CPU; relative L2 ``4e-7`` at most (one
  sweep contracts Jacobi-PCG's error less).
- ``"direct"``: SuperLU (`scipy.sparse.linalg.spsolve`) in float64 on the host, through
  `jax.pure_callback`, of the very matrix the CG paths apply: the flux form of
  `DiffusionOperator.mv` with its float32 face weights ``w_f = a_f/h²`` — off-diagonal entries
  ``-w_f``, the diagonal ``Σ_f w_f`` summed in float64 — so the solvers differ only by the
  iterative solvers' error. Exact to float64 rounding for that matrix, stored as float32; host
  only, one sample at a time. (It solved the operator's sparse export before, whose diagonal is
  that sum *rounded to float32*: a different matrix, whose solution lies ``3e-6`` (median) to
  ``1.2e-5`` (max) from this one at ``253²`` — all of the difference once measured between the
  multigrid path and the direct solve.)

The solver and `refinement` are part of the config (and of its fingerprint): they give
different float32 roundings of the same solution, so a cache written with ``solver="cg"``, or
before `refinement` existed, is not reused.

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
import functools as ft
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse.linalg as sparse_linalg
from jaxtyping import Array, Float, PRNGKeyArray
from scipy import sparse

from ..grids import Grid
from ..numerics.krylov import ConjugateGradient
from ..numerics.multigrid import GeometricMultigrid
from ..numerics.preconditioning import Jacobi
from ..numerics.refinement import diffusion_residual, refine
from ..pdes.elliptic import Darcy
from ..random_fields import GaussianRandomField, NeumannGaussianField, thresholded
from ._config import DatasetConfig
from ._resolution import coarse_size, subsample

__all__ = ["DarcyConfig"]

_SOLVERS = ("gmg", "cg", "direct")
_BASES = ("cosine", "sine")
# Refinement: a first multigrid-PCG solve to 1e-3, then corrections to 1e-2 each (the error
# contracts by about that factor per sweep, down to the float-float residual's accuracy).
_FIRST_RTOL, _CORRECTION_RTOL = 1e-3, 1e-2


def _flux_form_matrix(wx: np.ndarray, wy: np.ndarray) -> sparse.csc_matrix:
    """The float64 matrix of the 2-D Dirichlet flux form ``(A u)_i = Σ_f w_f (u_i - u_j(f))``.

    `wx`, `wy` are the float32 face weights of `DiffusionOperator` (``(n₀+1, n₁)`` and
    ``(n₀, n₁+1)``); the diagonal is their exact (float64) sum, wall faces included.
    """
    wx, wy = np.asarray(wx, np.float64), np.asarray(wy, np.float64)
    shape = (wx.shape[0] - 1, wx.shape[1])
    index = np.arange(shape[0] * shape[1]).reshape(shape)
    diagonal = wx[1:] + wx[:-1] + wy[:, 1:] + wy[:, :-1]
    rows, cols, values = [index.ravel()], [index.ravel()], [diagonal.ravel()]
    for left, right, face in ((index[:-1], index[1:], wx[1:-1]), (index[:, :-1], index[:, 1:], wy[:, 1:-1])):
        rows += [left.ravel(), right.ravel()]
        cols += [right.ravel(), left.ravel()]
        values += [-face.ravel(), -face.ravel()]
    size = index.size
    return sparse.csc_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size))


def _direct_solve_host(wx: np.ndarray, wy: np.ndarray, source: float) -> np.ndarray:
    """SuperLU solves in float64 of the flux-form matrices; leading axes of the weights are a batch."""
    wx, wy = np.asarray(wx), np.asarray(wy)
    batch = wx.shape[:-2]
    shape = (wx.shape[-2] - 1, wx.shape[-1])
    out = np.empty((*batch, *shape), np.float32)
    for b in np.ndindex(*batch):
        matrix = _flux_form_matrix(wx[b], wy[b])
        out[b] = sparse_linalg.spsolve(matrix, np.full(matrix.shape[0], source, np.float64)).reshape(shape)
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
    - `refinement`: sweeps of float-float iterative refinement after a first ``"gmg"``/``"cg"``
      solve to ``rtol = 1e-3`` (default 1; 0: one solve to working precision instead). Ignored
      by ``"direct"``.
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
    refinement: int = 1

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
        refinement_ok = isinstance(self.refinement, int) and not isinstance(self.refinement, bool)
        self._check(refinement_ok and self.refinement >= 0, "refinement", "a non-negative int (sweeps)", self.refinement)
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
        pde = Darcy(source=self.source)
        operator = pde.operator(grid, interior)
        if self.solver == "direct":
            # The flux-form matrix the CG paths apply, solved exactly on the host, so the solvers
            # differ only by the iterative solvers' error.
            u = jax.pure_callback(
                lambda wx, wy: _direct_solve_host(wx, wy, self.source),
                jax.ShapeDtypeStruct(grid.shape, jnp.float32),
                *operator.weights,
                vmap_method="expand_dims",
            )
            return jnp.pad(u, 1)
        # M is built once per sample and shared by the first solve and every correction.
        preconditioner = (GeometricMultigrid() if self.solver == "gmg" else Jacobi())(operator)
        if self.refinement == 0:
            # rtol=0: "to working precision" (Darcy.solve's float32 default, rtol=1e-5, is tuned
            # for gradients, not for data).
            u = pde.solve(grid, interior, rtol=0.0, preconditioner=preconditioner)
        else:

            def cg(rtol):
                # Stagnation at the float32 floor counts as success: the refinement removes it.
                return ConjugateGradient(rtol=rtol, preconditioner=preconditioner, accept_stagnation=True)

            u0 = pde.solve(grid, interior, solver=cg(_FIRST_RTOL))
            correct = lambda r: Darcy(source=r).solve(grid, interior, solver=cg(_CORRECTION_RTOL))  # noqa: E731
            b = jnp.full(grid.shape, self.source, jnp.float32)
            u = refine(ft.partial(diffusion_residual, operator), correct, b, self.refinement, x0=u0).value
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
