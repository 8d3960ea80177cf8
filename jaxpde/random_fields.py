r"""Random fields: Gaussian ``N(0, σ²(−Δ + τ²I)^{−α})`` (Fourier, sine, cosine), thresholded, lognormal.

**The samplers.** Every sampler is an `AbstractRandomField`: an equinox module with a `shape`
and ``sample(key)``, one field per key (same key, same field; `jax.vmap` over keys for a batch).
The Gaussian ones (`AbstractGaussianField`) also give their exact `pointwise_variance`, from
which the derived fields' moments follow in closed form:

- `GaussianRandomField` — periodic (Fourier) or Dirichlet (sine) grids, below;
- `NeumannGaussianField` — the cosine (Neumann-Laplacian) series on a node grid that includes
  the boundary, the basis of the FNO-paper Darcy generator;
- `ThresholdedField` — two-phase coefficients ``a = high·1[g ≥ t] + low·1[g < t]``;
- `LognormalField` — ``a = exp(γ g)``, positive and smooth, with
  ``E a(x) = exp(γ² Var g(x) / 2)``.

A new sampler subclasses `AbstractRandomField` (or `AbstractGaussianField`) and provides
`shape` and `sample`.

**The field.** Let ``φ_k`` be the ``L²``-orthonormal eigenfunctions of ``−Δ`` on the box ``D``
with the grid's boundary condition, ``−Δφ_k = |k|² φ_k``. The covariance operator
``C = σ²(−Δ + τ²I)^{−α}`` has the same eigenfunctions and eigenvalues

$$λ_k = σ^2\,(|k|^2 + τ^2)^{-α},$$

and a sample is the Karhunen–Loève series ``u = Σ_k \sqrt{λ_k}\, ξ_k φ_k`` with i.i.d.
``ξ_k ~ N(0, 1)``, truncated to the modes the grid resolves. Then ``E⟨u, f⟩⟨u, g⟩ = ⟨f, C g⟩``.

- **Periodic grids** (Fourier basis ``φ_k = e^{ik·x}/\sqrt{|D|}``, ``k_i = 2πm_i/L_i``, from
  `Grid.wavenumbers`): the mean mode ``k = 0`` is set to zero, as in the FNO-paper generator,
  so every sample has spatial mean exactly zero (and ``τ = 0`` is allowed). The Fourier
  coefficients ``\hat u_k = \mathrm{fft}(u)_k / N`` then satisfy ``E|\hat u_k|^2 = λ_k/|D|``.
  Sampling costs one ``rfftn`` of white noise (which has exactly the Hermitian structure of a
  real field, Nyquist modes included) and one ``irfftn``.
- **Dirichlet grids** (sine basis ``φ_m = Π_i \sqrt{2/L_i}\,\sin(π m_i (x_i - o_i)/L_i)``,
  ``|k|² = Σ_i (π m_i/L_i)²``, ``m_i = 1..N_i``): every sample vanishes on the boundary. All
  eigenvalues of the Dirichlet Laplacian are positive, so there is no mean mode to drop. The
  sine series is evaluated at the interior nodes with the type-I DST
  (`jaxpde.numerics.spectral.sine_transform`, an FFT of the odd extension — `scipy.fft.dst`
  cannot be traced).

On both grids the discrete field is ``u = Σ_k \sqrt{λ_k/h^d}\, ξ_k e_k`` with ``e_k`` the
orthonormal grid vectors of the basis and ``h^d`` = `Grid.cell_volume`: the covariance matrix
is ``C`` restricted to the resolved modes, in the quadrature inner product of the grid.

**Smoothness.** The pointwise variance ``Σ_k λ_k / |D|`` of the continuum field is finite iff
``α > d/2`` (``C`` is then trace class and samples are functions; for ``α > d/2 + s`` they have
``s`` derivatives in the Sobolev sense). On a grid the sum is finite for any ``α``, so we only
require ``α > 0`` (a covariance that decays with ``|k|``); for ``α ≤ d/2`` the grid variance
grows without bound under refinement and there is no resolution-independent field.

**FNO-paper parameters** (Li et al., "Fourier Neural Operator for Parametric PDEs", ICLR 2021):

====================  ==============================  =====  =====  =====  ============
dataset               paper's law                     σ      τ      α      grid
====================  ==============================  =====  =====  =====  ============
Burgers ``u0``        N(0, 625(−Δ+25I)^−2)            25     5      2      periodic 1D
Darcy ``z``           N(0, (−Δ+9I)^−2), thresholded   1      3      2      (0,1)² box
NS vorticity ``w0``   N(0, 7^{3/2}(−Δ+49I)^−2.5)      7^1.5  7      2.5    periodic 2D
====================  ==============================  =====  =====  =====  ============

For Navier–Stokes the paper's "7^{3/2}" is the factor multiplying the *square roots* of the
eigenvalues in its generator (whose default is ``σ = τ^{(2α−d)/2} = 7^{1.5}``), so here
``σ = 7^{1.5}``. The paper's reference generator also differs in overall normalisation: it
takes the real part of a complex Gaussian draw scaled by ``\sqrt 2``, which gives fields with
twice the variance of ``N(0, C)`` — pass ``sigma * 2**0.5`` to match its amplitude. The
thresholded Darcy coefficient is insensitive to any overall scale. (The paper's Darcy
generator uses a cosine series; `GaussianRandomField` on a Dirichlet grid uses the sine series
of the Dirichlet Laplacian instead.)

References: Lord, Powell & Shardlow, *An Introduction to Computational Stochastic PDEs* (2014),
ch. 6–7 (spectral sampling of random fields); Lindgren, Rue & Lindström (2011) on the
``(τ² − Δ)^{α}`` (Matérn/SPDE) family.
"""

