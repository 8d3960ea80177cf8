r"""Hard constraints: output transforms that make a network satisfy a condition exactly.

A soft constraint adds a loss term and hopes; a hard constraint builds the condition into the
ansatz, so it holds for every parameter value — to floating-point round-off — and its loss term
disappears (Lagaris, Likas & Fotiadis, "Artificial neural networks for solving ordinary and
partial differential equations", IEEE TNN 9, 1998; Sukumar & Srivastava, "Exact imposition of
boundary conditions with distance functions in physics-informed deep neural networks", CMAME
389, 2022). Each constraint wraps a network and keeps its call signature (``u(x)`` or
``u(x, t)``, one point), so it is used wherever the network was:

- `DirichletConstraint`: $\tilde u = g + \varphi\, N$ with $\varphi = 0$ exactly on the Dirichlet
  boundary and $\varphi > 0$ inside (an approximate distance function: `box_distance`,
  `ball_distance`, or the user's own), so $\tilde u = g$ there;
- `InitialCondition`: $\tilde u(x, t) = u_0(x) + \tau(t)\, N(x, t)$ with $\tau(t_0) = 0$:
  $\tau = t - t_0$ (``"linear"``) or the bounded, smooth $\tau = 1 - e^{-(t - t_0)/T}$
  (``"exponential"``, which keeps the network's share $O(1)$ over long horizons).

The functions $g$, $\varphi$, $u_0$ are plain JAX functions of one point with the network's
signature (``u0(x)`` of space alone); they must be differentiable where the PDE residual
differentiates them. Exactness needs $\varphi$ to vanish *in floating point* on the boundary:
products of the coordinate differences $(x_i - a_i)(b_i - x_i)$ do, at the boundary points the
problem samples.
"""

import math
from collections.abc import Callable, Sequence
from typing import Literal

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..autodiff import as_point

__all__ = ["DirichletConstraint", "InitialCondition", "ball_distance", "box_distance"]

PointFn = Callable[..., Float[Array, "..."]]


def _callable(owner: str, name: str, fn):
    if not callable(fn):
        raise TypeError(f"{owner}: `{name}` must be a function of one point, got {type(fn).__name__}.")
    return fn


class DirichletConstraint(eqx.Module):
    r"""$\tilde u(x[, t]) = g(x[, t]) + \varphi(x[, t])\, N(x[, t])$: exactly $g$ where $\varphi = 0$.

    **Arguments:**

    - `network`: the network $N$ (one point in: ``N(x)`` or ``N(x, t)``).
    - `boundary_value`: $g$, a function with the network's signature (or a constant), any
      smooth extension of the Dirichlet data into the domain.
    - `distance`: $\varphi$, with the network's signature, zero on the Dirichlet boundary and
      positive inside (`box_distance`, `ball_distance`, or a signed distance function).

    Only `network` is trained; `boundary_value` and `distance` are fixed functions.
    """

    network: eqx.Module
    boundary_value: PointFn | float = eqx.field(static=True)
    distance: PointFn = eqx.field(static=True)

    def __init__(self, network, boundary_value: PointFn | float, distance: PointFn):
        owner = "DirichletConstraint"
        self.network = _callable(owner, "network", network)
        if not callable(boundary_value) and np.ndim(boundary_value) != 0:
            raise TypeError(f"{owner}: `boundary_value` must be a function or a scalar constant, got {boundary_value!r}.")
        self.boundary_value = boundary_value
        self.distance = _callable(owner, "distance", distance)

    def __call__(self, x: Float[ArrayLike, " d"], *t) -> Float[Array, "..."]:
        out = jnp.asarray(self.network(x, *t))
        g = self.boundary_value(x, *t) if callable(self.boundary_value) else self.boundary_value
        phi = jnp.asarray(self.distance(x, *t))
        if phi.ndim != 0:
            raise ValueError(f"DirichletConstraint: `distance` must return a scalar at a point, got shape {phi.shape}.")
        return jnp.asarray(g, out.dtype) + phi * out


