r"""Learned factorised sparse approximate inverse: ``M = G Gᵀ``, ``G`` lower triangular on ``A``'s pattern.

A sparse approximate inverse applies ``M ≈ A⁻¹`` by mat-vecs alone — no triangular solve, no
sequential level sweep — so every application is two gathers and two segment sums, fully
parallel on a GPU or TPU. The factorised form (FSAI, Kolotilina & Yeremin 1993) keeps it
symmetric positive definite; the learned version predicts ``G``'s entries with a graph network
from the matrix (as in the learned SPAI preconditioners that report 40–53% lower GPU solve
times than diagonal, IC and SPAI).

**Parametrisation** (in ``Â = D^{-1/2} A D^{-1/2}``, ``N`` its strictly lower part, ``δ`` the
network's read-outs, zero at initialisation):

.. math::

    \hat G_{ii} = e^{\delta_i}, \qquad \hat G_{ij} = -\hat A_{ij} + \delta_{ij}\ (i > j), \qquad
    G = D^{-1/2} \hat G, \qquad M = G G^T .

The untrained model is ``Ĝ = I − N``: ``Ĝ Ĝᵀ = I − N − Nᵀ + N Nᵀ``, the first terms of the
Neumann series of ``Â⁻¹ = (I + N + Nᵀ)⁻¹``. ``Ĝ`` is triangular with a positive diagonal, hence
nonsingular, so ``M`` is SPD for any weights (`is_positive_definite`).

**Losses.** ``E_z ‖G Gᵀ A z − z‖² / ‖z‖²`` (`jaxpde.preconditioners._learned.inverse_residual_loss`,
the stochastic ``‖MA − I‖_F``) or the unrolled PCG residual (`unrolled_pcg_loss`, default in
`train_spai`).

**Measured** (trained at 64², unrolled-PCG loss, 300 steps; held-out 12/3 Darcy, float64 CG to
``1e-6``): 105–108 iterations at 64², 214–221 at 128², 441–443 at 256² — about 0.53× Jacobi's,
but training did not improve on the initialisation (104–106, 211–218, 438–440), and on a CPU the
scatter-based mat-vecs make it slower than Jacobi in time. A wider pattern (k-hop) is the
known way to more (not implemented).

**Training recipe**::

    model = train_spai(DarcySystems(size=24, batch=4), steps=300, key=jax.random.key(0))
    solver = ConjugateGradient(rtol=1e-6, preconditioner=model(A))
"""

from typing import ClassVar

import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, PRNGKeyArray

from ..numerics.preconditioning import AbstractPreconditioner
from ._learned import (
    DarcySystems,
    FlatSymmetricOperator,
    GraphNetwork,
    graph_features,
    inverse_residual_loss,
    matrix_graph,
    select_loss,
    train_preconditioner,
)

__all__ = ["LearnedSPAI", "train_spai"]

_LIMIT = 8.0


def _gram_apply(arrays, x: Array) -> Array:
    """``G (Gᵀ x)`` with ``G = diag(scale) (diag(diagonal) + strictly lower `off` at (rows, cols))``."""
    scale, diagonal, off, rows, cols = arrays
    n = x.shape[0]
    v = scale * x
    y = diagonal * v + jax.ops.segment_sum(off * v[rows], cols, n)  # Ĝᵀ v
    return scale * (diagonal * y + jax.ops.segment_sum(off * y[cols], rows, n, indices_are_sorted=True))  # Ĝ y


class LearnedSPAI(AbstractPreconditioner):
    r"""Learned factorised sparse approximate inverse ``M = G Gᵀ`` (module docstring).

    Two sparse mat-vecs per application, on ``A``'s lower pattern. Works on any operator with
    stored entries and a static pattern (jaxpde's stencil operators, a `SparseOperator`, whose
    `pattern` is a static copy of its indices), at any size.

    **Arguments:**

    - `width`, `rounds`: the graph network's hidden width and message-passing rounds.
    - `key`: its initialisation (read-outs start at zero: ``Ĝ = I − N``).
    """

    network: GraphNetwork

    is_positive_definite: ClassVar[bool] = True
    is_linear: ClassVar[bool] = True

    def __init__(self, width: int = 16, rounds: int = 2, *, key: PRNGKeyArray):
        self.network = GraphNetwork(width, rounds, key=key)

    def build(self, operator: lx.AbstractLinearOperator) -> lx.AbstractLinearOperator:
        graph = matrix_graph(operator, type(self).__name__)
        strict = graph.lower[graph.rows[graph.lower] > graph.cols[graph.lower]]
        features = graph_features(graph)
        node, entry = self.network(graph, features, strict)
        diagonal = jnp.exp(jnp.clip(node, -_LIMIT, _LIMIT))
        off = -features.scaled[strict] + entry
        arrays = (1 / features.root_diagonal, diagonal, off, jnp.asarray(graph.rows[strict]), jnp.asarray(graph.cols[strict]))
        return FlatSymmetricOperator(arrays, _gram_apply, operator.in_structure())


def train_spai(
    systems: DarcySystems,
    steps: int,
    key: PRNGKeyArray,
    *,
    loss: str = "pcg",
    width: int = 16,
    rounds: int = 2,
    iterations: int = 10,
    learning_rate: float = 3e-3,
    **fit_options,
) -> LearnedSPAI:
    """A `LearnedSPAI` trained with `jaxpde.training.fit` on the systems `systems` draws.

    `loss`: ``"pcg"`` (unrolled PCG residual after `iterations` steps, default) or
    ``"inverse"`` (``‖G Gᵀ A z − z‖``). `fit_options` go to `fit`.
    """
    objective = select_loss(loss, iterations, {"inverse": inverse_residual_loss}, "train_spai")
    init_key, train_key = jax.random.split(key)
    model = LearnedSPAI(width, rounds, key=init_key)
    return train_preconditioner(model, objective, systems, steps, train_key, learning_rate, **fit_options)
