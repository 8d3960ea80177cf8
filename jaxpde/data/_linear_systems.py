r"""Families of SPD linear systems ``A x = b`` as dataset configs, for training and testing preconditioners.

A preconditioner is trained on *systems*, not on fields, so each config here is a
`jaxpde.data.DatasetConfig` whose ``sample(key)`` draws the arrays that define one system (a
coefficient field and a right-hand side, or a sparse factor's values), and which also turns a
sample into the system itself:

.. code-block:: python

    config = LognormalDiffusionConfig(size=64)
    sample = config.sample(key)                 # {"coefficient": (64, 64), "rhs": (64, 64)}
    operator, b = config.system(sample)         # a lineax operator and its right-hand side
    x = lx.linear_solve(operator, b, solver).value

Nothing is solved while generating, so a dataset of systems is cheap (`load_dataset` caches it
like any other). ``operator(sample)`` is traceable: under `jax.vmap` over samples it gives a
batch of operators, the form `jaxpde.training.fit` trains on.

**Grid families** — ``-∇·(a∇u) (+ σu) = f`` on the interior ``size²`` nodes of the unit square,
``u = 0`` on the boundary (spacing ``h = 1/(size + 1)``), the cell-centred 5-point operator with
harmonic-mean face conductivities (`jaxpde.numerics.stencils.DiffusionOperator`, matrix-free,
grid-shaped; ``.to_sparse()`` for its matrix). ``g`` below is a Gaussian field
``N(0, (−Δ + τ²I)^{−α})`` in the cosine (Neumann) series on the ``(size + 2)²`` nodes, as the
FNO-paper Darcy generator (`jaxpde.random_fields.NeumannGaussianField`), restricted to the
interior.

==============================  ==========================================================  ============================
config                          system                                                      what makes it hard
==============================  ==========================================================  ============================
`DarcySystemConfig`             ``a = 12`` where ``g ≥ 0``, else ``3``; ``f = 1``             jumps across random interfaces
`PoissonSystemConfig`           ``a = 1``; ``f`` a Dirichlet (sine) Gaussian field            κ ~ h⁻² only
`LognormalDiffusionConfig`      ``a = exp(γ ĝ)``, ``ĝ = g / sd(g)``; ``f = 1``                contrast ~ exp(2γ max|ĝ|)
`AnisotropicDiffusionConfig`    ``-∂_x(a∂_x u) − ε ∂_y(a∂_y u)``, ``log ε ~ U``, ``a``          strong coupling along x:
                                lognormal (γ small); ``f = 1``                               point smoothers stall
`HeatStepConfig`                ``(I + Δt K) u^{n+1} = u^n``, ``K = -∇·(a∇)``, ``a``           well conditioned for small
                                lognormal, ``u^n`` a sine Gaussian field                     ``Δt a/h²``: Jacobi suffices
==============================  ==========================================================  ============================

Stored arrays: ``"coefficient"`` (``(size, size)``; ``(2, size, size)`` — the x and y
conductivities — for the anisotropic family) and ``"rhs"`` (``(size, size)``).

**NeuralIF's synthetic matrices** (`SyntheticSPDConfig`; Häusner, Öktem & Sjölund, "Neural
incomplete factorization: learning preconditioners for the conjugate gradient method", TMLR
2024, §5.1): ``A = M Mᵀ + αI`` with ``M ∈ R^{n×n}`` sparse, ``nnz(M) = ρ n²`` entries at random
positions, values ``N(0, 1)``, ``α = 10⁻⁴``. With ``n = 10 000`` and ``ρ = 10⁻³`` (ten entries per
row of ``M``) ``A`` has about 1% nonzeros (about 10⁶ entries). Here the *pattern* of ``M`` is one
fixed draw from `pattern_seed` (so every sample's ``A`` has the same sparsity pattern and the
graph preconditioners compile once), and each sample draws ``M``'s values and a right-hand
side ``b ~ N(0, I)``. Stored arrays: ``"factor"`` (the ``nnz(M)`` values) and ``"rhs"``
(``(n,)``); ``operator(sample)`` forms ``A``'s entries ``Σ_k M_ik M_jk`` (a segment sum over the
pattern's products, differentiable in the values) as a `jaxpde.numerics.sparse.SparseOperator`
tagged SPD. The paper draws the positions anew per sample and ``α`` from a range; a fixed
pattern is what a graph network with static shapes wants.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jax.experimental import sparse as jsparse
from jaxtyping import Array, Float, PRNGKeyArray

from ..grids import Grid
from ..numerics.sparse import SparseOperator
from ..numerics.stencils import DiffusionOperator
from ..random_fields import GaussianRandomField, NeumannGaussianField, thresholded
from ._config import DatasetConfig

__all__ = [
    "LinearSystemConfig",
    "DarcySystemConfig",
    "PoissonSystemConfig",
    "LognormalDiffusionConfig",
    "AnisotropicDiffusionConfig",
    "HeatStepConfig",
    "SyntheticSPDConfig",
]

_SPD = frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})


@dataclasses.dataclass(frozen=True)
class LinearSystemConfig(DatasetConfig):
    """Base class of the linear-system families: a dataset config that also builds the system.

    A subclass provides `sample` (the stored arrays of one system) and `operator` (the lineax
    operator of a sample); `rhs` reads ``sample["rhs"]``.
    """

    @abc.abstractmethod
    def operator(self, sample: dict[str, Array]) -> lx.AbstractLinearOperator:
        """The system operator ``A`` of one (unbatched) sample; traceable, SPD-tagged."""

    def rhs(self, sample: dict[str, Array]) -> Array:
        """The right-hand side ``b`` of one sample, in the operator's input structure."""
        return sample["rhs"]

    def system(self, sample: dict[str, Array]) -> tuple[lx.AbstractLinearOperator, Array]:
        """``(A, b)`` of one sample."""
        return self.operator(sample), self.rhs(sample)