class InitialCondition(eqx.Module):
    r"""$\tilde u(x, t) = u_0(x) + \tau(t)\, N(x, t)$ with $\tau(t_0) = 0$: exactly $u_0$ at $t = t_0$.

    **Arguments:**

    - `network`: the network ``N(x, t)``.
    - `initial_value`: $u_0(x)$, a function of the point ``x`` alone (shape of the output).
    - `t0`: the initial time (default 0).
    - `kind`: ``"linear"``, $\tau = t - t_0$ (the classical ansatz), or ``"exponential"``,
      $\tau = 1 - e^{-(t - t_0)/T}$ (smooth, bounded by 1, $\tau \approx t - t_0$ near $t_0$).
    - `time_scale`: $T > 0$ of the exponential (default 1).
    """

    network: eqx.Module
    initial_value: PointFn = eqx.field(static=True)
    t0: float = eqx.field(static=True)
    kind: Literal["linear", "exponential"] = eqx.field(static=True)
    time_scale: float = eqx.field(static=True)

    def __init__(self, network, initial_value: PointFn, t0: float = 0.0,
                 kind: Literal["linear", "exponential"] = "linear", time_scale: float = 1.0):
        owner = "InitialCondition"
        self.network = _callable(owner, "network", network)
        self.initial_value = _callable(owner, "initial_value", initial_value)
        if not math.isfinite(t0):
            raise ValueError(f"{owner}: `t0` must be finite, got {t0!r}.")
        if kind not in ("linear", "exponential"):
            raise ValueError(f"{owner}: `kind` must be 'linear' or 'exponential', got {kind!r}.")
        if not (math.isfinite(time_scale) and time_scale > 0):
            raise ValueError(f"{owner}: `time_scale` must be positive and finite, got {time_scale!r}.")
        self.t0, self.kind, self.time_scale = float(t0), kind, float(time_scale)

    def envelope(self, t) -> Float[Array, ""]:
        r"""$\tau(t)$, zero at $t_0$."""
        elapsed = jnp.asarray(t) - self.t0
        if self.kind == "linear":
            return elapsed
        return -jnp.expm1(-elapsed / self.time_scale)

    def __call__(self, x: Float[ArrayLike, " d"], t) -> Float[Array, "..."]:
        if t is None:
            raise ValueError("InitialCondition: `t` must be a time (a scalar), got None.")
        out = jnp.asarray(self.network(x, t))
        tau = self.envelope(jnp.asarray(t, out.dtype))
        return jnp.asarray(self.initial_value(x), out.dtype) + tau * out


def _bounds(owner: str, lower, upper, axes):
    lower, upper = np.atleast_1d(np.asarray(lower, float)), np.atleast_1d(np.asarray(upper, float))
    if lower.shape != upper.shape or lower.ndim != 1 or not np.all(lower < upper):
        raise ValueError(f"{owner}: `lower` and `upper` must be equal-length bounds with lower < upper, "
                         f"got {lower.tolist()} and {upper.tolist()}.")
    axes = tuple(range(lower.size)) if axes is None else tuple(int(a) for a in axes)
    if len(set(axes)) != len(axes) or any(not 0 <= a < lower.size for a in axes):
        raise ValueError(f"{owner}: `axes` must be distinct indices in [0, {lower.size}), got {axes!r}.")
    return lower, upper, axes


def box_distance(lower: Sequence[float] | float, upper: Sequence[float] | float,
                 axes: Sequence[int] | None = None) -> PointFn:
    r"""$\varphi(x) = \prod_{i \in \text{axes}} \frac{(x_i - a_i)(b_i - x_i)}{((b_i - a_i)/2)^2}$ on the box $\prod_i [a_i, b_i]$.

    Zero exactly on the faces $x_i \in \{a_i, b_i\}$ of the listed `axes` (all by default),
    positive inside, 1 at the centre; smooth (a polynomial). Leave periodic axes out of `axes`.
    Returns a function ``phi(x, *t)`` (extra arguments, a time, are ignored).
    """
    lower, upper, axes = _bounds("box_distance", lower, upper, axes)

    def phi(x, *_):
        x = as_point("box_distance", x, lower.size)
        a, b = jnp.asarray(lower, x.dtype), jnp.asarray(upper, x.dtype)
        factors = (x - a) * (b - x) / ((b - a) / 2) ** 2
        return jnp.prod(factors[jnp.asarray(axes)])

    return phi


def ball_distance(center: Sequence[float], radius: float) -> PointFn:
    r"""$\varphi(x) = 1 - |x - c|^2 / r^2$ on the ball $|x - c| \le r$: zero on the sphere, 1 at the centre.

    Returns a function ``phi(x, *t)``. (On the sphere the float value is round-off, not 0: the
    boundary points themselves are rounded; the constraint then holds to that round-off.)
    """
    center = np.atleast_1d(np.asarray(center, float))
    if center.ndim != 1 or not np.all(np.isfinite(center)):
        raise ValueError(f"ball_distance: `center` must be a finite point of shape (d,), got {center.tolist()!r}.")
    if not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"ball_distance: `radius` must be positive and finite, got {radius!r}.")

    def phi(x, *_):
        x = as_point("ball_distance", x, center.size)
        return 1 - jnp.sum((x - jnp.asarray(center, x.dtype)) ** 2) / radius**2

    return phi
