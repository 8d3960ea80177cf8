r"""Iterative refinement with float-float residuals: float64-quality solutions in float32 arithmetic.

A float32 Krylov solve of ``A x = b`` stops at the float32 floor: the computed residual
``fl(b - A x)`` carries an error of order ``ε₃₂ (|A| |x|)``, so the iterate's error cannot drop
below about ``ε₃₂ κ(A)`` in the worst case (measured for the FNO Darcy operator at ``251²``,
``κ ≈ 10⁵``: relative L2 errors up to ``1.2·10⁻⁵``). Classical iterative refinement (Wilkinson
1963; Moler 1967) removes that floor by computing the residual in a higher precision and solving
only for the *correction* in the working precision:

.. math::

    r_k = b - A x_k \ \text{(extended precision)}, \qquad
    A d_k = \mathrm{fl}(r_k) \ \text{(float32, to a modest tolerance)}, \qquad
    x_{k+1} = x_k + d_k \ \text{(extended precision)}.

When the correction solve has relative accuracy ``δ < 1``, the error contracts by about ``δ``
per sweep until it reaches the accuracy of the residual — here float-float, about ``ε₃₂²`` —
and the limit is the *correctly rounded* float32 solution of the given float32 matrix.

`MixedPrecisionRefinement` (in `jaxpde.numerics.krylov`) does this with float64 residuals and
needs ``jax_enable_x64``. TPUs have no fast float64, and users on them keep x64 off; this module
gets the extended precision from float32 alone, as a *float-float* (double-word) number
``x = hi + lo`` with ``|lo| ≤ ulp(hi)/2`` (Dekker 1971; Joldes, Muller & Popescu, "Tight and
rigorous error bounds for basic building blocks of double-word arithmetic", ACM TOMS 2017):

- `two_sum` (Knuth's TwoSum): ``s + e = a + b`` exactly, ``s = fl(a + b)``, six flops.
- `two_product` (Dekker's TwoProduct): ``p + e = a · b`` exactly, ``p = fl(a · b)``. The
  operands are split into 12-bit halves by **masking the low 12 mantissa bits** rather than by
  Veltkamp's ``c = 4097 a; a_hi = c - (c - a)``: a compiler that contracts ``4097 a - a`` into a
  fused multiply-add (XLA may, on GPU) breaks Veltkamp's split, whereas with masked halves every
  partial product is exact in float32, so its result is the same with or without contraction.
  `tests/numerics/test_refinement.py` checks both transforms exactly, under `jax.jit`.
- `FloatFloat` sums: the accurate double-word addition (Joldes et al., Algorithm 6).

`diffusion_residual` is ``b - A x`` for a `DiffusionOperator` (the Darcy and Poisson matrices)
in its flux form, the operator `DiffusionOperator.mv` applies (float32 face weights, exact
arithmetic), every product split by `two_product` and every sum kept in float-float, so it is
exact up to ``O(ε₃₂²)`` relative to the terms: the refined solution is the correctly rounded
solution of that matrix. `refine` runs the sweeps with any correction solver.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .stencils import DiffusionOperator

__all__ = ["FloatFloat", "two_sum", "two_product", "diffusion_residual", "refine"]

# Float32 keeps 23 explicit mantissa bits; clearing the low 12 leaves a 12-bit significand (the
# implicit bit included), and the remainder a - a_hi fits in 12 bits too, so every product of
# halves (≤ 24 bits) is exact in float32.
_SPLIT_MASK = {jnp.dtype(jnp.float32): (jnp.uint32, 0xFFFFF000)}


def two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """``(s, e)`` with ``s = fl(a + b)`` and ``s + e = a + b`` exactly (Knuth's TwoSum)."""
    s = a + b
    b_virtual = s - a
    a_virtual = s - b_virtual
    return s, (a - a_virtual) + (b - b_virtual)


def _fast_two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    # Exact for |a| ≥ |b| (Dekker's FastTwoSum): three flops instead of six.
    s = a + b
    return s, b - (s - a)


def _split(a: Array) -> tuple[Array, Array]:
    """``a = hi + lo`` exactly, both with at most 12 significant bits (float32 only)."""
    unsigned, mask = _SPLIT_MASK[jnp.dtype(a.dtype)]
    hi = jax.lax.bitcast_convert_type(jax.lax.bitcast_convert_type(a, unsigned) & unsigned(mask), a.dtype)
    return hi, a - hi


def two_product(a: Array, b: Array) -> tuple[Array, Array]:
    """``(p, e)`` with ``p = fl(a · b)`` and ``p + e = a · b`` exactly (Dekker's TwoProduct).

    float32 operands (see the module docstring for the FMA-proof split); exact unless ``a · b``
    underflows or overflows.
    """
    if jnp.dtype(a.dtype) not in _SPLIT_MASK or jnp.dtype(b.dtype) != jnp.dtype(a.dtype):
        raise TypeError(f"two_product: `a` and `b` must both be float32 arrays, got {a.dtype} and {b.dtype}.")
    p = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


class FloatFloat(eqx.Module):
    r"""A float-float (double-word) array ``hi + lo``: about 48 significant bits from float32 pairs.

    `value` rounds it to one float32 array (``fl(hi + lo)``, correctly rounded when normalised).
    """

    hi: Float[Array, "..."]
    lo: Float[Array, "..."]

    @classmethod
    def of(cls, x: Array) -> "FloatFloat":
        return cls(x, jnp.zeros_like(x))

    @property
    def value(self) -> Array:
        return self.hi + self.lo

    def __neg__(self) -> "FloatFloat":
        return FloatFloat(-self.hi, -self.lo)

    def __add__(self, other: "FloatFloat | Array") -> "FloatFloat":
        if isinstance(other, FloatFloat):
            # Accurate double-word + double-word (Joldes, Muller & Popescu 2017, Algorithm 6).
            sh, sl = two_sum(self.hi, other.hi)
            th, tl = two_sum(self.lo, other.lo)
            vh, vl = _fast_two_sum(sh, sl + th)
            return FloatFloat(*_fast_two_sum(vh, tl + vl))
        # double-word + float (Algorithm 4)
        sh, sl = two_sum(self.hi, other)
        return FloatFloat(*_fast_two_sum(sh, self.lo + sl))

    def __sub__(self, other: "FloatFloat | Array") -> "FloatFloat":
        return self + (-other)


def _times(weight: Array, x: FloatFloat) -> FloatFloat:
    """``weight · (x.hi + x.lo)`` for a float32 `weight`: ``weight · hi`` exactly, plus ``weight · lo``."""
    return FloatFloat(*two_product(weight, x.hi)) + weight * x.lo


def _shifted(x: FloatFloat, axis: int, periodic: bool) -> tuple[FloatFloat, FloatFloat]:
    """The two ends of every face along `axis`, ``(x_lower, x_upper)``: periodic faces ``i → i+1 (mod
    n)``; Dirichlet faces ``0 … n`` with the zero wall values outside."""
    if periodic:
        upper = jax.tree_util.tree_map(lambda v: jnp.roll(v, -1, axis=axis), x)
        return x, upper
    pad = [(0, 0)] * x.hi.ndim
    pad[axis] = (1, 1)
    padded = jax.tree_util.tree_map(lambda v: jnp.pad(v, pad), x)
    n = padded.hi.shape[axis]
    lower = jax.tree_util.tree_map(lambda v: jax.lax.slice_in_dim(v, 0, n - 1, axis=axis), padded)
    upper = jax.tree_util.tree_map(lambda v: jax.lax.slice_in_dim(v, 1, n, axis=axis), padded)
    return lower, upper


def diffusion_residual(operator: DiffusionOperator, b: Float[Array, "*shape"], x: FloatFloat) -> FloatFloat:
    r"""``b - A x`` in float-float for a float32 `DiffusionOperator` ``A`` and ``x = x.hi + x.lo``.

    ``A`` is the operator `DiffusionOperator.mv` applies, in exact arithmetic: the flux form

    .. math::

        (A x)_i = \sum_{f \ni i} w_f\,(x_i - x_{j(f)}) + σ x_i

    over the faces ``f`` of node ``i`` (``j(f)`` the node across ``f``; zero beyond a Dirichlet
    wall), with the float32 face weights ``w_f = a_f / h²`` — the matrix with off-diagonal
    entries ``-w_f`` and diagonal ``Σ_f w_f + σ`` summed *exactly*, not rounded to float32.
    Every difference ``x_{j} - x_i`` is formed in float-float, every product by a weight split
    exactly by `two_product`, every sum kept in float-float: the result is exact to
    ``O(ε₃₂²) Σ_f |w_f (x_i - x_j)|``. (Rounding the diagonal to float32, as
    `DiffusionOperator.to_sparse` does, moves the 12/3 Darcy solution at ``251²`` by about
    ``3·10⁻⁶`` relative — a different matrix, so refinement works with this exact one.)
    """
    if not isinstance(operator, DiffusionOperator):
        raise TypeError(f"diffusion_residual: `operator` must be a DiffusionOperator, got {type(operator).__name__}.")
    if jnp.dtype(operator.dtype) != jnp.float32:
        raise TypeError(f"diffusion_residual: `operator` must be float32, got {operator.dtype}.")
    shape = operator.grid.shape
    for name, value in (("b", b), ("x.hi", x.hi), ("x.lo", x.lo)):
        if value.shape != shape or value.dtype != jnp.float32:
            raise ValueError(f"diffusion_residual: `{name}` must be float32 of shape {shape}, got {value.dtype}{value.shape}.")
    periodic = operator.grid.boundary == "periodic"
    total = FloatFloat.of(b)
    if operator.shift:
        total = total - _times(jnp.full(shape, operator.shift, jnp.float32), x)
    for axis, w in enumerate(operator.weights):
        lower, upper = _shifted(x, axis, periodic)
        flux = _times(w, upper - lower)  # w_f (x_upper - x_lower) on every face
        if periodic:
            # face i joins nodes i and i+1: node i gains flux_i - flux_{i-1}
            total = total + flux - jax.tree_util.tree_map(lambda v: jnp.roll(v, 1, axis=axis), flux)
        else:
            # face f joins nodes f-1 and f (faces 0 and n at the walls): node i gains flux_{i+1} - flux_i
            n = shape[axis]
            take = lambda start: jax.tree_util.tree_map(lambda v: jax.lax.slice_in_dim(v, start, start + n, axis=axis), flux)  # noqa: E731
            total = total + take(1) - take(0)
    return total


def refine(
    residual: Callable[[Array, FloatFloat], FloatFloat],
    solve: Callable[[Array], Array],
    b: Float[Array, "*shape"],
    steps: int,
    x0: Float[Array, "*shape"] | None = None,
) -> FloatFloat:
    r"""`steps` sweeps of iterative refinement; returns ``x`` as a `FloatFloat` (``.value`` rounds it).

    Sweep ``k``: ``r = residual(b, x)`` (float-float), ``d = solve(fl(r))`` (any float32 solver:
    a few preconditioned CG iterations suffice, their relative accuracy ``δ`` is the error's
    contraction per sweep), ``x ← x + d`` in float-float. `x0` (default zero) is the float32
    starting solution — usually one ``solve(b)``.

    **Arguments:**

    - `residual`: ``(b, x) ↦ b - A x`` in float-float (`diffusion_residual` with its operator
      bound, e.g. ``functools.partial(diffusion_residual, A)``).
    - `solve`: ``r ↦ d ≈ A⁻¹ r`` in float32.
    - `b`: the right-hand side; `steps`: a non-negative Python int; `x0`: as above.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"refine: `steps` must be a non-negative int, got {steps!r}.")
    x = FloatFloat.of(jnp.zeros_like(b) if x0 is None else x0)

    def sweep(_, x):
        return x + solve(residual(b, x).value)

    # A loop, not an unrolled Python for: the correction solve (a Krylov while-loop) compiles once.
    return jax.lax.fori_loop(0, steps, sweep, x)