@dataclasses.dataclass(frozen=True)
class _GridSystemConfig(LinearSystemConfig):
    """A diffusion system on the interior ``size²`` nodes of the unit square (Dirichlet)."""

    size: int = 64
    tau: float = 3.0
    alpha: float = 2.0

    spatial_ndim: ClassVar[int] = 2
    closed_grid: ClassVar[bool] = False
    batch_size: ClassVar[int] = 16

    def validate(self) -> None:
        self._check(self.size >= 2, "size", "an integer >= 2 (interior nodes per side)", self.size)
        self._check(self.tau >= 0, "tau", "a float >= 0", self.tau)
        self._check(self.alpha > 0, "alpha", "a positive float", self.alpha)

    def grid(self) -> Grid:
        """The grid of unknowns: ``size²`` interior nodes, spacing ``1/(size + 1)``."""
        return Grid((self.size, self.size), boundary="dirichlet")

    def gaussian_field(self, key: PRNGKeyArray) -> Float[Array, "size size"]:
        """``g ~ N(0, (−Δ + τ²I)^{−α})``, cosine series on the ``(size+2)²`` nodes, interior values."""
        nodes = (self.size + 2, self.size + 2)
        return NeumannGaussianField(nodes, jnp.float32(1.0), self.tau, self.alpha).sample(key)[1:-1, 1:-1]

    def normalised_field(self, key: PRNGKeyArray) -> Float[Array, "size size"]:
        """``g`` divided by its exact pointwise standard deviation (unit variance at every node)."""
        nodes = (self.size + 2, self.size + 2)
        field = NeumannGaussianField(nodes, jnp.float32(1.0), self.tau, self.alpha)
        return (field.sample(key) / jnp.sqrt(field.pointwise_variance()))[1:-1, 1:-1]

    def operator(self, sample: dict[str, Array]) -> DiffusionOperator:
        return DiffusionOperator(self.grid(), sample["coefficient"])

    def coordinates(self) -> dict[str, np.ndarray]:
        x = (np.arange(1, self.size + 1) / (self.size + 1)).astype(np.float32)
        return {"x": x, "y": x.copy()}


