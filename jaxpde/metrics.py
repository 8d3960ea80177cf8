r"""Metrics for learned PDE solvers: field errors, spectra, rollout correlation, distances between distributions.

Every function is a pure `jax.numpy` function of arrays: it traces under `jax.jit` (integer
and tuple arguments such as `axes`, `lengths`, `projections` are static: close over them or
pass them as ``static_argnames``), batches under `jax.vmap` and differentiates.

**Axes convention.** The field metrics (`relative_l2`, `rmse`, `nrmse`, `pearson_correlation`)
take ``prediction`` and ``target`` of one shape and an `axes` argument: the axes that are
*reduced* — the spatial (and, if wanted, channel) axes of a field. The default ``None`` reduces
all of them, so one sample in gives a scalar out and ``jax.vmap`` batches, as everywhere in
jaxpde. The axes not reduced (batch, time, channel) are kept, in order, in the result:
``relative_l2(p, t, axes=(1, 2))`` on ``(batch, x, y)`` arrays gives one error per sample.
`mean_relative_l2` is the one exception, since a mean needs a batch: its leading axis is the
batch and everything after it is one sample. The spectra take one field (all axes spatial);
the rollout metric one trajectory (time first); the distribution metrics a set of samples
(samples first, every other axis flattened into the event).

**Field errors.**

- `relative_l2`: ``‖p − t‖₂ / ‖t‖₂`` (Li et al., "Fourier Neural Operator for Parametric
  PDEs", ICLR 2021, reported as the mean over the test set: `mean_relative_l2`).
- `rmse` and `nrmse`: PDEBench's ``RMSE = (mean_x (p − t)²)^{1/2}`` and
  ``nRMSE = mean over the kept axes of RMSE_x(p, t) / RMS_x(t)`` (Takamoto et al.,
  "PDEBench", NeurIPS 2022 Datasets and Benchmarks). Over the same axes ``RMSE/RMS`` *is*
  ``‖p − t‖/‖t‖``; the two conventions differ in the axes: the FNO paper reduces a whole
  sample, PDEBench only space, per channel and time step, and then averages the ratios.

**Spectra.** `energy_spectrum` of a periodic field ``u`` on ``N = Π N_i`` points with Fourier
coefficients ``û_k = fftn(u)_k / N`` (so ``u(x) = Σ_k û_k e^{ik·x}``) sums ``|û_k|²`` over shells
of ``|k|`` of width ``Δk = min_i 2π/L_i`` centred on multiples of ``Δk``. Parseval's identity
then reads

$$\sum_b E(k_b) = \frac1N \sum_x u(x)^2,$$

the mean square of the field (twice the kinetic energy per unit volume when ``u`` is a velocity
component; sum the components' spectra for a vector field). Only the ``rfftn`` half-spectrum is
formed; every mode whose conjugate partner is not stored counts twice. `error_spectrum` is
the spectrum of ``p − t``: which scales a surrogate gets wrong (PDE-Refiner, Lippe et al.,
NeurIPS 2023, shows one-step MSE training neglecting the low-amplitude high wavenumbers).

**Rollouts.** `correlation_time`: the number of leading frames whose Pearson correlation with
the reference stays at or above a threshold — the "high-correlation time" of Kochkov et al.,
"Machine learning-accelerated computational fluid dynamics", PNAS 2021 (Kolmogorov flow,
threshold 0.95) and of PDE-Refiner (Kuramoto–Sivashinsky and Kolmogorov flow, threshold 0.8).

**Distributions** (samplers, ensembles, stochastic surrogates).

- `mmd2`: the squared maximum mean discrepancy with a Gaussian kernel
  ``k(x, y) = exp(−‖x − y‖²/(2h²))`` (Gretton et al., "A Kernel Two-Sample Test", JMLR 2012),
  unbiased (U-statistic) or biased (V-statistic); `median_bandwidth` is their median
  heuristic for ``h``.
- `wasserstein_1d` and `sliced_wasserstein`: the exact 1D ``W_p`` between two equal-size
  empirical measures (sort both: the monotone coupling is optimal) and its average over random
  directions, ``SW_p^p = E_θ W_p^p(θ·X, θ·Y)`` with ``θ`` uniform on the sphere (Bonneel et
  al., "Sliced and Radon Wasserstein Barycenters of Measures", JMIV 2015).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

# The arguments every field metric takes: two fields of one shape and the axes to reduce.
_Field = Float[ArrayLike, "..."]
_Axes = int | Sequence[int] | None

__all__ = [
    "correlation_time",
    "energy_spectrum",
    "error_spectrum",
    "mean_relative_l2",
    "median_bandwidth",
    "mmd2",
    "nrmse",
    "pearson_correlation",
    "relative_l2",
    "rmse",
    "sliced_wasserstein",
    "wasserstein_1d",
]


# ----------------------------------------------------------------------------------------------
# Input checks (shapes and dtypes are static, so these raise at trace time, under jit too)
# ----------------------------------------------------------------------------------------------


def _floating(value, name: str, owner: str) -> Array:
    value = jnp.asarray(value)
    if not jnp.issubdtype(value.dtype, jnp.floating):
        raise TypeError(f"{owner}: `{name}` must be a real floating-point array, got dtype {value.dtype}.")
    return value


def _pair(prediction, target, owner: str, first: str = "prediction", second: str = "target") -> tuple[Array, Array]:
    prediction = _floating(prediction, first, owner)
    target = _floating(target, second, owner)
    if prediction.shape != target.shape:
        raise ValueError(
            f"{owner}: `{first}` and `{second}` must have the same shape, got {prediction.shape} and {target.shape}."
        )
    return prediction, target


def _axes(axes, ndim: int, owner: str) -> tuple[int, ...]:
    """`axes` as sorted non-negative ints (``None``: all axes), checked in range and distinct."""
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, (int, np.integer)):
        axes = (axes,)
    normalised = []
    for axis in axes:
        if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
            raise ValueError(f"{owner}: `axes` must be integers in [{-ndim}, {ndim}) for {ndim}-d inputs, got {axes!r}.")
        normalised.append(int(axis) % ndim)
    if len(set(normalised)) != len(normalised):
        raise ValueError(f"{owner}: `axes` must not repeat an axis, got {axes!r}.")
    return tuple(sorted(normalised))


def _samples(value, name: str, owner: str) -> Array:
    """A set of samples as ``(n, features)``: samples first, every other axis flattened."""
    value = _floating(value, name, owner)
    if value.ndim == 0:
        raise ValueError(f"{owner}: `{name}` must have a leading sample axis, got a scalar.")
    return value.reshape(value.shape[0], -1)


def _sample_pair(x, y, owner: str, *, same_size: bool) -> tuple[Array, Array]:
    x_shape, y_shape = jnp.shape(x), jnp.shape(y)
    x, y = _samples(x, "x", owner), _samples(y, "y", owner)
    if x_shape[1:] != y_shape[1:]:
        raise ValueError(f"{owner}: samples of `x` and `y` must have the same shape, got {x_shape[1:]} and {y_shape[1:]}.")
    if same_size and x.shape[0] != y.shape[0]:
        raise ValueError(f"{owner}: `y` must have as many samples as `x` ({x.shape[0]}), got {y.shape[0]}.")
    return x, y


# ----------------------------------------------------------------------------------------------
# Field errors
# ----------------------------------------------------------------------------------------------


def relative_l2(prediction: _Field, target: _Field, axes: _Axes = None) -> Float[Array, "..."]:
    r"""``‖prediction − target‖₂ / ‖target‖₂``, the norms taken over `axes`.

    The FNO paper's error (Li et al., ICLR 2021). `axes` (default: all) are the axes of one
    sample; the others are kept. A zero `target` gives ``inf`` (or ``nan`` if the prediction
    is zero too): the relative error of a zero field is undefined.

    ```python
    relative_l2(u_pred, u_true)                   # one sample, any shape: a scalar
    relative_l2(batch_pred, batch_true, axes=-1)  # (batch, s): one error per sample
    ```
    """
    prediction, target = _pair(prediction, target, "relative_l2")
    axes = _axes(axes, prediction.ndim, "relative_l2")
    return jnp.sqrt(jnp.sum((prediction - target) ** 2, axis=axes) / jnp.sum(target**2, axis=axes))


def mean_relative_l2(
    prediction: Float[ArrayLike, "batch ..."], target: Float[ArrayLike, "batch ..."]
) -> Float[Array, ""]:
    r"""The FNO paper's test metric: ``(1/B) Σ_b ‖p_b − t_b‖₂ / ‖t_b‖₂`` over the leading (batch) axis.

    Each sample is everything after the first axis (channels and time steps included).
    """
    prediction, target = _pair(prediction, target, "mean_relative_l2")
    if prediction.ndim < 1:
        raise ValueError(f"mean_relative_l2: `prediction` must have a leading batch axis, got shape {prediction.shape}.")
    return jnp.mean(relative_l2(prediction, target, axes=tuple(range(1, prediction.ndim))))


def rmse(prediction: _Field, target: _Field, axes: _Axes = None) -> Float[Array, "..."]:
    r"""Root mean square error ``(mean_{axes} (prediction − target)²)^{1/2}``; the other axes are kept."""
    prediction, target = _pair(prediction, target, "rmse")
    axes = _axes(axes, prediction.ndim, "rmse")
    return jnp.sqrt(jnp.mean((prediction - target) ** 2, axis=axes))


def nrmse(prediction: _Field, target: _Field, axes: _Axes = None) -> Float[Array, ""]:
    r"""PDEBench's normalised RMSE: ``RMSE_{axes}(p, t) / RMS_{axes}(t)``, averaged over every other axis.

    PDEBench (Takamoto et al., NeurIPS 2022) stores fields as ``(batch, x…, time, channel)`` and
    reduces the spatial axes only, so its nRMSE is
    ``nrmse(p, t, axes=spatial_axes)``: one ratio per sample, time step and channel, then
    the mean. The ratio over given axes equals `relative_l2` over them (the ``1/N`` cancel).
    """
    prediction, target = _pair(prediction, target, "nrmse")
    return jnp.mean(relative_l2(prediction, target, _axes(axes, prediction.ndim, "nrmse")))


def pearson_correlation(prediction: _Field, target: _Field, axes: _Axes = None) -> Float[Array, "..."]:
    r"""Pearson correlation ``Σ(p − p̄)(t − t̄) / (Σ(p − p̄)² Σ(t − t̄)²)^{1/2}`` over `axes`.

    The means are over `axes` too; the other axes are kept. A constant field has no
    correlation (``nan``).
    """
    prediction, target = _pair(prediction, target, "pearson_correlation")
    axes = _axes(axes, prediction.ndim, "pearson_correlation")
    p = prediction - jnp.mean(prediction, axis=axes, keepdims=True)
    t = target - jnp.mean(target, axis=axes, keepdims=True)
    return jnp.sum(p * t, axis=axes) / jnp.sqrt(jnp.sum(p**2, axis=axes) * jnp.sum(t**2, axis=axes))


def correlation_time(
    prediction: Float[ArrayLike, "time ..."],
    target: Float[ArrayLike, "time ..."],
    *,
    threshold: float = 0.8,
    dt: float | None = None,
) -> Int[Array, ""] | Float[Array, ""]:
    r"""How long a rollout stays correlated with the reference: the first frame with ``ρ < threshold``.

    ``ρ_n`` is the `pearson_correlation` of frame ``n`` of `prediction` and `target` (time is
    the leading axis; each frame is everything after it). Returns the index of the first frame
    with ``ρ_n < threshold`` — equivalently the number of leading frames with ``ρ_n ≥
    threshold`` — or the number of frames if the rollout never decorrelates. A ``nan``
    correlation (a constant frame) counts as decorrelated.

    With `dt`, the count is turned into a time, ``n · dt``: the convention that frame ``n``
    is the state ``n + 1`` steps of ``dt`` after the initial condition (which the rollout does
    not contain), so that ``n`` frames above threshold are ``n · dt`` of correlated time.

    The "high-correlation time" of Kochkov et al. (PNAS 2021, threshold 0.95) and PDE-Refiner
    (Lippe et al., NeurIPS 2023, threshold 0.8). Batch rollouts with `jax.vmap`.
    """
    prediction, target = _pair(prediction, target, "correlation_time")
    if prediction.ndim < 2:
        raise ValueError(
            f"correlation_time: `prediction` must be (time, *field) with a field axis, got shape {prediction.shape}."
        )
    rho = pearson_correlation(prediction, target, axes=tuple(range(1, prediction.ndim)))
    decorrelated = ~(rho >= threshold)
    frames = jnp.where(jnp.any(decorrelated), jnp.argmax(decorrelated), rho.shape[0])
    return frames if dt is None else frames * jnp.asarray(dt, dtype=prediction.dtype)


# ----------------------------------------------------------------------------------------------
# Spectra
# ----------------------------------------------------------------------------------------------


def _shells(shape: tuple[int, ...], lengths: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Static shell index and Parseval weight of every ``rfftn`` mode, the shell count and ``Δk``."""
    spacing = min(2 * np.pi / length for length in lengths)
    k2 = 0.0
    for axis, (n, length) in enumerate(zip(shape, lengths)):
        last = axis == len(shape) - 1
        freq = np.fft.rfftfreq(n, d=1.0 / n) if last else np.fft.fftfreq(n, d=1.0 / n)
        k = 2 * np.pi * freq / length
        broadcast = [1] * len(shape)
        broadcast[axis] = k.shape[0]
        k2 = k2 + (k**2).reshape(broadcast)
    shells = np.rint(np.sqrt(k2) / spacing).astype(np.int32)
    # The rfft keeps the last axis's non-negative half; the conjugate of every mode strictly
    # between 0 and Nyquist is not stored, so it counts twice for Parseval.
    n = shape[-1]
    j = np.arange(n // 2 + 1)
    weight = np.where((j == 0) | (2 * j == n), 1.0, 2.0)
    weights = np.broadcast_to(weight, shells.shape)
    return shells, weights, int(shells.max()) + 1, spacing


def energy_spectrum(
    u: Float[ArrayLike, "*shape"], lengths: float | Sequence[float] = 2 * math.pi
) -> tuple[Float[Array, " shells"], Float[Array, " shells"]]:
    r"""Shell-summed energy spectrum ``(k_b, E(k_b))`` of one periodic field in 1, 2 or 3 dimensions.

    ``E(k_b) = Σ_{|k| ∈ shell b} |û_k|²`` with ``û_k = fftn(u)_k / N``, shells of width
    ``Δk = min_i 2π/L_i`` centred on ``k_b = b Δk``, ``b = 0, 1, …``; ``Σ_b E(k_b) = mean(u²)``
    (Parseval). All modes are binned, so the shells beyond ``min_i N_i/2`` hold only the
    corners of the box of resolved wavenumbers: cut there when comparing slopes.

    - `u`: the field on a uniform periodic grid, every axis spatial (vmap batches and channels).
    - `lengths`: the box's side lengths ``L_i`` (one number for all axes), as in `jaxpde.Grid`;
      with the default ``2π`` the wavenumbers are integers.
    """
    u = _floating(u, "u", "energy_spectrum")
    if not 1 <= u.ndim <= 3:
        raise ValueError(f"energy_spectrum: `u` must be a 1, 2 or 3-d field, got shape {u.shape}.")
    lengths = (float(lengths),) * u.ndim if np.ndim(lengths) == 0 else tuple(float(v) for v in lengths)
    if len(lengths) != u.ndim or not all(math.isfinite(v) and v > 0 for v in lengths):
        raise ValueError(f"energy_spectrum: `lengths` must be positive, one per axis of `u` ({u.ndim}), got {lengths}.")
    shells, weights, count, spacing = _shells(u.shape, lengths)
    coefficients = jnp.fft.rfftn(u) / math.prod(u.shape)
    energy = jnp.asarray(weights, u.dtype) * jnp.abs(coefficients) ** 2
    spectrum = jax.ops.segment_sum(energy.ravel(), jnp.asarray(shells.ravel()), num_segments=count)
    return spacing * jnp.arange(count, dtype=u.dtype), spectrum


def error_spectrum(
    prediction: Float[ArrayLike, "*shape"],
    target: Float[ArrayLike, "*shape"],
    lengths: float | Sequence[float] = 2 * math.pi,
) -> tuple[Float[Array, " shells"], Float[Array, " shells"]]:
    r"""`energy_spectrum` of ``prediction − target``: the error's mean square per wavenumber shell.

    Divide by ``energy_spectrum(target)`` for the relative error per shell.
    """
    prediction, target = _pair(prediction, target, "error_spectrum")
    return energy_spectrum(prediction - target, lengths)


# ----------------------------------------------------------------------------------------------
# Distances between distributions
# ----------------------------------------------------------------------------------------------


def _squared_distances(a: Array, b: Array) -> Array:
    """``‖a_i − b_j‖²`` for every pair, as ``‖a‖² + ‖b‖² − 2a·b`` (memory ``n m``, not ``n m d``)."""
    # Centring first (distances are translation-invariant) keeps the cancellation error small.
    centre = jnp.mean(a, axis=0)
    a, b = a - centre, b - centre
    d2 = jnp.sum(a**2, axis=1)[:, None] + jnp.sum(b**2, axis=1)[None, :] - 2 * a @ b.T
    return jnp.maximum(d2, 0)


def _bandwidths(bandwidth, dtype, owner: str) -> Array:
    h = jnp.asarray(bandwidth, dtype=dtype)
    if h.ndim > 1:
        raise ValueError(f"{owner}: `bandwidth` must be a scalar or a 1-d array of bandwidths, got shape {h.shape}.")
    if not isinstance(h, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(h) & (h > 0))):
        raise ValueError(f"{owner}: `bandwidth` must be finite and positive, got {np.asarray(h)!r}.")
    return jnp.atleast_1d(h)


