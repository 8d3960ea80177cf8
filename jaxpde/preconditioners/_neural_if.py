r"""Neural incomplete factorisation: a graph network predicts ``L`` on ``A``'s lower pattern, ``M = (L Lᵀ)⁻¹``.

NeuralIF (Häusner, Öktem & Sjölund, "Neural incomplete factorization: learning preconditioners
for the conjugate gradient method", TMLR 2024) and Li, Chen et al. ("Learning preconditioners
for conjugate gradient PDE solvers", ICML 2023): an incomplete Cholesky factor ``L`` with the
sparsity of ``A``'s lower triangle, but with entries predicted by message passing on the matrix
graph (`jaxpde.preconditioners._learned.GraphNetwork`) instead of computed by IC(0)'s
recurrence. Applying ``M = L^{-T} L^{-1}`` costs two level-scheduled sparse triangular solves,
the same as IC(0).

**Parametrisation** (scale-free: in ``Â = D^{-1/2} A D^{-1/2}``, ``N`` its strictly lower part):

.. math::

    \hat L_{ii} = e^{\delta_i}, \qquad \hat L_{ij} = \hat A_{ij} + \delta_{ij}\ (i > j), \qquad
    L = D^{1/2} \hat L,

with ``δ`` the network's read-outs (zero at initialisation, so the untrained model is
``L̂ = I + N``: ``L̂ L̂ᵀ = Â + N Nᵀ``, symmetric Gauss–Seidel). The diagonal is positive by
construction, so ``L`` is nonsingular and ``M`` is symmetric positive definite for any weights:
`NeuralIF` declares `is_positive_definite` and goes to CG. ``L`` has exactly ``A``'s lower
pattern (entries that happen to be zero are still stored).

**Losses.** `neural_if_loss` is NeuralIF's matrix-free stochastic loss
``E_z ‖L̂ L̂ᵀ z − Â z‖² / ‖Â z‖²`` (``z ~ N(0, I)``; an unbiased estimate of a weighted
``‖L̂L̂ᵀ − Â‖_F²`` that needs no triangular solve); `jaxpde.preconditioners._learned.unrolled_pcg_loss`
trains end to end through the solves.

**Measured** (trained at 64² on 12/3 Darcy with the unrolled-PCG loss, 300 steps of 4 systems;
held-out coefficients, float64 CG to ``1e-6``): 30 iterations at 64², 50–53 at 128², 90–92 at
256² — against IC(0)'s 60–61, 121–126, 251–252, Jacobi's 196–200, 398–411, 829–832 and the
untrained (SGS) model's 70–72, 142–146, 293–294. The learned factor grows like ``n^{1/2}``
rather than ``n`` per doubling — the behaviour of a *modified* incomplete factorisation. On a CPU
its time is IC(0)'s or above (the graph network's inference and the sequential level sweeps),
above Jacobi's.

**Training recipe** (`train_neural_if`)::

    systems = DarcySystems(size=64, batch=4)            # random 12/3 Darcy coefficients per step
    model = train_neural_if(systems, steps=300, key=jax.random.key(0))   # loss="pcg", 10 unrolled steps
    solver = ConjugateGradient(rtol=1e-6, preconditioner=model(A))   # any A with the same kind of graph
"""

from typing import ClassVar

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jax.experimental import sparse as jsparse
from jaxtyping import Array, Float, PRNGKeyArray

from ..numerics.preconditioning import AbstractPreconditioner
from ..numerics.sparse import SparseOperator
from ._learned import DarcySystems, GraphNetwork, graph_features, matrix_graph, select_loss, train_preconditioner
from ._triangular import SymmetricTriangularOperator, TriangularSolve, lower_schedules

__all__ = ["NeuralIF", "neural_if_loss", "train_neural_if"]

_LIMIT = 8.0  # |δ_i| ≤ 8: the diagonal stays within e^{±8}, finite in float32 and bfloat16