@dataclasses.dataclass(frozen=True)
class DarcySystemConfig(_GridSystemConfig):
    """The FNO-paper Darcy 12/3 systems: ``a = high`` where ``g ≥ threshold``, else ``low``; ``f = source``.

    The coefficient is `jaxpde.data.DarcyConfig`'s (cosine field, ``τ = 3``, ``α = 2``) on a
    ``(size + 2)``-node grid, restricted to the interior: ``size = 63`` is the Darcy dataset's
    solve at ``resolution = 65``.
    """

    high: float = 12.0
    low: float = 3.0
    threshold: float = 0.0
    source: float = 1.0

    name: ClassVar[str] = "darcy-systems"

    def validate(self) -> None:
        super().validate()
        self._check(self.high > 0, "high", "positive (a is a conductivity)", self.high)
        self._check(self.low > 0, "low", "positive (a is a conductivity)", self.low)

    def sample(self, key: PRNGKeyArray) -> dict[str, Array]:
        a = thresholded(self.gaussian_field(key), self.high, self.low, self.threshold)
        return {"coefficient": a, "rhs": jnp.full_like(a, self.source)}


@dataclasses.dataclass(frozen=True)
class PoissonSystemConfig(_GridSystemConfig):
    """``-Δu = f``, ``f`` a Gaussian field ``N(0, σ²(−Δ + τ²I)^{−α})`` in the sine series (zero on the boundary)."""

    sigma: float = 1.0

    name: ClassVar[str] = "poisson-systems"

    def validate(self) -> None:
        super().validate()
        self._check(self.sigma > 0, "sigma", "a positive float", self.sigma)

    def sample(self, key: PRNGKeyArray) -> dict[str, Array]:
        f = GaussianRandomField(self.grid(), jnp.float32(self.sigma), self.tau, self.alpha).sample(key)
        return {"coefficient": jnp.ones_like(f), "rhs": f}


@dataclasses.dataclass(frozen=True)
class LognormalDiffusionConfig(_GridSystemConfig):
    """High-contrast diffusion: ``a = exp(γ ĝ)``, ``ĝ`` the unit-variance cosine field; ``f = source``.

    With ``γ = 2`` the contrast ``max a / min a`` over a 64² sample is typically ``10⁴–10⁶``
    (``exp(2γ max|ĝ|)``, ``max|ĝ| ≈ 3``).
    """

    gamma: float = 2.0
    source: float = 1.0

    name: ClassVar[str] = "lognormal-systems"

    def sample(self, key: PRNGKeyArray) -> dict[str, Array]:
        a = jnp.exp(jnp.float32(self.gamma) * self.normalised_field(key))
        return {"coefficient": a, "rhs": jnp.full_like(a, self.source)}