# No `from __future__ import annotations` here: `AbstractRandomField` declares an
# `eqx.AbstractVar`, which equinox only recognises as a real annotation, not a string.
import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Real

from .grids import Grid
from .numerics.spectral import sine_transform

__all__ = [
    "AbstractRandomField",
    "AbstractGaussianField",
    "GaussianRandomField",
    "NeumannGaussianField",
    "ThresholdedField",
    "LognormalField",
    "thresholded",
]


def _parameter(value, name: str, owner: str, *, allow_zero: bool) -> Array:
    """`value` as a float scalar array, checked finite and positive (or ``>= 0``).

    Checks in Python when the value is concrete; when it is traced (e.g. a module built inside
    `jax.vmap` or `jax.grad` over hyperparameters) the check becomes an `eqx.error_if`.
    """
    value = jnp.asarray(value)
    if value.ndim != 0:
        raise ValueError(f"{owner}: `{name}` must be a scalar, got shape {value.shape}.")
    if not jnp.issubdtype(value.dtype, jnp.floating):
        value = value.astype(jnp.result_type(float))
    bound = "non-negative" if allow_zero else "positive"
    message = f"{owner}: `{name}` must be finite and {bound}"
    if isinstance(value, jax.core.Tracer):
        bad = ~jnp.isfinite(value) | ((value < 0) if allow_zero else (value <= 0))
        return eqx.error_if(value, bad, message + ".")
    concrete = float(value)
    if not math.isfinite(concrete) or concrete < 0 or (concrete == 0 and not allow_zero):
        raise ValueError(f"{message}, got {concrete!r}.")
    return value


class AbstractRandomField(eqx.Module):
    """Base class of the field samplers: a `shape` and ``sample(key) -> field of that shape``.

    ``sample`` must be a pure function of the key (it is vmapped and jit-compiled by the
    dataset generators). Batches are ``jax.vmap(field.sample)(jax.random.split(key, n))``.
    """

    shape: eqx.AbstractVar[tuple[int, ...]]

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray) -> Float[Array, "*shape"]:
        """One field of shape `shape`; same key, same field."""


class AbstractGaussianField(AbstractRandomField):
    """A centred Gaussian field that knows its exact pointwise variance ``Var g(x_j)``."""

    @abc.abstractmethod
    def pointwise_variance(self) -> Float[Array, "*shape"]:
        """``Var g(x_j)`` at every point of `shape`, exactly (for the truncated series sampled)."""