class NeuralIF(AbstractPreconditioner):
    r"""Learned incomplete Cholesky ``A ≈ L Lᵀ``, ``L`` on ``A``'s lower pattern; ``M = L^{-T} L^{-1}``.

    See the module docstring for the parametrisation and losses. Works on any operator with
    stored entries and a static pattern (jaxpde's stencil operators, a `SparseOperator`, whose
    `pattern` is a static copy of its indices), of any size: the network is local and
    scale-free, so a model trained on 64² Darcy matrices applies to 256² ones (see the measured
    figures in the module docstring).

    **Arguments:**

    - `width`, `rounds`: the graph network's hidden width and number of message-passing rounds.
    - `key`: its initialisation (the read-outs start at zero: the untrained model is symmetric
      Gauss–Seidel).
    """

    network: GraphNetwork

    is_positive_definite: ClassVar[bool] = True
    is_linear: ClassVar[bool] = True

    def __init__(self, width: int = 16, rounds: int = 2, *, key: PRNGKeyArray):
        self.network = GraphNetwork(width, rounds, key=key)

    def scaled_factor(self, operator: lx.AbstractLinearOperator):
        """``(graph, lower pattern, L̂ strictly-lower values, L̂ diagonal, D^{1/2})`` for ``operator``."""
        owner = type(self).__name__
        graph = matrix_graph(operator, owner)
        lower, _, _ = lower_schedules(graph.entries)
        features = graph_features(graph)
        source = np.asarray(lower.source, np.int32)  # int32: see MatrixGraph
        node, entry = self.network(graph, features, source)
        diagonal = jnp.exp(jnp.clip(node, -_LIMIT, _LIMIT))
        off = features.scaled[source] + entry
        return graph, lower, off, diagonal, features.root_diagonal

    def factor(self, operator: lx.AbstractLinearOperator) -> SparseOperator:
        """``L`` as a `SparseOperator` on flat vectors (lower pattern of ``A``, diagonal included)."""
        graph, lower, off, diagonal, root = self.scaled_factor(operator)
        rows = np.concatenate([lower.rows, np.arange(graph.n)])
        cols = np.concatenate([lower.cols, np.arange(graph.n)])
        values = jnp.concatenate([root[lower.rows] * off, root * diagonal])
        matrix = jsparse.BCOO((values, jnp.asarray(np.stack([rows, cols], axis=1).astype(np.int32))), shape=(graph.n,) * 2)
        return SparseOperator(matrix, lx.lower_triangular_tag)

    def build(self, operator: lx.AbstractLinearOperator) -> lx.AbstractLinearOperator:
        graph, lower, off, diagonal, root = self.scaled_factor(operator)
        _, forward, backward = lower_schedules(graph.entries)  # cached: no second host pass
        # L = D^{1/2} L̂: row i of L is row i of L̂ times √d_i.
        off = root[lower.rows] * off
        diagonal = root * diagonal
        solve = TriangularSolve.build(forward, off, diagonal)
        solve_transposed = TriangularSolve.build(backward, off, diagonal)
        return SymmetricTriangularOperator(solve, solve_transposed, None, jnp.ones((), diagonal.dtype), operator.in_structure())


def neural_if_loss(model: NeuralIF, operator: lx.AbstractLinearOperator, key: PRNGKeyArray, probes: int = 4) -> Float[Array, ""]:
    r"""NeuralIF's stochastic loss ``E_z ‖L̂ L̂ᵀ z − Â z‖² / ‖Â z‖²`` in the scaled matrix ``Â``."""
    graph, lower, off, diagonal, _ = model.scaled_factor(operator)
    n = graph.n
    scaled = graph_features(graph).scaled
    z = jax.random.normal(key, (probes, n), diagonal.dtype)

    def lower_transpose_mv(v):  # L̂ᵀ v
        return diagonal * v + jax.ops.segment_sum(off * v[lower.rows], lower.cols, n)

    def lower_mv(v):  # L̂ v
        return diagonal * v + jax.ops.segment_sum(off * v[lower.cols], lower.rows, n)

    def a_mv(v):
        return jax.ops.segment_sum(scaled * v[graph.cols], graph.rows, n, indices_are_sorted=True)

    def one(v):
        az = a_mv(v)
        r = lower_mv(lower_transpose_mv(v)) - az
        return jnp.sum(r**2) / jnp.sum(az**2)

    return jnp.mean(jax.vmap(one)(z))


def train_neural_if(
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
) -> NeuralIF:
    """A `NeuralIF` trained with `jaxpde.training.fit` on the systems `systems` draws.

    `loss` is ``"pcg"`` (the end-to-end residual after `iterations` unrolled PCG steps, the
    default: it targets CG's convergence directly) or ``"factorisation"`` (NeuralIF's
    ``‖L Lᵀ z − A z‖``, cheaper per step). `fit_options` go to `fit`.
    """
    objective = select_loss(loss, iterations, {"factorisation": neural_if_loss}, "train_neural_if")
    init_key, train_key = jax.random.split(key)
    model = NeuralIF(width, rounds, key=init_key)
    return train_preconditioner(model, objective, systems, steps, train_key, learning_rate, **fit_options)