def _gaussian_kernel(d2: Array, h: Array) -> Array:
    """``Σ_h exp(−d²/(2h²))``: one Gaussian kernel, or the sum of several (a multi-scale kernel)."""
    return jnp.sum(jnp.exp(-d2[..., None] / (2 * h**2)), axis=-1)


def mmd2(
    x: Float[ArrayLike, "n ..."],
    y: Float[ArrayLike, "m ..."],
    bandwidth: float | Float[ArrayLike, " bandwidths"],
    *,
    unbiased: bool = True,
) -> Float[Array, ""]:
    r"""Squared maximum mean discrepancy between samples `x` and `y` under a Gaussian kernel.

    With ``k(x, y) = exp(−‖x − y‖²/(2h²))`` (or the sum over several ``h``),
    ``MMD² = E k(X, X') + E k(Y, Y') − 2 E k(X, Y)``, which is zero iff the two laws agree
    (Gretton et al., JMLR 2012, Lemma 6, for a characteristic kernel such as this one).
    Estimators from ``n`` and ``m`` samples (ibid., §2.2):

    - unbiased (the U-statistic, default): the diagonals ``k(x_i, x_i) = 1`` are left out,
      ``Σ_{i≠j} k(x_i, x_j)/(n(n−1)) + Σ_{i≠j} k(y_i, y_j)/(m(m−1)) − 2 Σ_{ij} k(x_i, y_j)/(nm)``.
      Its expectation is exactly ``MMD²``, so it can be negative when the laws agree.
    - biased (the V-statistic): the diagonals kept, ``≥ 0``, with expectation
      ``MMD² + (1 − E k(X, X'))/n + (1 − E k(Y, Y'))/m``.

    - `x`, `y`: samples first; each sample may have any shape (flattened), the same for both.
    - `bandwidth`: ``h > 0``, a scalar or a 1-d array (the kernels are summed); see
      `median_bandwidth`.

    Cost ``O((n + m)² d)`` time and ``O((n + m)²)`` memory.
    """
    x, y = _sample_pair(x, y, "mmd2", same_size=False)
    if unbiased and min(x.shape[0], y.shape[0]) < 2:
        raise ValueError(f"mmd2: the unbiased estimator needs at least 2 samples each, got {x.shape[0]} and {y.shape[0]}.")
    h = _bandwidths(bandwidth, x.dtype, "mmd2")
    n, m = x.shape[0], y.shape[0]
    kxx = _gaussian_kernel(_squared_distances(x, x), h)
    kyy = _gaussian_kernel(_squared_distances(y, y), h)
    kxy = _gaussian_kernel(_squared_distances(x, y), h)
    if unbiased:
        # Each diagonal entry is k(0) = number of bandwidths, exactly.
        diagonal = h.shape[0]
        xx = (jnp.sum(kxx) - n * diagonal) / (n * (n - 1))
        yy = (jnp.sum(kyy) - m * diagonal) / (m * (m - 1))
    else:
        xx, yy = jnp.mean(kxx), jnp.mean(kyy)
    return xx + yy - 2 * jnp.mean(kxy)


