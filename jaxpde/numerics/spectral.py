r"""Fourier spectral numerics on periodic grids, and the sine transform for Dirichlet grids.

On a periodic `Grid` with ``N_i`` points per axis, a field is identified with its trigonometric
interpolant

$$u(x) = \sum_{k} \hat u_k\, e^{i k\cdot x}, \qquad k_i = 2\pi m_i / L_i,\quad
-N_i/2 \le m_i < N_i/2,$$

and every operator here acts *exactly* on that interpolant: ``∂^p/∂x_i^p`` multiplies
``\hat u_k`` by ``(i k_i)^p``, the Laplacian by ``-|k|^2``. All transforms are real
(`jnp.fft.rfftn`), fields go in and out in physical space, and every function maps one field
(batch with `jax.vmap`).

**The Nyquist mode.** For even ``N_i`` the mode ``m_i = -N_i/2`` is its own mirror image: the
grid cannot tell ``e^{i k_N x}`` from ``e^{-i k_N x}`` (both are ``(-1)^j``). An even derivative
of it is unambiguous (``(±i k_N)^{2q}`` agree), an odd one is not (``±i k_N`` differ in sign),
and keeping it would give a derivative that is not real or not the derivative of any real
interpolant. Odd derivatives therefore zero that mode, as is standard (Trefethen, *Spectral
Methods in MATLAB*, 2000, ch. 3; Boyd, *Chebyshev and Fourier Spectral Methods*, 2001, §2.13).
Gradient, divergence, curl and the Leray projector below are all built from these first
derivatives, so they are mutually consistent: ``divergence(leray_project(v)) == 0`` and
``leray_project(gradient(φ)) == 0`` hold to round-off at *every* mode.

**Dealiasing.** Products of fields create modes beyond the grid's band that alias back onto
resolved ones. Orszag's 2/3 rule (Orszag 1971, *J. Atmos. Sci.* 28, 1074) keeps only
``|m_i| < N_i / 3`` so that the product of two truncated fields aliases only onto discarded
modes.

**Incompressible 2D flow.** With ``x`` = axis 0 and ``y`` = axis 1, the vorticity is
``ω = ∂v/∂x − ∂u/∂y``, the stream function solves ``−Δψ = ω`` (zero mean) and the velocity is
``(u, v) = (∂ψ/∂y, −∂ψ/∂x)`` — the convention of the FNO-paper Navier–Stokes solver
(Li et al. 2020).

**Sine transform.** `sine_transform` is the type-I discrete sine transform (the eigenbasis of
the Dirichlet Laplacian on a `Grid` with ``boundary="dirichlet"``), built from one real FFT
of the odd extension so it jit-compiles, vmaps and differentiates.
"""

from __future__ import annotations

import math
from typing import Literal

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Complex, Float

from ..grids import Grid

__all__ = [
    "derivative",
    "derivative_symbol",
    "gradient",
    "divergence",
    "laplacian",
    "laplacian_symbol",
    "inverse_laplacian",
    "dealias_mask",
    "dealias",
    "streamfunction_from_vorticity",
    "velocity_from_vorticity",
    "vorticity_from_velocity",
    "leray_project",
    "sine_transform",
]


# --------------------------------------------------------------------------------------------
# Input checks and wavenumbers
# --------------------------------------------------------------------------------------------


def _check_periodic(grid: Grid, caller: str) -> None:
    if not isinstance(grid, Grid):
        raise TypeError(f"{caller}: `grid` must be a jaxpde.Grid, got {type(grid).__name__}.")
    if grid.boundary != "periodic":
        raise ValueError(
            f"{caller}: Fourier spectral operators need a periodic grid, but `grid` has "
            f"boundary {grid.boundary!r}. For Dirichlet grids use `sine_transform` or the "
            "finite-difference operators in `jaxpde.numerics.stencils`."
        )