@dataclasses.dataclass(frozen=True)
class AnisotropicDiffusionConfig(_GridSystemConfig):
    """``-∂_x(a ∂_x u) − ε ∂_y(a ∂_y u) = f``: ``log ε`` uniform in ``[log ε_low, log ε_high]`` per sample.

    ``a = exp(γ ĝ)`` (mildly lognormal). Stored ``"coefficient"`` is ``(2, size, size)``: the
    conductivities along x and y, ``(a, ε a)``; each axis's faces take harmonic means of its own.
    """

    epsilon_low: float = 1e-3
    epsilon_high: float = 1e-1
    gamma: float = 0.5
    source: float = 1.0

    name: ClassVar[str] = "anisotropic-systems"

    def validate(self) -> None:
        super().validate()
        self._check(self.epsilon_low > 0, "epsilon_low", "a positive float", self.epsilon_low)
        self._check(self.epsilon_high >= self.epsilon_low, "epsilon_high", f">= epsilon_low = {self.epsilon_low}",
                    self.epsilon_high)

    def sample(self, key: PRNGKeyArray) -> dict[str, Array]:
        field_key, ratio_key = jax.random.split(key)
        a = jnp.exp(jnp.float32(self.gamma) * self.normalised_field(field_key))
        log_eps = jax.random.uniform(
            ratio_key, (), a.dtype, math.log(self.epsilon_low), math.log(self.epsilon_high)
        )
        return {"coefficient": jnp.stack([a, jnp.exp(log_eps) * a]), "rhs": jnp.full_like(a, self.source)}

    def operator(self, sample: dict[str, Array]) -> DiffusionOperator:
        grid = self.grid()
        along_x = DiffusionOperator(grid, sample["coefficient"][0])
        along_y = DiffusionOperator(grid, sample["coefficient"][1])
        # The face weights are per axis, so the x faces of one and the y faces of the other make the
        # anisotropic operator, still a (symmetric, definite) DiffusionOperator.
        return eqx.tree_at(lambda op: op.weights, along_x, (along_x.weights[0], along_y.weights[1]))


@dataclasses.dataclass(frozen=True)
class HeatStepConfig(_GridSystemConfig):
    """One implicit-Euler step of ``u_t = ∇·(a∇u)``: ``(I + Δt K) u^{n+1} = u^n``, ``a = exp(γ ĝ)``.

    ``I + Δt K`` is `DiffusionOperator` with coefficient ``Δt a`` and shift 1; ``u^n`` is a sine
    Gaussian field ``N(0, (−Δ + τ²I)^{−α})``. At ``size = 64`` and the default ``Δt = 10⁻³``,
    ``Δt a / h² ≈ 4`` where ``a ≈ 1``.
    """

    dt: float = 1e-3
    gamma: float = 1.0

    name: ClassVar[str] = "heat-step-systems"

    def validate(self) -> None:
        super().validate()
        self._check(self.dt > 0, "dt", "a positive float", self.dt)

    def sample(self, key: PRNGKeyArray) -> dict[str, Array]:
        field_key, state_key = jax.random.split(key)
        a = jnp.exp(jnp.float32(self.gamma) * self.normalised_field(field_key))
        u = GaussianRandomField(self.grid(), jnp.float32(1.0), self.tau, self.alpha).sample(state_key)
        return {"coefficient": a, "rhs": u}

    def operator(self, sample: dict[str, Array]) -> DiffusionOperator:
        a = sample["coefficient"]
        return DiffusionOperator(self.grid(), jnp.asarray(self.dt, a.dtype) * a, shift=1.0)