def median_bandwidth(x: Float[ArrayLike, "n ..."], y: Float[ArrayLike, "m ..."] | None = None) -> Float[Array, ""]:
    r"""The median heuristic: the median distance ``‖z_i − z_j‖``, ``i < j``, over the pooled samples.

    Used as the ``h`` of ``exp(−‖x − y‖²/(2h²))``, as in the experiments of Gretton et al.
    (JMLR 2012). Memory
    ``O((n + m)²)``: subsample large sets first.
    """
    z = _samples(x, "x", "median_bandwidth")
    if y is not None:
        z, other = _sample_pair(x, y, "median_bandwidth", same_size=False)
        z = jnp.concatenate([z, other])
    if z.shape[0] < 2:
        raise ValueError(f"median_bandwidth: needs at least 2 samples in all, got {z.shape[0]}.")
    i, j = np.triu_indices(z.shape[0], k=1)
    return jnp.sqrt(jnp.median(_squared_distances(z, z)[i, j]))


def wasserstein_1d(x: Float[ArrayLike, " n"], y: Float[ArrayLike, " n"], p: float = 2.0) -> Float[Array, ""]:
    r"""Exact ``W_p`` between two empirical measures on the line with ``n`` atoms each.

    ``W_p^p = (1/n) Σ_i |x_(i) − y_(i)|^p`` with ``x_(i)``, ``y_(i)`` sorted: for ``p ≥ 1``
    the monotone coupling is optimal (Santambrogio, *Optimal Transport for Applied
    Mathematicians*, 2015, ch. 2).
    """
    x, y = _pair(x, y, "wasserstein_1d", "x", "y")
    if x.ndim != 1:
        raise ValueError(f"wasserstein_1d: `x` must be 1-d (n samples), got shape {x.shape}.")
    return _sorted_cost(x[:, None], y[:, None], p, "wasserstein_1d")[0] ** (1 / p)


