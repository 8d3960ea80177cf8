r"""Exponential time differencing Runge–Kutta (ETDRK) schemes as diffrax solvers.

A semi-linear PDE on a periodic grid,

$$\partial_t u = \mathcal{L} u + \mathcal{N}(u, t),$$

with $\mathcal{L}$ linear, constant-coefficient and therefore diagonal in Fourier space
($\widehat{\mathcal{L} u}_k = \hat L_k \hat u_k$), is integrated exactly in its linear part
by the variation-of-constants formula

$$\hat u(t_n + h) = e^{\hat L h} \hat u(t_n)
    + \int_0^h e^{\hat L (h - s)} \hat{\mathcal{N}}(u(t_n + s), t_n + s)\, ds ,$$

and the integral is approximated by Runge–Kutta-like stages (Cox & Matthews 2002). The
weights are the $\varphi$-functions of $z = \hat L h$,

$$\varphi_1(z) = \frac{e^z - 1}{z}, \quad \varphi_2(z) = \frac{e^z - 1 - z}{z^2}, \quad
  \varphi_3(z) = \frac{e^z - 1 - z - z^2/2}{z^3},$$

which suffer catastrophic cancellation for small $|z|$. Following Kassam & Trefethen (2005)
they are evaluated by Cauchy's integral formula: $f(z)$ is the mean of $f$ over $M$ equispaced
points on a circle of radius $r$ about $z$ (the trapezoidal rule, exponentially accurate for
these entire functions), so no point comes near the removable singularity at $0$.

Unlike implementations that keep only the real part of that mean (exact only for real,
dissipative symbols), the coefficients here stay complex whenever $\hat L$ is complex —
dispersive symbols such as KdV's $i k^3$ or advection's $-i c k$ need them.

The state seen by diffrax is the **real physical field** (shape ``(*channels, *grid.shape)``);
the solvers transform to Fourier space internally, so `diffrax.SaveAt`, the default
`diffrax.RecursiveCheckpointAdjoint`, `jax.grad` and `jax.vmap` all apply. (diffrax's
`BacksolveAdjoint` integrates an adjoint system that is not semi-linear and is not supported.)

The drivers that run these solvers — `solve` (any diffrax solver, constant steps) and `rollout`
(a lean `jax.lax.scan` for bulk data) — live in `jaxpde.numerics.time_integration` and are
re-exported here.

References:

- S. M. Cox and P. C. Matthews, "Exponential time differencing for stiff systems",
  J. Comput. Phys. 176 (2002) 430–455.
- A.-K. Kassam and L. N. Trefethen, "Fourth-order time-stepping for stiff PDEs",
  SIAM J. Sci. Comput. 26 (2005) 1214–1233.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import Any, ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float, Inexact, PyTree

from ..grids import Grid
from ._compat import unwrap_term

__all__ = [
    "SemiLinearTerm",
    "AbstractETDRK",
    "ETDRK1",
    "ETDRK2",
    "ETDRK3",
    "ETDRK4",
    "phi_functions",
    "solve",
    "rollout",
]

Coefficients = dict[str, Inexact[Array, "..."]]


# --------------------------------------------------------------------------------------------
# The term
# --------------------------------------------------------------------------------------------


class SemiLinearTerm(diffrax.AbstractTerm):
    r"""The right-hand side $\hat L \hat u + \hat{\mathcal N}(\hat u, t)$ of a semi-linear PDE.

    The state ``y`` is a real field of shape ``(*channels, *grid.shape)``; the Fourier transforms
    act on the trailing ``grid.ndim`` axes (``jnp.fft.rfftn``), so a leading channel/species axis
    (e.g. Gray–Scott's two species) rides along.

    As a `diffrax.AbstractTerm` it is an ordinary ODE term (``vf`` returns $\partial_t u$ in
    physical space, the control is $t_1 - t_0$), so it also works with diffrax's own explicit
    solvers; the ETDRK solvers additionally use its split into linear and nonlinear parts.

    **Arguments:**

    - `linear_symbol`: $\hat L$, broadcastable to ``(*channels, *grid.spectral_shape(real=True))``.
      Real for dissipative operators; complex for dispersive/advective ones.
    - `nonlinear`: ``nonlinear(t, u_hat, args) -> N_hat``, spectral in and spectral out (the
      rfft of the state in, the rfft of $\mathcal N$ out). Dealiasing is its business.
    - `grid`: the periodic `Grid` the field lives on.
    """

    # A complex symbol is stored as its real and imaginary parts: diffrax warns about complex
    # leaves in the terms, although every array diffrax itself handles here is real.
    symbol_real: Float[Array, "*channels *spectral"]
    symbol_imag: Float[Array, "*channels *spectral"] | None
    nonlinear: Callable[[Any, Complex[Array, "..."], Any], Complex[Array, "..."]]
    grid: Grid

    def __init__(self, linear_symbol: ArrayLike, nonlinear: Callable, grid: Grid):
        if not isinstance(grid, Grid):
            raise TypeError(f"SemiLinearTerm: `grid` must be a jaxpde.Grid, got {type(grid).__name__}.")
        if grid.boundary != "periodic":
            raise ValueError(
                "SemiLinearTerm: ETDRK needs a diagonal Fourier symbol, i.e. a periodic grid; "
                f"got a {grid.boundary!r} grid. Use the method-of-lines path (diffrax.ODETerm(pde.rhs))."
            )
        linear_symbol = jnp.asarray(linear_symbol)
        spectral = grid.spectral_shape(real=True)
        trailing = linear_symbol.shape[-grid.ndim :] if linear_symbol.ndim >= grid.ndim else None
        if trailing is None or any(a not in (1, b) for a, b in zip(trailing, spectral)):
            raise ValueError(
                f"SemiLinearTerm: `linear_symbol` has shape {linear_symbol.shape}, expected trailing "
                f"axes broadcastable to the rfft shape {spectral} of the grid."
            )
        if not callable(nonlinear):
            raise TypeError("SemiLinearTerm: `nonlinear` must be callable as nonlinear(t, u_hat, args).")
        if jnp.iscomplexobj(linear_symbol):
            self.symbol_real, self.symbol_imag = jnp.real(linear_symbol), jnp.imag(linear_symbol)
        else:
            if not jnp.issubdtype(linear_symbol.dtype, jnp.floating):
                linear_symbol = linear_symbol.astype(jnp.result_type(float))
            self.symbol_real, self.symbol_imag = linear_symbol, None
        self.nonlinear = nonlinear
        self.grid = grid

    @property
    def linear_symbol(self) -> Inexact[Array, "*channels *spectral"]:
        r"""$\hat L$ (complex if it was given complex)."""
        if self.symbol_imag is None:
            return self.symbol_real
        return jax.lax.complex(self.symbol_real, self.symbol_imag)

    @property
    def _axes(self) -> tuple[int, ...]:
        return tuple(range(-self.grid.ndim, 0))

    def to_spectral(self, y: Float[Array, "*channels *shape"]) -> Complex[Array, "*channels *spectral"]:
        """``rfftn`` over the spatial (trailing) axes."""
        return jnp.fft.rfftn(y, axes=self._axes)

    def to_physical(self, y_hat: Complex[Array, "*channels *spectral"]) -> Float[Array, "*channels *shape"]:
        """``irfftn`` over the spatial (trailing) axes, back to the grid's shape."""
        return jnp.fft.irfftn(y_hat, s=self.grid.shape, axes=self._axes)

    def symbol_for(self, y_hat: Complex[Array, "..."]) -> Inexact[Array, "..."]:
        """$\\hat L$ in the precision of the state (real stays real, complex stays complex).

        Keeps a float32 state from being upcast by a float64 symbol built under ``x64``.
        """
        real_dtype = jnp.finfo(y_hat.dtype).dtype
        if self.symbol_imag is None:
            return self.symbol_real.astype(real_dtype)
        return jax.lax.complex(self.symbol_real.astype(real_dtype), self.symbol_imag.astype(real_dtype))

    def spectral_vf(self, t, y_hat: Complex[Array, "..."], args) -> Complex[Array, "..."]:
        """$\\hat L \\hat u + \\hat{\\mathcal N}(\\hat u, t)$."""
        return self.symbol_for(y_hat) * y_hat + self.nonlinear(t, y_hat, args)

    def vf(self, t, y, args):
        return self.to_physical(self.spectral_vf(t, self.to_spectral(y), args))

    def contr(self, t0, t1, **kwargs):
        return t1 - t0

    def prod(self, vf, control):
        return jax.tree_util.tree_map(lambda v: v * control, vf)


# --------------------------------------------------------------------------------------------
# phi-functions by contour integral
# --------------------------------------------------------------------------------------------


def phi_functions(
    z: Inexact[ArrayLike, "..."],
    max_order: int = 3,
    num_points: int = 32,
    radius: float = 1.0,
) -> tuple[Inexact[Array, "..."], ...]:
    r"""$(\varphi_1(z), \ldots, \varphi_p(z))$ by the Kassam–Trefethen contour mean.

    $\varphi_k(z) = \frac{1}{M}\sum_{j=1}^{M} \varphi_k(z + r e^{i\theta_j})$,
    $\theta_j = 2\pi (j - \tfrac12)/M$, with $\varphi_k$ at the contour points from the
    recurrence $\varphi_{k+1}(w) = (\varphi_k(w) - 1/k!)/w$. The half-step offset keeps the
    points off the real and imaginary axes, so for $|z| = r$ on an axis no point lands on $0$.

    A real `z` gives real results (the mean over a conjugate-symmetric contour is real; its
    rounding-level imaginary part is dropped). A complex `z` gives complex results — nothing is
    discarded.

    **Arguments:**

    - `z`: the points $\hat L h$.
    - `max_order`: largest $k$ returned (1 to 3).
    - `num_points`: $M$; 32 gives about double precision for every $z$ (Kassam & Trefethen 2005).
    - `radius`: $r$.
    """
    if max_order not in (1, 2, 3):
        raise ValueError(f"phi_functions: `max_order` must be 1, 2 or 3, got {max_order!r}.")
    if num_points < 4:
        raise ValueError(f"phi_functions: `num_points` must be at least 4, got {num_points!r}.")
    if not radius > 0:
        raise ValueError(f"phi_functions: `radius` must be positive, got {radius!r}.")
    z = jnp.asarray(z)
    if not jnp.issubdtype(z.dtype, jnp.inexact):
        z = z.astype(jnp.result_type(float))
    is_real = not jnp.iscomplexobj(z)
    complex_dtype = jnp.result_type(z.dtype, jnp.complex64)
    real_dtype = jnp.finfo(complex_dtype).dtype
    theta = 2 * np.pi * (np.arange(num_points) + 0.5) / num_points
    shifts = jnp.asarray(radius * np.exp(1j * theta), dtype=complex_dtype)
    zc = z.astype(complex_dtype)

    def accumulate(sums, shift):
        w = zc + shift
        phi = jnp.expm1(w) / w
        out = [phi]
        for k in range(1, max_order):
            phi = (phi - 1.0 / math.factorial(k)) / w
            out.append(phi)
        return tuple(s + p for s, p in zip(sums, out)), None

    zeros = tuple(jnp.zeros(z.shape, complex_dtype) for _ in range(max_order))
    sums, _ = jax.lax.scan(accumulate, zeros, shifts)
    means = tuple(s / num_points for s in sums)
    if is_real:
        means = tuple(m.real.astype(real_dtype) for m in means)
    return means


# --------------------------------------------------------------------------------------------
# Solvers
# --------------------------------------------------------------------------------------------


class AbstractETDRK(diffrax.AbstractSolver):
    r"""Base class of the exponential Runge–Kutta solvers.

    A subclass supplies `order`, `coefficients` (the $\varphi$-weights for one step size) and
    `step_spectral` (one step in Fourier space). This class does the diffrax plumbing: the
    transforms to and from the physical state, and the step-size cache.

    **Coefficient cache.** The weights depend on the step $h = t_1 - t_0$. The solver state holds
    the last $h$ and its weights; a step whose $h$ agrees with it up to the rounding of the times
    themselves ($4\,\varepsilon \max(|t_0|, |t_1|, |h|)$, a few ulp of $t$) reuses them, any
    other step recomputes them (a `jax.lax.cond`). So a constant-step solve computes them once,
    and an adaptive or `StepTo` solve with varying steps stays exact for every step.

    **Dense output.** States at step ends are the scheme's own; `SaveAt(ts=...)` at times inside a
    step uses diffrax's linear interpolation (second-order accurate), so put save times on the
    step grid when the full order matters.

    **Arguments:**

    - `num_contour_points`: $M$ of the contour mean (see `phi_functions`).
    - `contour_radius`: $r$ of the contour mean.
    """

    term_structure: ClassVar = SemiLinearTerm
    interpolation_cls: ClassVar[Callable[..., diffrax.LocalLinearInterpolation]] = (
        diffrax.LocalLinearInterpolation
    )

    num_contour_points: int = eqx.field(default=32, static=True)
    contour_radius: float = eqx.field(default=1.0, static=True)

    @abc.abstractmethod
    def order(self, terms) -> int:
        """Classical order of the scheme."""

    @abc.abstractmethod
    def coefficients(self, linear_symbol: Inexact[Array, "..."], dt) -> Coefficients:
        r"""The exponentials and $\varphi$-weights for step `dt` (``z = linear_symbol * dt``)."""

    @abc.abstractmethod
    def step_spectral(
        self,
        term: SemiLinearTerm,
        t0,
        dt,
        u_hat: Complex[Array, "..."],
        coefficients: Coefficients,
        args: PyTree,
    ) -> Complex[Array, "..."]:
        """One step from ``u_hat`` at ``t0`` to ``t0 + dt`` in Fourier space."""

    def _phis(self, z, max_order):
        return phi_functions(z, max_order, self.num_contour_points, self.contour_radius)

    # ---- diffrax interface -------------------------------------------------------------------

    def init(self, terms: SemiLinearTerm, t0, t1, y0, args):
        # Nothing is computed yet: NaN never matches a step, so the first step fills the cache.
        terms, _ = unwrap_term(terms)
        y_hat = jax.eval_shape(terms.to_spectral, y0)
        real_dtype = jnp.finfo(y_hat.dtype).dtype
        symbol = jax.eval_shape(terms.symbol_for, y_hat)
        shapes = jax.eval_shape(lambda s: self.coefficients(s, jnp.ones((), real_dtype)), symbol)
        empty = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        return jnp.asarray(jnp.nan, real_dtype), empty

    def step(self, terms: SemiLinearTerm, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        terms, direction = unwrap_term(terms)
        cached_dt, cached = solver_state
        real_dtype = cached_dt.dtype
        # diffrax integrates reverse-time problems in negated time; undo that here.
        dt = jnp.asarray(direction * (t1 - t0), real_dtype)
        scale = jnp.maximum(jnp.maximum(jnp.abs(t0), jnp.abs(t1)), jnp.abs(dt)).astype(real_dtype)
        t0 = direction * t0
        reuse = jnp.abs(dt - cached_dt) <= 4 * jnp.finfo(real_dtype).eps * scale
        u_hat = terms.to_spectral(y0)
        symbol = terms.symbol_for(u_hat)
        coeffs = jax.lax.cond(
            reuse,
            lambda: cached,
            lambda: self.coefficients(symbol, dt),
        )
        new_dt = jnp.where(reuse, cached_dt, dt)
        u1_hat = self.step_spectral(terms, t0, dt, u_hat, coeffs, args)
        y1 = terms.to_physical(u1_hat).astype(y0.dtype)
        dense_info = dict(y0=y0, y1=y1)
        return y1, None, dense_info, (new_dt, coeffs), diffrax.RESULTS.successful

    def func(self, terms: SemiLinearTerm, t0, y0, args):
        return terms.vf(t0, y0, args)


class ETDRK1(AbstractETDRK):
    r"""Exponential Euler (ETD1), first order.

    $\hat u_{n+1} = e^{z}\hat u_n + h\varphi_1(z)\hat{\mathcal N}_n$, $z = \hat L h$.
    """

    def order(self, terms):
        return 1

    def coefficients(self, linear_symbol, dt):
        z = linear_symbol * dt
        (phi1,) = self._phis(z, 1)
        return dict(exp=jnp.exp(z), n0=dt * phi1)

    def step_spectral(self, term, t0, dt, u_hat, coefficients, args):
        c = coefficients
        return c["exp"] * u_hat + c["n0"] * term.nonlinear(t0, u_hat, args)


class ETDRK2(AbstractETDRK):
    r"""Cox–Matthews ETD2RK, second order.

    $$a = e^{z}\hat u_n + h\varphi_1(z)\hat{\mathcal N}(\hat u_n, t_n), \qquad
      \hat u_{n+1} = a + h\varphi_2(z)\big(\hat{\mathcal N}(a, t_n + h) - \hat{\mathcal N}(\hat u_n, t_n)\big).$$
    """

    def order(self, terms):
        return 2

    def coefficients(self, linear_symbol, dt):
        z = linear_symbol * dt
        phi1, phi2 = self._phis(z, 2)
        return dict(exp=jnp.exp(z), n0=dt * phi1, correction=dt * phi2)

    def step_spectral(self, term, t0, dt, u_hat, coefficients, args):
        c = coefficients
        n0 = term.nonlinear(t0, u_hat, args)
        a = c["exp"] * u_hat + c["n0"] * n0
        na = term.nonlinear(t0 + dt, a, args)
        return a + c["correction"] * (na - n0)


class ETDRK3(AbstractETDRK):
    r"""Cox–Matthews ETD3RK, third order.

    $$\begin{aligned}
    a &= e^{z/2}\hat u_n + \tfrac h2\varphi_1(\tfrac z2)\hat{\mathcal N}_n, \\
    b &= e^{z}\hat u_n + h\varphi_1(z)\big(2\hat{\mathcal N}(a) - \hat{\mathcal N}_n\big), \\
    \hat u_{n+1} &= e^{z}\hat u_n + h\big[(\varphi_1 - 3\varphi_2 + 4\varphi_3)\hat{\mathcal N}_n
      + (4\varphi_2 - 8\varphi_3)\hat{\mathcal N}(a) + (4\varphi_3 - \varphi_2)\hat{\mathcal N}(b)\big],
    \end{aligned}$$

    with $\hat{\mathcal N}(a)$ at $t_n + h/2$ and $\hat{\mathcal N}(b)$ at $t_n + h$.
    """

    def order(self, terms):
        return 3

    def coefficients(self, linear_symbol, dt):
        z = linear_symbol * dt
        phi1, phi2, phi3 = self._phis(z, 3)
        (half_phi1,) = self._phis(z / 2, 1)
        return dict(
            exp=jnp.exp(z),
            exp_half=jnp.exp(z / 2),
            half=0.5 * dt * half_phi1,
            full=dt * phi1,
            f0=dt * (phi1 - 3 * phi2 + 4 * phi3),
            fa=dt * (4 * phi2 - 8 * phi3),
            fb=dt * (4 * phi3 - phi2),
        )

    def step_spectral(self, term, t0, dt, u_hat, coefficients, args):
        c = coefficients
        n0 = term.nonlinear(t0, u_hat, args)
        a = c["exp_half"] * u_hat + c["half"] * n0
        na = term.nonlinear(t0 + dt / 2, a, args)
        b = c["exp"] * u_hat + c["full"] * (2 * na - n0)
        nb = term.nonlinear(t0 + dt, b, args)
        return c["exp"] * u_hat + c["f0"] * n0 + c["fa"] * na + c["fb"] * nb


class ETDRK4(AbstractETDRK):
    r"""Cox–Matthews ETD4RK, fourth order, with Kassam–Trefethen coefficients.

    $$\begin{aligned}
    a &= e^{z/2}\hat u_n + \tfrac h2\varphi_1(\tfrac z2)\hat{\mathcal N}_n, &
    b &= e^{z/2}\hat u_n + \tfrac h2\varphi_1(\tfrac z2)\hat{\mathcal N}(a), \\
    c &= e^{z/2} a + \tfrac h2\varphi_1(\tfrac z2)\big(2\hat{\mathcal N}(b) - \hat{\mathcal N}_n\big), \\
    \hat u_{n+1} &= e^{z}\hat u_n + h\big[f_1 \hat{\mathcal N}_n + 2 f_2 (\hat{\mathcal N}(a) + \hat{\mathcal N}(b))
      + f_3 \hat{\mathcal N}(c)\big],
    \end{aligned}$$

    $f_1 = \varphi_1 - 3\varphi_2 + 4\varphi_3$, $f_2 = \varphi_2 - 2\varphi_3$,
    $f_3 = 4\varphi_3 - \varphi_2$; $\hat{\mathcal N}(a), \hat{\mathcal N}(b)$ at $t_n + h/2$,
    $\hat{\mathcal N}(c)$ at $t_n + h$.
    """

    def order(self, terms):
        return 4

    def coefficients(self, linear_symbol, dt):
        z = linear_symbol * dt
        phi1, phi2, phi3 = self._phis(z, 3)
        (half_phi1,) = self._phis(z / 2, 1)
        return dict(
            exp=jnp.exp(z),
            exp_half=jnp.exp(z / 2),
            half=0.5 * dt * half_phi1,
            f0=dt * (phi1 - 3 * phi2 + 4 * phi3),
            fab=2 * dt * (phi2 - 2 * phi3),
            fc=dt * (4 * phi3 - phi2),
        )

    def step_spectral(self, term, t0, dt, u_hat, coefficients, args):
        c = coefficients
        n0 = term.nonlinear(t0, u_hat, args)
        a = c["exp_half"] * u_hat + c["half"] * n0
        na = term.nonlinear(t0 + dt / 2, a, args)
        b = c["exp_half"] * u_hat + c["half"] * na
        nb = term.nonlinear(t0 + dt / 2, b, args)
        cc = c["exp_half"] * a + c["half"] * (2 * nb - n0)
        nc = term.nonlinear(t0 + dt, cc, args)
        return c["exp"] * u_hat + c["f0"] * n0 + c["fab"] * (na + nb) + c["fc"] * nc


# `solve` and `rollout` live in `jaxpde.numerics.time_integration` with the other drivers; they
# stay importable from here (``from jaxpde.numerics.etdrk import solve``), resolved lazily since
# that module imports this one.
def __getattr__(name: str):
    if name in ("solve", "rollout"):
        from . import time_integration

        return getattr(time_integration, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
