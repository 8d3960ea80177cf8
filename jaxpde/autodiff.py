r"""Pointwise differential operators of a function, by automatic differentiation.

The operators of the PDE residuals (PINNs, physics-informed losses) and of manufactured
solutions: gradient, divergence, Laplacian, Hessian, partial and time derivatives, and the
divergence of a flux $\nabla\cdot(a\nabla u)$.

**Calling convention.** Every operator takes a function ``fn(x, *args)`` of **one point** ``x``
of shape ``(d,)`` and returns a new function with the *same* signature. Derivatives are taken
with respect to ``x``; the extra arguments (a time ``t``, parameters) are passed through
unchanged, except by `time_derivative`, which differentiates with respect to the first of them.
``fn`` may return a scalar or an array of any shape ``out`` (a vector-valued unknown such as
Gray–Scott's ``(u, v)``); the derivative axes come last. Operators compose, and batches are a
`jax.vmap` over points::

    from jaxpde import autodiff as ad

    u = lambda x, t: jnp.sin(x[0]) * jnp.cos(x[1]) * jnp.exp(-t)
    r = lambda x, t: ad.time_derivative(u)(x, t) - ad.laplacian(u)(x, t)   # heat residual
    bilaplacian = ad.laplacian(ad.laplacian(u))
    jax.vmap(r)(points, times)

**Laplacian methods.** $\Delta f(x) = \sum_i e_i^\top \nabla^2 f(x)\, e_i$ is computed one of
three ways (``method=``), all exact, differing in cost:

- ``"forward"`` (default): nested `jax.jvp` along each axis, $\tfrac{d^2}{ds^2} f(x + s e_i)$ by
  forward-over-forward, vmapped over the $d$ directions;
- ``"taylor"``: Taylor mode, the same second-order directional derivatives as one jet each
  (`jax.experimental.jet`; Bettencourt, Johnson & Duvenaud, "Taylor-mode automatic
  differentiation for higher-order derivatives in JAX", 2019). jet has rules for common
  primitives only (not ``jnp.prod``, for one): other functions raise `NotImplementedError`;
- ``"forward_over_reverse"``: the trace of ``jacfwd(jacrev(f))``, what
  ``jnp.trace(jax.hessian(f))`` computes and most PINN code writes.

The default is chosen by ``benchmarks/autodiff_laplacian.py`` (the Laplacian of a tanh MLP,
width 128, 3 hidden layers, 4096 points, float32, on 2 shared CPU cores; results in
``benchmarks/results/autodiff_laplacian.json``): nested forward mode is the fastest at
d = 2, 5 and 10 — forward-over-reverse takes 1.16–1.21× as long and Taylor mode 1.47–1.58×
(medians of 21 interleaved rounds) — and it works for every differentiable function. For very high dimensions,
randomised estimators of the trace (the Stochastic Taylor Derivative Estimator, Shi et al.,
NeurIPS 2024) sample a few directions instead of all $d$.
"""

from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
from jax.experimental import jet
from jaxtyping import Array, ArrayLike, Float

__all__ = [
    "LaplacianMethod",
    "as_point",
    "derivative",
    "derivatives",
    "div_flux",
    "divergence",
    "gradient",
    "hessian",
    "laplacian",
    "time_derivative",
    "value_and_laplacian",
]

LaplacianMethod = Literal["forward", "taylor", "forward_over_reverse"]
_METHODS = ("forward", "taylor", "forward_over_reverse")
PointFn = Callable[..., Float[Array, "*out"]]


