r"""Causal weighting of the residual loss over time (Wang, Sankaran & Perdikaris, "Respecting
causality for training physics-informed neural networks", CMAME 2024, arXiv 2022).

A PINN for an evolution equation minimises the residual over the whole space–time cylinder at
once, and can fit late times before the solution there is determined by the early ones; it then
converges to a wrong (often trivial) solution. Causal training splits $[t_0, t_1]$ into
`chunks` equal intervals with residual losses $\mathcal L_1, \dots, \mathcal L_M$
(each the mean of $r^2$ over the residual points whose time falls in it) and minimises

.. math::

    \mathcal L_r = \frac1M \sum_{i=1}^M w_i \mathcal L_i,\qquad
    w_i = \operatorname{stop\_gradient}\Big(\exp\big(-\varepsilon \textstyle\sum_{k<i}\mathcal L_k\big)\Big),

so $w_1 = 1$ and a chunk is trained only once every earlier chunk is resolved. $\varepsilon$
(`epsilon`) sets how strictly: the paper uses $\varepsilon \in [10^{-2}, 10^2]$ and stops raising
it when $\min_i w_i > 0.99$ (causality respected). An empty chunk contributes ``0``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["CausalWeighting"]


class CausalWeighting(eqx.Module):
    """Causal weights over `chunks` time intervals of `t_span` (default: the span of the points' times).

    - ``chunk_losses(residual, t) -> (chunks,)``: $\\mathcal L_i$, the mean of $r^2$ per chunk
      (a vector residual ``(n, c)`` averages its components too).
    - ``weights(chunk_losses) -> (chunks,)``: $w_i$, under `stop_gradient`.
    - ``loss(residual, t) -> (scalar, weights)``: $\\mathcal L_r$ and the weights.
    """

    epsilon: float = eqx.field(static=True)
    chunks: int = eqx.field(static=True)
    t_span: tuple[float, float] | None = eqx.field(static=True, default=None)
    term: str = eqx.field(static=True, default="residual")

    def __check_init__(self):
        if not (isinstance(self.epsilon, (int, float)) and self.epsilon >= 0):
            raise ValueError(f"CausalWeighting: `epsilon` must be a number >= 0, got {self.epsilon!r}.")
        if not (isinstance(self.chunks, int) and not isinstance(self.chunks, bool) and self.chunks >= 1):
            raise ValueError(f"CausalWeighting: `chunks` must be an integer >= 1, got {self.chunks!r}.")
        if self.t_span is not None and not (len(self.t_span) == 2 and self.t_span[0] < self.t_span[1]):
            raise ValueError(f"CausalWeighting: `t_span` must be (t0, t1) with t0 < t1, got {self.t_span!r}.")

    def chunk_index(self, t: Float[Array, " n"]) -> Array:
        """The chunk of each time, ``0 … chunks − 1`` (the right end belongs to the last chunk)."""
        if self.t_span is None:
            t0, t1 = jnp.min(t), jnp.max(t)
        else:
            t0, t1 = self.t_span
        position = (t - t0) / jnp.maximum(t1 - t0, jnp.finfo(t.dtype).tiny)
        return jnp.clip(jnp.floor(position * self.chunks), 0, self.chunks - 1).astype(jnp.int32)

    def chunk_losses(self, residual: Float[Array, "n *c"], t: Float[Array, " n"]) -> Float[Array, " chunks"]:
        if t is None:
            raise ValueError("CausalWeighting: the residual points have no time (`t` is None); causal weights need a time-dependent problem.")
        if residual.shape[:1] != t.shape:
            raise ValueError(f"CausalWeighting: `residual` must have one row per time, got shapes {residual.shape} and {t.shape}.")
        squares = jnp.mean(jnp.square(residual).reshape(residual.shape[0], -1), axis=1)
        index = self.chunk_index(t)
        sums = jax.ops.segment_sum(squares, index, num_segments=self.chunks)
        counts = jax.ops.segment_sum(jnp.ones_like(squares), index, num_segments=self.chunks)
        return sums / jnp.maximum(counts, 1)

    def weights(self, chunk_losses: Float[Array, " chunks"]) -> Float[Array, " chunks"]:
        earlier = jnp.cumsum(chunk_losses) - chunk_losses  # Σ_{k<i} L_k
        return jax.lax.stop_gradient(jnp.exp(-self.epsilon * earlier))

    def loss(self, residual, t) -> tuple[Float[Array, ""], Float[Array, " chunks"]]:
        losses = self.chunk_losses(residual, t)
        w = self.weights(losses)
        return jnp.mean(w * losses), w
