r"""A fixed number of PCG iterations as a plain differentiable function, for training preconditioners.

A learned preconditioner ``M_θ`` is trained to make CG converge fast. The solution of ``A x = b``
does not depend on ``M_θ``, so a loss on `lineax.linear_solve`'s answer has no gradient in ``θ``
(lineax refuses tangents in its solver); what depends on ``θ`` is the iterate after ``k`` steps.
`unrolled_pcg` runs exactly ``k`` PCG iterations (Hestenes & Stiefel 1952) with `jax.lax.scan`

.. math::

    z_j = M r_j,\quad \gamma_j = r_j^H z_j,\quad p_j = z_j + (\gamma_j / \gamma_{j-1}) p_{j-1},\quad
    \alpha_j = \gamma_j / p_j^H A p_j,\quad x_{j+1} = x_j + \alpha_j p_j,\quad r_{j+1} = r_j - \alpha_j A p_j,

and returns ``x_k`` with the residual norms ``‖r_0‖, …, ‖r_k‖``: a loss such as ``‖r_k‖ / ‖r_0‖``
(the end-to-end loss of learned-preconditioner papers, e.g. Li et al., "Learning preconditioners
for conjugate gradient PDE solvers", ICML 2023) is differentiated by ordinary reverse mode through
the scan — no custom rules, so it composes with `jax.vmap`, `jax.checkpoint` and `fit`.

The iterates are those of `jaxpde.numerics.krylov.ConjugateGradient` for the same ``k`` steps
(without its restarts and true-residual checks, which a converging float64 solve does not
trigger). Once a residual is exactly zero, the remaining steps leave ``x`` unchanged; the
divisions are guarded so that their derivatives stay finite there too.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx
from jaxtyping import Array, Float, PyTree

from ..numerics.preconditioning import AbstractPreconditioner

__all__ = ["unrolled_pcg"]


def _dot(x, y):
    return sum(jnp.sum(jnp.conj(a) * b).real for a, b in zip(jtu.tree_leaves(x), jtu.tree_leaves(y)))


def _axpy(alpha, x, y):
    return jtu.tree_map(lambda a, b: alpha.astype(a.dtype) * a + b, x, y)


def _safe_ratio(numerator, denominator):
    """``n / d``, and ``0`` where ``d = 0`` — with finite derivatives there (the inner `where`
    keeps the division's cotangent from becoming ``0 · ∞``)."""
    ok = denominator != 0
    return jnp.where(ok, numerator / jnp.where(ok, denominator, 1), 0)


def _safe_norm(x):
    """``‖x‖₂`` with a finite derivative at ``x = 0`` (that of ``sqrt`` is infinite there)."""
    square = _dot(x, x)
    positive = square > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, square, 1)), 0)


def _apply_m(preconditioner, operator) -> Callable:
    if preconditioner is None:
        return lambda r: r
    if isinstance(preconditioner, AbstractPreconditioner):
        return preconditioner(operator).mv
    if isinstance(preconditioner, lx.AbstractLinearOperator):
        return preconditioner.mv
    if callable(preconditioner):
        return preconditioner
    raise TypeError(
        "unrolled_pcg: `preconditioner` must be None, an AbstractPreconditioner, a lineax operator or a function "
        f"r -> M r, got {type(preconditioner).__name__}."
    )


def unrolled_pcg(
    operator: lx.AbstractLinearOperator,
    b: PyTree[Array],
    preconditioner: AbstractPreconditioner | lx.AbstractLinearOperator | Callable | None,
    iterations: int,
    x0: PyTree[Array] | None = None,
) -> tuple[PyTree[Array], Float[Array, " iterations+1"]]:
    """Exactly `iterations` PCG steps on ``A x = b`` from `x0`; differentiable in everything.

    **Arguments:**

    - `operator`: ``A``, a lineax operator (Hermitian positive definite for CG to make sense;
      not checked, so an operator built from traced parameters works as it is).
    - `b`: the right-hand side, in ``A``'s output structure.
    - `preconditioner`: ``M`` as an `AbstractPreconditioner` (built from `operator` here, so the
      gradient reaches its parameters and, through ``A``, the operator's), a lineax operator, a
      function ``r ↦ M r`` (e.g. a neural network), or ``None``.
    - `iterations`: ``k ≥ 0``, a Python integer.
    - `x0`: initial guess (default zero).

    **Returns:** ``(x_k, norms)`` with ``norms[j] = ‖b - A x_j‖₂`` (recursive residuals),
    ``j = 0 … k``.
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"unrolled_pcg: `iterations` must be a non-negative integer, got {iterations!r}.")
    if not isinstance(operator, lx.AbstractLinearOperator):
        raise TypeError(f"unrolled_pcg: `operator` must be a lineax operator, got {type(operator).__name__}.")
    apply_m = _apply_m(preconditioner, operator)
    x = jtu.tree_map(jnp.zeros_like, b) if x0 is None else x0
    r = jtu.tree_map(lambda u, v: u - v, b, operator.mv(x))
    z = apply_m(r)
    gamma = _dot(r, z)

    def step(carry, _):
        x, r, p, gamma = carry
        q = operator.mv(p)
        alpha = _safe_ratio(gamma, _dot(p, q))
        x = _axpy(alpha, p, x)
        r = _axpy(-alpha, q, r)
        z = apply_m(r)
        gamma_new = _dot(r, z)
        p = _axpy(_safe_ratio(gamma_new, gamma), p, z)
        return (x, r, p, gamma_new), _safe_norm(r)

    (x, _, _, _), norms = jax.lax.scan(step, (x, r, z, gamma), None, length=iterations)
    return x, jnp.concatenate([_safe_norm(r)[None], norms])