def _sorted_cost(x: Array, y: Array, p, owner: str) -> Array:
    """``W_p^p`` per column of two ``(n, L)`` arrays of 1D samples."""
    if not isinstance(p, jax.core.Tracer) and not float(p) >= 1:
        raise ValueError(f"{owner}: `p` must be >= 1 (W_p is a metric for p >= 1), got {p!r}.")
    return jnp.mean(jnp.abs(jnp.sort(x, axis=0) - jnp.sort(y, axis=0)) ** p, axis=0)


def sliced_wasserstein(
    x: Float[ArrayLike, "n ..."],
    y: Float[ArrayLike, "n ..."],
    key: PRNGKeyArray,
    *,
    projections: int = 256,
    p: float = 2.0,
) -> Float[Array, ""]:
    r"""Monte Carlo sliced Wasserstein distance ``SW_p = (E_θ W_p^p(θ·X, θ·Y))^{1/p}``.

    ``θ`` uniform on the unit sphere of ``R^d`` (normalised Gaussians drawn from `key`: same
    key, same directions), each 1D distance exact by sorting (`wasserstein_1d`). Cost
    ``O(L n (d + log n))`` for ``L`` = `projections`. For ``X ~ N(μ₁, I)``, ``Y ~ N(μ₂, I)``,
    ``SW_2² = E_θ (θ·(μ₁ − μ₂))² = ‖μ₁ − μ₂‖²/d``.

    - `x`, `y`: the same number of samples (first axis), each of the same shape (flattened).
    """
    x, y = _sample_pair(x, y, "sliced_wasserstein", same_size=True)
    if not isinstance(projections, (int, np.integer)) or projections < 1:
        raise ValueError(f"sliced_wasserstein: `projections` must be a positive integer, got {projections!r}.")
    directions = jax.random.normal(key, (x.shape[1], projections), dtype=x.dtype)
    directions = directions / jnp.linalg.norm(directions, axis=0, keepdims=True)
    return jnp.mean(_sorted_cost(x @ directions, y @ directions, p, "sliced_wasserstein")) ** (1 / p)