def as_point(owner: str, x: Float[ArrayLike, " d"], ndim: int | None = None) -> Float[Array, " d"]:
    """``x`` as a floating array of shape ``(d,)`` (``d`` = `ndim` if given), or an error naming `owner`."""
    x = jnp.asarray(x)
    if x.ndim != 1 or (ndim is not None and x.shape != (ndim,)):
        expected = "(d,)" if ndim is None else f"({ndim},)"
        raise ValueError(
            f"{owner}: `x` must be one point of shape {expected}, got shape {x.shape}; use jax.vmap over points."
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def _point(operator: str, x):
    return as_point(f"jaxpde.autodiff.{operator}", x)


def _of_x(fn: PointFn, args: tuple) -> Callable[[Array], Array]:
    return lambda y: jnp.asarray(fn(y, *args))


def gradient(fn: PointFn) -> PointFn:
    r"""$\nabla f$: shape ``(*out, d)``, entry ``[..., i]`` $= \partial_i f$ (reverse mode)."""

    def grad_fn(x, *args):
        return jax.jacrev(_of_x(fn, args))(_point("gradient", x))

    return grad_fn


def divergence(fn: PointFn) -> PointFn:
    r"""$\nabla\cdot F = \sum_i \partial_i F_i$ for ``fn`` returning ``(*out, d)``; shape ``(*out)``."""

    def div_fn(x, *args):
        x = _point("divergence", x)
        f = _of_x(fn, args)
        shape = jax.eval_shape(f, x).shape
        if not shape or shape[-1] != x.shape[0]:
            raise ValueError(
                f"jaxpde.autodiff.divergence: `fn` must return a vector field with a last axis of size "
                f"d = {x.shape[0]}, got shape {shape}."
            )
        return jnp.trace(jax.jacfwd(f)(x), axis1=-2, axis2=-1)

    return div_fn


def hessian(fn: PointFn) -> PointFn:
    r"""$\nabla^2 f$: shape ``(*out, d, d)`` (forward over reverse)."""

    def hessian_fn(x, *args):
        return jax.hessian(_of_x(fn, args))(_point("hessian", x))

    return hessian_fn


def _second_along(f: Callable, x: Array, v: Array, method: str) -> Array:
    """$\\tfrac{d^2}{ds^2} f(x + s v)|_{s=0} = v^\\top \\nabla^2 f(x)\\, v$."""
    if method == "taylor":
        try:
            _, (_, second) = jet.jet(f, (x,), ((v, jnp.zeros_like(v)),))
        except KeyError as error:  # jet's rule table covers common primitives only
            raise NotImplementedError(
                f"jaxpde.autodiff.laplacian: Taylor mode (jax.experimental.jet) has no rule for the primitive "
                f"{error.args[0]} used by `fn`; use method='forward' or 'forward_over_reverse'."
            ) from None
        return second
    return _along(f, x, v, 2)[2]


def _along(f: Callable, x: Array, v: Array, order: int) -> tuple[Array, ...]:
    """``(f, ∂_v f, …, ∂_v^n f)`` at `x` from one nested forward pass (`order` jvps deep).

    Each jvp returns its primal with its tangent, so the lower derivatives come with the
    highest: a residual that needs ``u``, ``u_x`` and ``u_xx`` pays for ``u_xx`` alone. Asked for
    separately, XLA does not merge the passes, and the backward pass of a PINN loss pays for
    each (about half of the step of a Burgers PINN; ``benchmarks/pinn_vs_deepxde.py``).
    """

    def pair(g):
        def both(y):
            values, tangents = jax.jvp(g, (y,), (v,))
            return (*values, tangents[-1])

        return both

    g = lambda y: (f(y),)  # noqa: E731
    for _ in range(order):
        g = pair(g)
    return g(x)


def laplacian(fn: PointFn, method: LaplacianMethod = "forward") -> PointFn:
    r"""$\Delta f = \sum_i \partial_i^2 f$, shape ``(*out)``; see the module docstring for `method`."""
    if method not in _METHODS:
        raise ValueError(f"jaxpde.autodiff.laplacian: `method` must be one of {_METHODS}, got {method!r}.")

    def laplacian_fn(x, *args):
        x = _point("laplacian", x)
        f = _of_x(fn, args)
        if method == "forward_over_reverse":
            return jnp.trace(jax.jacfwd(jax.jacrev(f))(x), axis1=-2, axis2=-1)
        basis = jnp.eye(x.shape[0], dtype=x.dtype)
        return jnp.sum(jax.vmap(lambda v: _second_along(f, x, v, method))(basis), axis=0)

    return laplacian_fn


def derivative(fn: PointFn, axis: int, order: int = 1) -> PointFn:
    r"""$\partial^{n} f/\partial x_{\text{axis}}^{n}$, $n$ = `order` $\ge 1$ (nested forward mode along $e_{\text{axis}}$)."""
    _check_order("derivative", order)

    def derivative_fn(x, *args):
        x = _point("derivative", x)
        _check_axis("derivative", axis, x)
        return _along(_of_x(fn, args), x, _unit(x, axis), order)[-1]

    return derivative_fn


def derivatives(fn: PointFn, axis: int, order: int) -> PointFn:
    r"""``(f, ∂f, …, ∂ⁿf)`` along ``x_axis``, $n$ = `order` $\ge 1$, all from one nested forward pass.

    What a residual such as Burgers' $u_t + u u_x - \nu u_{xx}$ should call: the value and the
    lower derivatives cost nothing beyond the highest (see `derivative`, which returns only it).
    """
    _check_order("derivatives", order)

    def derivatives_fn(x, *args):
        x = _point("derivatives", x)
        _check_axis("derivatives", axis, x)
        return _along(_of_x(fn, args), x, _unit(x, axis), order)

    return derivatives_fn


def value_and_laplacian(fn: PointFn) -> PointFn:
    r"""``(f, Δf)`` from the nested forward passes of `laplacian` (the value comes with them)."""

    def value_and_laplacian_fn(x, *args):
        x = _point("value_and_laplacian", x)
        f = _of_x(fn, args)
        # The value does not depend on the direction: vmap keeps it unbatched, computed once.
        values, _, second = jax.vmap(lambda v: _along(f, x, v, 2))(jnp.eye(x.shape[0], dtype=x.dtype))
        return values[0], jnp.sum(second, axis=0)

    return value_and_laplacian_fn


def _unit(x: Array, axis: int) -> Array:
    return jnp.zeros_like(x).at[axis].set(1)


def _check_order(operator: str, order) -> None:
    if not (isinstance(order, int) and not isinstance(order, bool) and order >= 1):
        raise ValueError(f"jaxpde.autodiff.{operator}: `order` must be a positive integer, got {order!r}.")


def _check_axis(operator: str, axis, x: Array) -> None:
    if not (isinstance(axis, int) and -x.shape[0] <= axis < x.shape[0]):
        raise ValueError(f"jaxpde.autodiff.{operator}: `axis` must be in [0, {x.shape[0]}), got {axis!r}.")


def time_derivative(fn: PointFn) -> PointFn:
    r"""$\partial_t f$ for ``fn(x, t, *rest)``: the derivative in the first argument after ``x``."""

    def dt_fn(x, t, *rest):
        x = _point("time_derivative", x)
        if t is None:
            raise ValueError("jaxpde.autodiff.time_derivative: `t` must be a time (a scalar), got None.")
        t = jnp.asarray(t, dtype=x.dtype)
        return jax.jvp(lambda s: jnp.asarray(fn(x, s, *rest)), (t,), (jnp.ones_like(t),))[1]

    return dt_fn


def div_flux(fn: PointFn, coefficient: PointFn | float) -> PointFn:
    r"""$\nabla\cdot(a\nabla u)$ for ``fn`` $= u$ and `coefficient` $= a$, shape ``(*out)``.

    `coefficient` is a scalar function ``a(x, *args)`` (same extra arguments as ``fn``) or a
    constant. The flux $a\nabla u$ is differentiated as written (forward over reverse), which is
    exact for any smooth $a$, including rapidly varying ones.
    """

    def flux(x, *args):
        a = coefficient(x, *args) if callable(coefficient) else coefficient
        a = jnp.asarray(a)
        if a.ndim != 0:
            raise ValueError(f"jaxpde.autodiff.div_flux: `coefficient` must be a scalar at a point, got shape {a.shape}.")
        return a * gradient(fn)(x, *args)

    def div_flux_fn(x, *args):
        return divergence(flux)(_point("div_flux", x), *args)

    return div_flux_fn
