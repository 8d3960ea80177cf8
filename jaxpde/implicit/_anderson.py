r"""Anderson acceleration: a fixed-point solver that extrapolates from its last ``m`` iterates.

Plain iteration ``z_{k+1} = f(z_k)`` converges linearly with the contraction factor of ``f``,
which for a deep equilibrium layer or a stiff relaxation can be ``0.99``. Anderson (1965) mixes
the last ``m`` evaluations instead: with ``g_i = f(z_i)`` and residuals ``r_i = g_i - z_i``,

.. math::

    \alpha = \arg\min_{\sum_i \alpha_i = 1} \Big\| \sum_{i} \alpha_i r_i \Big\|_2^2
             + \lambda \|\alpha\|_2^2, \qquad
    z_{k+1} = \beta \sum_i \alpha_i g_i + (1 - \beta) \sum_i \alpha_i z_i,

(type-II Anderson mixing in the form of Walker & Ni 2011; the regularised, bordered form is the
one of Bai, Kolter & Koltun 2019, *Deep Equilibrium Models*). With the Gram matrix
``H = R Rᵀ + λ I`` the constrained minimiser is ``α = H⁻¹ 1 / (1ᵀ H⁻¹ 1)``: an ``m × m`` solve per
step, against one evaluation of ``f`` — negligible next to ``f`` for any ``m`` worth using. For a
linear ``f`` it is equivalent to GMRES on ``(I - J) z = b`` (Walker & Ni 2011).

``λ`` is relative (``H`` is normalised by ``max_i ‖r_i‖²`` first) and never below ``100 ε`` of the
working precision, so the regularisation does not depend on the problem's scale and the small
solve stays well posed when the residuals of a converging iteration become collinear (in
float32, ``λ = 10⁻¹⁰`` would be no regularisation at all). Non-finite weights fall back to a
plain iteration step.

`AndersonAcceleration` is an `optimistix.AbstractFixedPointSolver`: it runs in
`optimistix.fixed_point` directly, under any of optimistix's adjoints, and in
`jaxpde.implicit.fixed_point`.
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.flatten_util as jfu
import jax.numpy as jnp
import jax.tree_util as jtu
import optimistix as optx
from jaxtyping import Array, Bool, Float, Int, PyTree, Scalar

__all__ = ["AndersonAcceleration"]


class _AndersonState(eqx.Module):
    iterates: Float[Array, "m n"]  # z_i, flattened, ring buffer
    values: Float[Array, "m n"]  # g_i = f(z_i)
    count: Int[Array, ""]  # evaluations so far (the ring position is count mod m)
    relative_error: Scalar  # norm((g - z) / (atol + rtol |g|)) at the last input


def _flat(tree) -> Array:
    return jfu.ravel_pytree(tree)[0]


class AndersonAcceleration(optx.AbstractFixedPointSolver):
    r"""Anderson-accelerated fixed-point iteration (see the module docstring for the maths).

    ``optimistix.fixed_point(f, AndersonAcceleration(rtol=1e-8, atol=1e-8), z0)`` finds
    ``z* = f(z*)``. Converged when ``norm((f(z) - z) / (atol + rtol |f(z)|)) < 1`` (optimistix's
    fixed-point convention, max norm by default).

    **Arguments:**

    - `rtol`, `atol`: tolerances of the stopping test above.
    - `memory`: ``m ≥ 1``, the number of past iterates mixed (``m = 1`` is damped plain
      iteration). 5 (the default) is the usual choice (DEQ paper).
    - `mixing`: ``β ∈ (0, 1]``; ``1`` mixes the evaluations ``g_i`` only, smaller values damp.
    - `regularisation`: ``λ ≥ 0``, relative Tikhonov weight of the least-squares problem.
    - `norm`: the norm of the stopping test (default `optimistix.max_norm`).
    """

    rtol: float
    atol: float
    memory: int = eqx.field(static=True, default=5)
    mixing: float = 1.0
    regularisation: float = 1e-10
    norm: Callable[[PyTree], Scalar] = optx.max_norm

    def __check_init__(self):
        owner = "AndersonAcceleration"
        if isinstance(self.memory, bool) or not isinstance(self.memory, int) or self.memory < 1:
            raise ValueError(f"{owner}: `memory` must be an integer ≥ 1, got {self.memory!r}.")
        for name in ("rtol", "atol", "mixing", "regularisation"):
            value = getattr(self, name)
            if isinstance(value, (int, float)) and value < 0:
                raise ValueError(f"{owner}: `{name}` must be non-negative, got {value!r}.")
        if isinstance(self.mixing, (int, float)) and not 0 < self.mixing <= 1:
            raise ValueError(f"{owner}: `mixing` must lie in (0, 1], got {self.mixing!r}.")

    def init(self, fn, y, args, options, f_struct, aux_struct, tags) -> _AndersonState:
        del fn, args, options, f_struct, aux_struct, tags
        flat = _flat(y)
        history = jnp.zeros((self.memory, flat.size), flat.dtype)
        return _AndersonState(history, history, jnp.array(0), jnp.array(jnp.inf, jnp.finfo(flat.dtype).dtype))

    def step(self, fn, y, args, options, state: _AndersonState, tags):
        del options, tags
        g, aux = fn(y, args)
        z_flat, unravel = jfu.ravel_pytree(y)
        g_flat = _flat(g)
        slot = state.count % self.memory
        iterates = state.iterates.at[slot].set(z_flat)
        values = state.values.at[slot].set(g_flat)
        count = state.count + 1

        residuals = values - iterates
        valid = jnp.arange(self.memory) < count  # ring slots filled so far
        gram = residuals @ jnp.conj(residuals).T
        pair = valid[:, None] & valid[None, :]
        # Normalise by the largest squared residual (so entries are ≤ 1 whatever the problem's
        # scale), then regularise relative to 1 — never below the working precision, or the
        # nearly collinear residuals of a converging iteration make a singular system.
        scale = jnp.max(jnp.where(valid, jnp.real(jnp.diagonal(gram)), 0))
        scale = jnp.where(scale > 0, scale, jnp.ones_like(scale))
        ridge = jnp.maximum(self.regularisation, 100 * jnp.finfo(scale.dtype).eps)
        # Unfilled slots get an identity block and a zero right-hand side, hence α_i = 0.
        system = jnp.where(pair, gram / scale.astype(gram.dtype), 0) + jnp.diag(jnp.where(valid, ridge, 1).astype(gram.dtype))
        weights = jnp.linalg.solve(system, valid.astype(gram.dtype))
        weights = weights / jnp.sum(weights)
        # A breakdown of the small solve (non-finite weights) falls back to plain iteration.
        plain = (jnp.arange(self.memory) == slot).astype(weights.dtype)
        weights = jnp.where(jnp.all(jnp.isfinite(weights)), weights, plain)
        new_flat = self.mixing * (weights @ values) + (1 - self.mixing) * (weights @ iterates)

        with jax.numpy_dtype_promotion("standard"):
            error = jtu.tree_map(lambda a, b: a - b, g, y)
            tolerance = jtu.tree_map(lambda a: self.atol + self.rtol * jnp.abs(a), g)
            relative_error = self.norm(jtu.tree_map(lambda e, s: e / s, error, tolerance))
        new_state = _AndersonState(iterates, values, count, relative_error)
        return unravel(new_flat), new_state, aux

    def terminate(self, fn, y, args, options, state: _AndersonState, tags) -> tuple[Bool[Array, ""], optx.RESULTS]:
        del fn, y, args, options, tags
        return state.relative_error < 1, optx.RESULTS.successful

    def postprocess(self, fn, y, aux, args, options, state, tags, result) -> tuple[PyTree, Any, dict[str, Any]]:
        del fn, args, options, tags, result
        return y, aux, {"relative_error": state.relative_error}