class GaussianRandomField(AbstractGaussianField):
    r"""Sampler of the Gaussian random field ``N(0, σ²(−Δ + τ²I)^{−α})`` on a `Grid`.

    See the module docstring for the maths, the boundary handling and the FNO-paper values.

    **Arguments:**

    - `grid`: a periodic grid (Fourier series, mean mode zeroed) or a Dirichlet grid (sine
      series, zero on the boundary).
    - `sigma`: ``σ > 0``, the amplitude: the covariance is proportional to ``σ²``.
    - `tau`: ``τ >= 0``, the inverse correlation length: wavelengths longer than ``~2π/τ``
      have roughly equal variance. ``τ = 0`` is allowed because the operator is then still
      invertible on the modes that are sampled (no mean mode on either grid kind).
    - `alpha`: ``α > 0``, the smoothness; ``α > d/2`` for a field with a continuum limit.

    The hyperparameters are stored as scalar arrays, so they can be traced and differentiated
    (e.g. ``jax.grad`` of a loss of ``GaussianRandomField(grid, s, t, a).sample(key)``
    with respect to ``t``).

    Example: the Burgers initial condition of the FNO paper on 1024 points::

        grf = GaussianRandomField(Grid(1024), sigma=25.0, tau=5.0, alpha=2.0)
        u0 = jax.vmap(grf.sample)(jax.random.split(key, 1000))   # (1000, 1024)
    """

    grid: Grid
    sigma: Float[Array, ""]
    tau: Float[Array, ""]
    alpha: Float[Array, ""]

    def __init__(self, grid: Grid, sigma: Real[ArrayLike, ""], tau: Real[ArrayLike, ""], alpha: Real[ArrayLike, ""]):
        if not isinstance(grid, Grid):
            raise TypeError(f"GaussianRandomField: `grid` must be a jaxpde.Grid, got {type(grid).__name__}.")
        self.grid = grid
        self.sigma = _parameter(sigma, "sigma", "GaussianRandomField", allow_zero=False)
        self.tau = _parameter(tau, "tau", "GaussianRandomField", allow_zero=True)
        self.alpha = _parameter(alpha, "alpha", "GaussianRandomField", allow_zero=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.grid.shape

    @property
    def dtype(self):
        return jnp.result_type(self.sigma, self.tau, self.alpha)

    def _laplacian_eigenvalues(self, real: bool) -> tuple[Array, Array]:
        """``|k|²`` per mode and a mask of the modes that are sampled (all but the periodic mean)."""
        grid = self.grid
        if grid.boundary == "periodic":
            k2 = sum(k.astype(self.dtype) ** 2 for k in grid.wavenumbers(real=real))
            return k2, k2 > 0
        # Dirichlet: sin(π m x / L), m = 1..N, has −Δ-eigenvalue (π m / L)².
        k2 = 0
        for axis, (n, length) in enumerate(zip(grid.shape, grid.lengths)):
            shape = [1] * grid.ndim
            shape[axis] = n
            k = (jnp.pi / length) * jnp.arange(1, n + 1, dtype=self.dtype)
            k2 = k2 + (k**2).reshape(shape)
        return k2, jnp.ones_like(k2, dtype=bool)

    def _sqrt_eigenvalues(self, real: bool) -> Float[Array, "..."]:
        """``σ (|k|² + τ²)^{−α/2}`` per mode, zero on the dropped mean mode."""
        k2, sampled = self._laplacian_eigenvalues(real)
        # A safe base keeps 0^(−α/2) (τ = 0, mean mode) and its gradient out of the computation.
        base = jnp.where(sampled, k2 + self.tau**2, 1)
        return jnp.where(sampled, self.sigma * base ** (-self.alpha / 2), 0)

    def covariance_eigenvalues(self) -> Float[Array, "*shape"]:
        r"""The eigenvalues ``λ_k = σ²(|k|² + τ²)^{−α}`` of the sampled covariance, one per mode.

        Periodic grids: in `jnp.fft.fftn` layout (index ``m_i`` at position ``m_i mod N_i``), with
        ``λ_0 = 0`` for the dropped mean. Dirichlet grids: index ``m_i − 1`` holds the mode
        ``sin(π m_i x/L_i)``, ``m_i = 1..N_i``. Shape ``grid.shape`` in both cases.
        """
        return self._sqrt_eigenvalues(real=False) ** 2

    def pointwise_variance(self) -> Float[Array, "*shape"]:
        r"""``Var u(x_j)`` at every grid point, exactly, for the grid-truncated field.

        Periodic: the constant ``Σ_k λ_k / |D|`` (the field is stationary). Dirichlet:
        ``Σ_m λ_m Π_i (2/L_i) \sin^2(π m_i j_i/(N_i+1))``, which vanishes towards the boundary.
        """
        eigenvalues = self.covariance_eigenvalues()
        grid = self.grid
        if grid.boundary == "periodic":
            volume = math.prod(grid.lengths)
            return jnp.full(grid.shape, jnp.sum(eigenvalues) / volume, dtype=self.dtype)
        variance = eigenvalues
        for axis, (n, length) in enumerate(zip(grid.shape, grid.lengths)):
            j = np.arange(1, n + 1)
            # Squared basis functions at the nodes: rows are points j, columns modes m.
            squares = jnp.asarray((2 / length) * np.sin(np.pi * np.outer(j, j) / (n + 1)) ** 2, dtype=self.dtype)
            variance = jnp.moveaxis(jnp.tensordot(squares, variance, axes=([1], [axis])), 0, axis)
        return variance

    @eqx.filter_jit
    def sample(self, key: PRNGKeyArray) -> Float[Array, "*shape"]:
        """One sample on the grid, shape ``grid.shape``. Same key, same sample; vmap for batches."""
        grid = self.grid
        # λ/h^d: the KL coefficient per orthonormal *grid* vector (see the module docstring).
        scale = self._sqrt_eigenvalues(real=grid.boundary == "periodic") / math.sqrt(grid.cell_volume)
        noise = jax.random.normal(key, grid.shape, dtype=self.dtype)
        axes = tuple(range(grid.ndim))
        if grid.boundary == "periodic":
            # rfftn/√N of white noise is complex white noise with a real field's Hermitian symmetry.
            coefficients = scale * jnp.fft.rfftn(noise, axes=axes, norm="ortho")
            return jnp.fft.irfftn(coefficients, s=grid.shape, axes=axes, norm="ortho").astype(self.dtype)
        return sine_transform(scale * noise, axes=axes, norm="ortho")


def thresholded(
    field: Float[ArrayLike, "*shape"],
    high: float = 12.0,
    low: float = 3.0,
    threshold: float = 0.0,
) -> Float[Array, "*shape"]:
    r"""The two-phase coefficient ``a = high`` where ``field >= threshold``, ``low`` elsewhere.

    With the defaults this is the FNO-paper Darcy coefficient: ``a = 12`` where ``z >= 0`` and
    ``3`` where ``z < 0``, for ``z ~ N(0, (−Δ + 9I)^{−2})``. Piecewise constant, so not
    differentiable in `field` (the gradient is zero almost everywhere).
    """
    field = jnp.asarray(field)
    if not jnp.issubdtype(field.dtype, jnp.floating):
        raise TypeError(f"thresholded: `field` must be a real floating array, got dtype {field.dtype}.")
    for name, value in (("high", high), ("low", low), ("threshold", threshold)):
        if isinstance(value, (int, float, np.number)) and not math.isfinite(value):
            raise ValueError(f"thresholded: `{name}` must be finite, got {value!r}.")
    return jnp.where(field >= threshold, jnp.asarray(high, field.dtype), jnp.asarray(low, field.dtype))


class NeumannGaussianField(AbstractGaussianField):
    r"""``N(0, σ²(−Δ_N + τ²I)^{−α})`` by its cosine series, on a node grid that includes the boundary.

    ``−Δ_N`` is the Laplacian of the box ``∏_i [0, L_i]`` with Neumann boundary conditions:
    orthonormal eigenfunctions ``φ_m(x) = ∏_i c_{m_i} \cos(π m_i x_i / L_i) / \sqrt{L_i}``
    (``c_0 = 1``, ``c_m = √2``), eigenvalues ``Σ_i (π m_i / L_i)²``. The Karhunen–Loève series

    $$g(x) = \sum_{m \ne 0} \sqrt{λ_m}\, ξ_m φ_m(x), \qquad λ_m = σ^2\Big(\sum_i (π m_i/L_i)^2 + τ^2\Big)^{-α},$$

    truncated to ``m_i < n_i`` with the constant mode dropped (a mean-zero field, as in the
    FNO-paper Darcy generator, whose basis this is), is evaluated at the nodes
    ``x_j = j L_i/(n_i - 1)``, ``j = 0, …, n_i - 1`` — boundary nodes included, where the field
    is as random as inside (unlike the sine series of `GaussianRandomField` on a Dirichlet grid,
    which vanishes there). Cost: one dense ``n_i × n_i`` product per axis (highest precision,
    so that TPUs do not round the series to bfloat16).

    Then ``Var g(x_j) = Σ_m λ_m φ_m(x_j)²`` exactly (`pointwise_variance`), and
    ``E[g(x)g(y)] = Σ_m λ_m φ_m(x) φ_m(y)``.

    **Arguments:**

    - `shape`: nodes per axis, boundary included (each ``>= 2``); 1 to 3 axes.
    - `sigma`, `tau`, `alpha`: as in `GaussianRandomField` (``σ > 0``, ``τ >= 0``, ``α > 0``).
    - `lengths`: side lengths ``L_i`` of the box (default ``1``).
    """

    node_shape: tuple[int, ...] = eqx.field(static=True)
    lengths: tuple[float, ...] = eqx.field(static=True)
    sigma: Float[Array, ""]
    tau: Float[Array, ""]
    alpha: Float[Array, ""]

    def __init__(
        self,
        shape: int | tuple[int, ...],
        sigma: Real[ArrayLike, ""],
        tau: Real[ArrayLike, ""],
        alpha: Real[ArrayLike, ""],
        lengths: float | tuple[float, ...] = 1.0,
    ):
        owner = "NeumannGaussianField"
        # Grid's own checks of shape and lengths (a node grid of n nodes spans n - 1 cells).
        grid = Grid(shape, lengths)
        self.node_shape = grid.shape
        self.lengths = grid.lengths
        self.sigma = _parameter(sigma, "sigma", owner, allow_zero=False)
        self.tau = _parameter(tau, "tau", owner, allow_zero=True)
        self.alpha = _parameter(alpha, "alpha", owner, allow_zero=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.node_shape

    @property
    def dtype(self):
        return jnp.result_type(self.sigma, self.tau, self.alpha)

    def nodes(self) -> tuple[np.ndarray, ...]:
        """The node coordinates ``j L/(n - 1)`` per axis."""
        return tuple(np.arange(n) * (length / (n - 1)) for n, length in zip(self.node_shape, self.lengths))

    def _bases(self) -> tuple[np.ndarray, ...]:
        """Per axis the ``n × n`` matrix ``φ_m(x_j)`` (rows nodes ``j``, columns modes ``m``), float64."""
        out = []
        for n, length, x in zip(self.node_shape, self.lengths, self.nodes()):
            m = np.arange(n)
            out.append(np.cos(np.pi * np.outer(x, m) / length) * np.where(m == 0, 1.0, math.sqrt(2.0)) / math.sqrt(length))
        return tuple(out)

    def covariance_eigenvalues(self) -> Float[Array, "*shape"]:
        """``λ_m`` for ``m_i = 0, …, n_i - 1`` (index ``m``), with ``λ_0 = 0`` for the dropped constant."""
        k2 = 0
        for axis, (n, length) in enumerate(zip(self.node_shape, self.lengths)):
            shape = [1] * len(self.node_shape)
            shape[axis] = n
            k = (jnp.pi / length) * jnp.arange(n, dtype=self.dtype)
            k2 = k2 + (k**2).reshape(shape)
        sampled = k2 > 0
        base = jnp.where(sampled, k2 + self.tau**2, 1)  # keeps 0^(−α) out of the computation
        return jnp.where(sampled, self.sigma**2 * base ** (-self.alpha), 0)

    def pointwise_variance(self) -> Float[Array, "*shape"]:
        variance = self.covariance_eigenvalues()
        for axis, basis in enumerate(self._bases()):
            squares = jnp.asarray(basis**2, self.dtype)
            variance = jnp.moveaxis(jnp.tensordot(squares, variance, axes=([1], [axis])), 0, axis)
        return variance

    def sample(self, key: PRNGKeyArray) -> Float[Array, "*shape"]:
        """One field on the nodes, shape `shape`."""
        coefficients = jnp.sqrt(self.covariance_eigenvalues()) * jax.random.normal(key, self.node_shape, self.dtype)
        for axis, basis in enumerate(self._bases()):
            basis = jnp.asarray(basis, self.dtype)
            coefficients = jnp.moveaxis(
                jnp.tensordot(basis, coefficients, axes=([1], [axis]), precision=jax.lax.Precision.HIGHEST), 0, axis
            )
        return coefficients


class ThresholdedField(AbstractRandomField):
    r"""Sampler of piecewise-constant coefficients: a thresholded `GaussianRandomField`.

    ``sample(key) = thresholded(field.sample(key), high, low, threshold)``. For a centred field
    and ``threshold = 0`` each phase occupies half the domain on average (the law of ``u`` is
    that of ``−u``); raising `threshold` shrinks the ``high`` phase.

    Example: the FNO-paper Darcy coefficient on the 421² interior grid of the unit square::

        grid = Grid((421, 421), boundary="dirichlet")
        a = ThresholdedField(GaussianRandomField(grid, 1.0, 3.0, 2.0)).sample(key)
    """

    field: AbstractRandomField
    high: float = eqx.field(static=True)
    low: float = eqx.field(static=True)
    threshold: float = eqx.field(static=True)

    def __init__(self, field: AbstractRandomField, high: float = 12.0, low: float = 3.0, threshold: float = 0.0):
        if not isinstance(field, AbstractRandomField):
            raise TypeError(
                "ThresholdedField: `field` must be a jaxpde.random_fields.AbstractRandomField (e.g. a "
                f"GaussianRandomField), got {type(field).__name__}."
            )
        for name, value in (("high", high), ("low", low), ("threshold", threshold)):
            if not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
                raise ValueError(f"ThresholdedField: `{name}` must be a finite number, got {value!r}.")
        self.field = field
        self.high = float(high)
        self.low = float(low)
        self.threshold = float(threshold)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.field.shape

    @property
    def grid(self) -> Grid:
        return self.field.grid

    def sample(self, key: PRNGKeyArray) -> Float[Array, "*shape"]:
        """One two-phase coefficient field, shape `shape`."""
        return thresholded(self.field.sample(key), self.high, self.low, self.threshold)


class LognormalField(AbstractRandomField):
    r"""Sampler of lognormal coefficients ``a = exp(γ g)`` of a centred Gaussian field ``g``.

    A positive, continuous coefficient whose log is Gaussian — the standard model of a random
    permeability (e.g. Cliffe, Giles, Scheichl & Teckentrup, Comput. Visual. Sci. 14 (2011), the
    multilevel Monte Carlo Darcy benchmark). Pointwise, with ``v(x) = Var g(x)``,

    $$E\,a(x) = e^{γ^2 v(x)/2}, \qquad \operatorname{Var} a(x) = ig(e^{γ^2 v(x)} - 1ig)\, e^{γ^2 v(x)},$$

    (`mean`, `pointwise_variance`), and the contrast ``max a / min a`` grows like
    ``exp(2γ max|g|)`` — large ``γ`` makes a high-contrast problem (the preconditioner tests'
    regime). Differentiable in ``γ`` and in the field's hyperparameters.

    **Arguments:**

    - `field`: an `AbstractGaussianField` (`GaussianRandomField`, `NeumannGaussianField`).
    - `gamma`: ``γ``, finite (``γ = 0`` gives ``a ≡ 1``).
    """

    field: AbstractGaussianField
    gamma: Float[Array, ""]

    def __init__(self, field: AbstractGaussianField, gamma: Real[ArrayLike, ""] = 1.0):
        if not isinstance(field, AbstractGaussianField):
            raise TypeError(
                "LognormalField: `field` must be a jaxpde.random_fields.AbstractGaussianField (e.g. a "
                f"GaussianRandomField), got {type(field).__name__}."
            )
        gamma = jnp.asarray(gamma)
        if gamma.ndim != 0:
            raise ValueError(f"LognormalField: `gamma` must be a scalar, got shape {gamma.shape}.")
        if not jnp.issubdtype(gamma.dtype, jnp.floating):
            gamma = gamma.astype(jnp.result_type(float))
        if isinstance(gamma, jax.core.Tracer):
            gamma = eqx.error_if(gamma, ~jnp.isfinite(gamma), "LognormalField: `gamma` must be finite.")
        elif not math.isfinite(float(gamma)):
            raise ValueError(f"LognormalField: `gamma` must be finite, got {float(gamma)!r}.")
        self.field = field
        self.gamma = gamma

    @property
    def shape(self) -> tuple[int, ...]:
        return self.field.shape

    def mean(self) -> Float[Array, "*shape"]:
        """``E a(x_j) = exp(γ² Var g(x_j) / 2)``, exactly."""
        return jnp.exp(0.5 * self.gamma**2 * self.field.pointwise_variance())

    def pointwise_variance(self) -> Float[Array, "*shape"]:
        """``Var a(x_j) = (exp(γ² v) − 1) exp(γ² v)``, ``v = Var g(x_j)``, exactly."""
        s2 = self.gamma**2 * self.field.pointwise_variance()
        return jnp.expm1(s2) * jnp.exp(s2)

    def sample(self, key: PRNGKeyArray) -> Float[Array, "*shape"]:
        """One positive coefficient field, shape `shape`."""
        g = self.field.sample(key)
        return jnp.exp(self.gamma.astype(g.dtype) * g)