def _real_field(u, grid: Grid, name: str, leading: tuple[int, ...] = ()) -> Array:
    """`u` as a real floating array of shape ``leading + grid.shape``, or a clear error."""
    u = jnp.asarray(u)
    if jnp.iscomplexobj(u):
        raise TypeError(f"`{name}` must be real, got dtype {u.dtype}.")
    if not jnp.issubdtype(u.dtype, jnp.floating):
        u = u.astype(jnp.result_type(float))
    expected = leading + grid.shape
    if u.shape != expected:
        raise ValueError(
            f"`{name}` has shape {u.shape}, expected {expected} "
            f"({'components, ' if leading else ''}grid shape {grid.shape})."
        )
    return u


def _check_axis(axis: int, grid: Grid, caller: str) -> int:
    if not isinstance(axis, (int, np.integer)) or not -grid.ndim <= axis < grid.ndim:
        raise ValueError(f"{caller}: `axis` must be an integer in [-{grid.ndim}, {grid.ndim}), got {axis!r}.")
    return int(axis) % grid.ndim


def _wavenumbers(grid: Grid, dtype, *, drop_nyquist: bool) -> tuple[Array, ...]:
    """Angular wavenumbers in the rfftn layout, cast to `dtype`.

    With ``drop_nyquist`` the ±N/2 mode of every even-length axis is set to zero — the
    wavenumber that odd derivatives use (see the module docstring).
    """
    ks = []
    for axis, k in enumerate(grid.wavenumbers(real=True)):
        k = k.astype(dtype)
        n = grid.shape[axis]
        if drop_nyquist and n % 2 == 0:
            # In rfftn layout the Nyquist index is n//2 on every axis: fftfreq puts -n/2 there on
            # the full axes, rfftfreq puts +n/2 last on the halved one.
            k = k.at[(slice(None),) * axis + (n // 2,)].set(0)
        ks.append(k)
    return tuple(ks)


def _complex_dtype(real_dtype):
    return jnp.result_type(real_dtype, jnp.complex64)


def _rfftn(u: Array) -> Array:
    return jnp.fft.rfftn(u, axes=tuple(range(-u.ndim, 0)))


def _irfftn(u_hat: Array, grid: Grid, dtype) -> Array:
    axes = tuple(range(-grid.ndim, 0))
    return jnp.fft.irfftn(u_hat, s=grid.shape, axes=axes).astype(dtype)


# --------------------------------------------------------------------------------------------
# Derivatives
# --------------------------------------------------------------------------------------------


def derivative_symbol(grid: Grid, order: int = 1, axis: int = 0, dtype=None) -> Complex[Array, "..."]:
    r"""The Fourier multiplier ``(i k_axis)^order`` of ``∂^order/∂x_axis^order``, rfftn layout.

    Broadcastable against ``jnp.fft.rfftn`` of a field on `grid`. For odd `order` the Nyquist
    wavenumber is zeroed (module docstring), so ``irfftn(symbol * rfftn(u))`` is the exact
    derivative of the real trigonometric interpolant of ``u`` with its Nyquist mode removed.
    Useful for building linear operators of PDEs (e.g. ``-∂³`` of KdV) in spectral space.

    **Arguments:** `grid` (periodic), `order` (``>= 0``), `axis`, and the real `dtype` of the
    fields it will multiply (default: JAX's default float).
    """
    _check_periodic(grid, "derivative_symbol")
    if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or order < 0:
        raise ValueError(f"derivative_symbol: `order` must be a non-negative integer, got {order!r}.")
    axis = _check_axis(axis, grid, "derivative_symbol")
    dtype = jnp.result_type(float) if dtype is None else dtype
    k = _wavenumbers(grid, dtype, drop_nyquist=order % 2 == 1)[axis]
    # i^order exactly, so even orders stay real and no rounding enters the unit factor.
    unit = (1, 1j, -1, -1j)[int(order) % 4]
    return (unit * k**order).astype(_complex_dtype(dtype))


@eqx.filter_jit
def derivative(u: Float[ArrayLike, "*shape"], grid: Grid, order: int = 1, axis: int = 0) -> Float[Array, "*shape"]:
    r"""``∂^order u / ∂x_axis^order`` by Fourier differentiation on a periodic grid.

    Exact (to round-off) for trigonometric polynomials resolved by the grid; spectrally accurate
    for smooth periodic functions. For odd orders the Nyquist mode is dropped (module docstring).

    **Arguments:**

    - `u`: real field of shape ``grid.shape``.
    - `grid`: a periodic `Grid`.
    - `order`: derivative order ``p >= 0``.
    - `axis`: the coordinate to differentiate in.

    **Returns:** the derivative, same shape and dtype as `u`.
    """
    _check_periodic(grid, "derivative")
    u = _real_field(u, grid, "u")
    symbol = derivative_symbol(grid, order, axis, dtype=u.dtype)
    if order == 0:
        return u
    return _irfftn(symbol * _rfftn(u), grid, u.dtype)


@eqx.filter_jit
def gradient(u: Float[ArrayLike, "*shape"], grid: Grid) -> Float[Array, "ndim *shape"]:
    r"""``∇u``: the stacked first derivatives ``(∂u/∂x_0, …, ∂u/∂x_{d-1})``, one FFT forward."""
    _check_periodic(grid, "gradient")
    u = _real_field(u, grid, "u")
    u_hat = _rfftn(u)
    ks = _wavenumbers(grid, u.dtype, drop_nyquist=True)
    return jnp.stack([_irfftn(1j * k * u_hat, grid, u.dtype) for k in ks])


@eqx.filter_jit
def divergence(v: Float[ArrayLike, "ndim *shape"], grid: Grid) -> Float[Array, "*shape"]:
    r"""``∇·v = Σ_i ∂v_i/∂x_i`` of a vector field with one component per grid axis."""
    _check_periodic(grid, "divergence")
    v = _real_field(v, grid, "v", leading=(grid.ndim,))
    ks = _wavenumbers(grid, v.dtype, drop_nyquist=True)
    div_hat = sum(1j * k * _rfftn(vi) for k, vi in zip(ks, v))
    return _irfftn(div_hat, grid, v.dtype)


def odd_wavenumbers(grid: Grid, dtype=None) -> tuple[Array, ...]:
    """Angular wavenumbers per axis in rfftn layout with the Nyquist mode of even axes set to 0:
    the wavenumbers of odd-order derivatives (see the module docstring)."""
    _check_periodic(grid, "odd_wavenumbers")
    return _wavenumbers(grid, jnp.result_type(float) if dtype is None else dtype, drop_nyquist=True)


def laplacian_symbol(grid: Grid, dtype=None) -> Float[Array, "..."]:
    r"""The Fourier multiplier ``-|k|^2`` of the Laplacian, rfftn layout (Nyquist kept: even order)."""
    _check_periodic(grid, "laplacian_symbol")
    dtype = jnp.result_type(float) if dtype is None else dtype
    return -sum(k**2 for k in _wavenumbers(grid, dtype, drop_nyquist=False))


@eqx.filter_jit
def laplacian(u: Float[ArrayLike, "*shape"], grid: Grid) -> Float[Array, "*shape"]:
    r"""``Δu = Σ_i ∂²u/∂x_i²`` by Fourier differentiation."""
    _check_periodic(grid, "laplacian")
    u = _real_field(u, grid, "u")
    return _irfftn(laplacian_symbol(grid, u.dtype) * _rfftn(u), grid, u.dtype)


def _inverse_minus_laplacian_hat(f_hat: Array, grid: Grid, dtype) -> Array:
    """``f̂ / |k|²`` with the ``k = 0`` mode set to zero (the zero-mean solution)."""
    k2 = -laplacian_symbol(grid, dtype)
    is_mean = k2 == 0
    # A safe denominator keeps the k = 0 division (and its gradient) finite before masking.
    return jnp.where(is_mean, 0, f_hat / jnp.where(is_mean, 1, k2))


@eqx.filter_jit
def inverse_laplacian(f: Float[ArrayLike, "*shape"], grid: Grid) -> Float[Array, "*shape"]:
    r"""The zero-mean solution ``u`` of ``Δu = f − \bar f`` on the periodic box.

    ``Δu = f`` is solvable on a torus only when ``f`` has zero mean, and then only up to a
    constant. This returns the unique zero-mean solution for the mean-free part of `f`
    (``\hat u_k = -\hat f_k / |k|^2`` for ``k ≠ 0``, ``\hat u_0 = 0``); the mean of `f` is
    ignored rather than reported, so callers that need a compatible right-hand side should
    check it themselves.
    """
    _check_periodic(grid, "inverse_laplacian")
    f = _real_field(f, grid, "f")
    return _irfftn(-_inverse_minus_laplacian_hat(_rfftn(f), grid, f.dtype), grid, f.dtype)


# --------------------------------------------------------------------------------------------
# Dealiasing
# --------------------------------------------------------------------------------------------


def _kept_band(n: int, fraction: float) -> int:
    """Largest ``|m|`` kept on an axis of ``n`` points: ``|m| < fraction * n / 2``, strictly."""
    edge = fraction * n / 2
    # 2/3 is not a binary fraction; snap `edge` to an integer it misses by round-off so that the
    # strict inequality is decided as in exact arithmetic (e.g. n = 48 keeps |m| <= 15).
    if abs(edge - round(edge)) < 1e-9 * max(1.0, edge):
        edge = round(edge)
    return math.ceil(edge) - 1


def dealias_mask(grid: Grid, fraction: float = 2 / 3) -> Bool[Array, "..."]:
    r"""Boolean mask, in rfftn layout, of the modes kept by the ``fraction`` rule.

    A mode ``m`` is kept iff ``|m_i| < fraction · N_i / 2`` on every axis (a tensor-product
    mask, as in Orszag's rule). With the default ``fraction = 2/3`` this is ``|m_i| < N_i/3``:
    the top third of the resolved band is zeroed, and the product of two masked fields aliases
    only onto masked modes (if ``|p|, |q| <= K`` with ``3K < N``, then ``p + q ∓ N`` has modulus
    ``> K``). ``fraction = 1`` keeps everything except the Nyquist mode.
    """
    _check_periodic(grid, "dealias_mask")
    if not (isinstance(fraction, (int, float, np.floating)) and 0 < fraction <= 1):
        raise ValueError(f"dealias_mask: `fraction` must be a number in (0, 1], got {fraction!r}.")
    mask = np.ones(grid.spectral_shape(real=True), dtype=bool)
    for axis, n in enumerate(grid.shape):
        last = axis == grid.ndim - 1
        m = np.fft.rfftfreq(n, 1 / n) if last else np.fft.fftfreq(n, 1 / n)
        keep = np.abs(np.rint(m)) <= _kept_band(n, fraction)
        shape = [1] * grid.ndim
        shape[axis] = keep.size
        mask &= keep.reshape(shape)
    return jnp.asarray(mask)


@eqx.filter_jit
def dealias(u: Float[ArrayLike, "*shape"], grid: Grid, fraction: float = 2 / 3) -> Float[Array, "*shape"]:
    r"""Zero every Fourier mode of `u` outside `dealias_mask(grid, fraction)`."""
    _check_periodic(grid, "dealias")
    u = _real_field(u, grid, "u")
    return _irfftn(jnp.where(dealias_mask(grid, fraction), _rfftn(u), 0), grid, u.dtype)


# --------------------------------------------------------------------------------------------
# Incompressible flow
# --------------------------------------------------------------------------------------------


def _check_2d(grid: Grid, caller: str) -> None:
    _check_periodic(grid, caller)
    if grid.ndim != 2:
        raise ValueError(f"{caller}: needs a 2D grid (scalar vorticity), got a {grid.ndim}D grid {grid.shape}.")


@eqx.filter_jit
def streamfunction_from_vorticity(omega: Float[ArrayLike, "nx ny"], grid: Grid) -> Float[Array, "nx ny"]:
    r"""The zero-mean stream function ``ψ`` with ``−Δψ = ω`` (the mean of ``ω`` is ignored)."""
    _check_2d(grid, "streamfunction_from_vorticity")
    omega = _real_field(omega, grid, "omega")
    return _irfftn(_inverse_minus_laplacian_hat(_rfftn(omega), grid, omega.dtype), grid, omega.dtype)


@eqx.filter_jit
def velocity_from_vorticity(omega: Float[ArrayLike, "nx ny"], grid: Grid) -> Float[Array, "2 nx ny"]:
    r"""The divergence-free, zero-mean velocity ``(u, v) = (∂ψ/∂y, −∂ψ/∂x)`` with ``−Δψ = ω``.

    Axis 0 of the grid is ``x`` and axis 1 is ``y``. The result satisfies ``∇·(u, v) = 0`` to
    round-off, and `vorticity_from_velocity` recovers every mode of ``ω`` except the mean and the
    modes with a Nyquist component (which first derivatives drop, so those come back scaled by
    ``|\tilde k|^2/|k|^2``): exactly ``ω − \bar ω`` when ``ω`` has no Nyquist content.
    """
    _check_2d(grid, "velocity_from_vorticity")
    omega = _real_field(omega, grid, "omega")
    psi_hat = _inverse_minus_laplacian_hat(_rfftn(omega), grid, omega.dtype)
    kx, ky = _wavenumbers(grid, omega.dtype, drop_nyquist=True)
    u = _irfftn(1j * ky * psi_hat, grid, omega.dtype)
    v = _irfftn(-1j * kx * psi_hat, grid, omega.dtype)
    return jnp.stack([u, v])


@eqx.filter_jit
def vorticity_from_velocity(velocity: Float[ArrayLike, "2 nx ny"], grid: Grid) -> Float[Array, "nx ny"]:
    r"""The scalar vorticity ``ω = ∂v/∂x − ∂u/∂y`` of a 2D velocity ``(u, v)`` (shape ``(2, nx, ny)``)."""
    _check_2d(grid, "vorticity_from_velocity")
    velocity = _real_field(velocity, grid, "velocity", leading=(2,))
    kx, ky = _wavenumbers(grid, velocity.dtype, drop_nyquist=True)
    omega_hat = 1j * kx * _rfftn(velocity[1]) - 1j * ky * _rfftn(velocity[0])
    return _irfftn(omega_hat, grid, velocity.dtype)


@eqx.filter_jit
def leray_project(v: Float[ArrayLike, "ndim *shape"], grid: Grid) -> Float[Array, "ndim *shape"]:
    r"""Leray (Helmholtz) projection of a vector field onto divergence-free fields.

    $$\widehat{Pv}_k = \hat v_k - \tilde k\,\frac{\tilde k\cdot\hat v_k}{|\tilde k|^2}
    \quad(\tilde k \ne 0), \qquad \widehat{Pv}_k = \hat v_k \quad (\tilde k = 0),$$

    where ``\tilde k`` is the first-derivative wavenumber (Nyquist components zeroed). ``P`` is
    the orthogonal projector onto the kernel of `divergence`, whose complement is the range of
    `gradient`: so ``divergence(P v) = 0`` and ``P ∘ gradient = 0`` hold to round-off, ``P`` is
    idempotent, and the mean flow is kept. (Chorin 1968; Canuto et al., *Spectral Methods*, 2007.)

    **Arguments:** `v` of shape ``(grid.ndim, *grid.shape)``, one component per axis (in 1D the
    divergence-free fields are the constants, so only the mean survives).
    """
    _check_periodic(grid, "leray_project")
    v = _real_field(v, grid, "v", leading=(grid.ndim,))
    ks = _wavenumbers(grid, v.dtype, drop_nyquist=True)
    v_hat = [_rfftn(vi) for vi in v]
    k2 = sum(k**2 for k in ks)
    zero = k2 == 0
    k_dot_v_over_k2 = jnp.where(zero, 0, sum(k * vh for k, vh in zip(ks, v_hat)) / jnp.where(zero, 1, k2))
    return jnp.stack([_irfftn(vh - k * k_dot_v_over_k2, grid, v.dtype) for k, vh in zip(ks, v_hat)])


# --------------------------------------------------------------------------------------------
# Sine transform (Dirichlet grids)
# --------------------------------------------------------------------------------------------


def _sine_transform_axis(x: Array, axis: int) -> Array:
    """Unnormalised DST-I along `axis`: ``y_k = 2 Σ_{m=1}^{n} x_m sin(π m k / (n + 1))``."""
    n = x.shape[axis]
    x = jnp.moveaxis(x, axis, -1)
    zero = jnp.zeros((*x.shape[:-1], 1), x.dtype)
    # The odd extension [0, x, 0, -reverse(x)] of length 2(n+1) has the DFT
    # -2i Σ_m x_m sin(π m k/(n+1)), so the sine sums are minus its imaginary part.
    odd = jnp.concatenate([zero, x, zero, -x[..., ::-1]], axis=-1)
    y = -jnp.fft.rfft(odd, axis=-1).imag[..., 1 : n + 1]
    return jnp.moveaxis(y, -1, axis)


@eqx.filter_jit
def sine_transform(
    x: Float[ArrayLike, "..."],
    axes: int | tuple[int, ...] | None = None,
    norm: Literal["backward", "ortho", "forward"] = "backward",
) -> Float[Array, "..."]:
    r"""Type-I discrete sine transform over `axes`, with `scipy.fft.dstn(type=1)`'s conventions.

    Along one axis of length ``n`` (1-based indices):

    $$y_k = 2 \sum_{m=1}^{n} x_m \sin\frac{\pi m k}{n + 1},\qquad k = 1,\dots,n,$$

    scaled by ``1/\sqrt{2(n+1)}`` for ``norm="ortho"`` (then the transform is symmetric,
    orthogonal and its own inverse) and by ``1/(2(n+1))`` for ``norm="forward"``. The sine
    vectors ``\sin(π m j/(n+1))`` are the eigenvectors of the Dirichlet Laplacian (continuous and
    3-point discrete) sampled at the interior nodes of a Dirichlet `Grid`, so this diagonalises
    Poisson problems and samples sine-series random fields there.

    Built from a real FFT of the odd extension (``O(n log n)``, jit/vmap/grad-able) because
    `scipy.fft.dst` cannot be traced.

    **Arguments:** `x` real; `axes` (default: all axes); `norm` as in `scipy.fft`.
    """
    x = jnp.asarray(x)
    if jnp.iscomplexobj(x):
        raise TypeError(f"sine_transform: `x` must be real, got dtype {x.dtype}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    if axes is None:
        axes = tuple(range(x.ndim))
    elif isinstance(axes, (int, np.integer)):
        axes = (int(axes),)
    if any(not -x.ndim <= a < x.ndim for a in axes):
        raise ValueError(f"sine_transform: `axes` {axes} out of range for an array with {x.ndim} axes.")
    axes = tuple(a % x.ndim for a in axes)
    if len(set(axes)) != len(axes):
        raise ValueError(f"sine_transform: `axes` has repeated entries: {axes}.")
    if norm not in ("backward", "ortho", "forward"):
        raise ValueError(f"sine_transform: `norm` must be 'backward', 'ortho' or 'forward', got {norm!r}.")
    for a in axes:
        x = _sine_transform_axis(x, a)
        n = x.shape[a]
        if norm == "ortho":
            x = x / math.sqrt(2 * (n + 1))
        elif norm == "forward":
            x = x / (2 * (n + 1))
    return x