# ---- NeuralIF's synthetic SPD matrices ----------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _synthetic_pattern(size: int, density: float, pattern_seed: int):
    """The fixed pattern of ``M`` and of ``A = M Mᵀ + αI``, host-side.

    Returns ``(m_rows, m_cols, a_indices, left, right, entry)``: ``M``'s entry positions; ``A``'s
    ``(nnz_A, 2)`` indices (sorted by row, diagonal included); and the products that make ``A``:
    ``A[entry[p]] += M[left[p]] · M[right[p]]`` for every pair of ``M`` entries in one column.
    """
    rng = np.random.default_rng(pattern_seed)
    count = max(1, int(round(density * size * size)))
    flat = np.unique(rng.choice(size * size, size=count, replace=False))
    m_rows, m_cols = (flat // size).astype(np.int64), (flat % size).astype(np.int64)
    # Pairs of entries sharing a column k give A_ij += M_ik M_jk.
    by_column = np.argsort(m_cols, kind="stable")
    cols_sorted = m_cols[by_column]
    starts = np.searchsorted(cols_sorted, np.arange(size))
    counts = np.bincount(cols_sorted, minlength=size)
    # For entry e (in column order) pair it with every entry of its column.
    repeat = counts[cols_sorted]
    left = np.repeat(by_column, repeat)
    offsets = np.arange(left.size) - np.repeat(np.cumsum(repeat) - repeat, repeat)
    right = by_column[np.repeat(starts[cols_sorted], repeat) + offsets]
    pair_rows, pair_cols = m_rows[left], m_rows[right]
    diagonal = np.arange(size)
    keys = np.concatenate([pair_rows * size + pair_cols, diagonal * size + diagonal])
    unique, inverse = np.unique(keys, return_inverse=True)
    a_indices = np.stack([unique // size, unique % size], axis=1).astype(np.int32)
    entry = inverse[: left.size].astype(np.int32)
    diagonal_entry = inverse[left.size :].astype(np.int32)
    return m_rows, m_cols, a_indices, left.astype(np.int32), right.astype(np.int32), entry, diagonal_entry


@dataclasses.dataclass(frozen=True)
class SyntheticSPDConfig(LinearSystemConfig):
    """NeuralIF's synthetic systems ``A = M Mᵀ + αI`` (see the module docstring).

    **Fields** (besides `n_train`, `n_test`, `seed`):

    - `size`: ``n`` (paper: 10 000).
    - `density`: the fraction ``ρ`` of ``M``'s entries that are stored (paper: 10⁻³, so ``A`` is ~1% dense).
    - `shift`: ``α > 0`` (paper: 10⁻⁴).
    - `pattern_seed`: the seed of ``M``'s fixed pattern (the values come from each sample's key).
    """

    size: int = 10_000
    density: float = 1e-3
    shift: float = 1e-4
    pattern_seed: int = 0

    name: ClassVar[str] = "synthetic-spd"
    spatial_ndim: ClassVar[int] = 1
    closed_grid: ClassVar[bool] = False
    batch_size: ClassVar[int] = 8

    def validate(self) -> None:
        self._check(self.size >= 2, "size", "an integer >= 2", self.size)
        self._check(0 < self.density <= 1, "density", "in (0, 1]", self.density)
        self._check(self.shift > 0, "shift", "a positive float (A = M Mᵀ + shift·I must be definite)", self.shift)

    def pattern(self):
        """``(m_rows, m_cols, a_indices, …)``: the fixed patterns of ``M`` and ``A`` (NumPy, cached)."""
        return _synthetic_pattern(self.size, self.density, self.pattern_seed)

    @property
    def factor_nnz(self) -> int:
        """Stored entries of ``M``."""
        return len(self.pattern()[0])

    def sample(self, key: PRNGKeyArray) -> dict[str, Array]:
        factor_key, rhs_key = jax.random.split(key)
        return {
            "factor": jax.random.normal(factor_key, (self.factor_nnz,), jnp.float32),
            "rhs": jax.random.normal(rhs_key, (self.size,), jnp.float32),
        }

    def factor(self, sample: dict[str, Array]) -> SparseOperator:
        """``M`` as a `SparseOperator` (BCOO)."""
        m_rows, m_cols = self.pattern()[:2]
        indices = jnp.asarray(np.stack([m_rows, m_cols], axis=1).astype(np.int32))
        values = sample["factor"]
        return SparseOperator(jsparse.BCOO((values, indices), shape=(self.size, self.size)), layout="bcoo")

    def operator(self, sample: dict[str, Array]) -> SparseOperator:
        _, _, a_indices, left, right, entry, diagonal_entry = self.pattern()
        m = sample["factor"]
        values = jax.ops.segment_sum(m[left] * m[right], entry, num_segments=len(a_indices))
        values = values.at[diagonal_entry].add(jnp.asarray(self.shift, values.dtype))
        matrix = jsparse.BCOO((values, jnp.asarray(a_indices)), shape=(self.size, self.size))
        return SparseOperator(matrix, _SPD, layout="bcoo")

    def coordinates(self) -> dict[str, np.ndarray]:
        return {"x": np.arange(self.size, dtype=np.float32)}
