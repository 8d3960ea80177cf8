r"""Shared pieces of the learned preconditioners: the matrix graph, its features, a message-passing
network, the training losses, the Darcy system sampler and the `fit` recipe.

**The matrix graph.** A sparse SPD matrix ``A`` is a graph: one node per unknown, one edge per
stored off-diagonal entry. The graph preconditioners (`NeuralIF`, `LearnedSPAI`) read it with
`matrix_graph`, on top of the entry reader of the classical preconditioners
(`jaxpde.preconditioners._triangular.entries`): the *pattern* is host-side NumPy, known at
trace time, and the *values* may be traced (differentiable, inside `jax.jit` and `jax.vmap`). A
static pattern is what makes a level-scheduled triangular solve and a gather/segment-sum mat-vec
compile to fixed-shape programs; a stencil operator's follows from its grid, a `SparseOperator`'s
is its static field `pattern` (a host copy of its indices, which are traced inside `jit`).

**Scale-free features.** Everything the networks see is in the symmetrically scaled matrix
``Â = D^{-1/2} A D^{-1/2}`` (``D = diag A``, so ``Â_ii = 1``): a matrix and its multiples, or a
grid problem at ``h`` and ``h/2``, look alike, which is what lets a model trained at 64² run at
256². Node features are row statistics of ``Â`` (off-diagonal sum, absolute sum, largest
entry); edge features are ``Â_ij`` and the orientation ``sign(i - j)`` (a triangular factor
depends on the ordering).

**Losses** (each takes the preconditioner, one operator and a key; average over a batch):

- `inverse_residual_loss`: ``E_z ‖M A z − z‖² / ‖z‖²``, ``z ~ N(0, I)`` — the stochastic
  Frobenius norm of ``M A − I`` (for ``M = G Gᵀ`` this is ``‖G Gᵀ A z − z‖``, the SPAI loss).
- `unrolled_pcg_loss`: ``log(‖r_k‖ / ‖r_0‖)`` after ``k`` PCG iterations from ``x_0 = 0`` on a
  random right-hand side — the end-to-end objective (Li et al., ICML 2023, train through the
  solver), through `jaxpde.preconditioners.unrolled_pcg` (a fixed iteration count: a plain
  differentiable scan).
- The factorisation loss ``‖L Lᵀ z − A z‖`` is `jaxpde.preconditioners._neural_if.neural_if_loss`
  and DCDM's scale-invariant ``‖r − α A f(r)‖`` is `jaxpde.preconditioners._dcdm.dcdm_loss`.

**Training.** `DarcySystems` is a `fit` sampler: per step it draws a batch of FNO-Darcy
``12/3`` coefficients (`jaxpde.data.DarcyConfig`'s thresholded cosine field) on an interior
grid; `train_preconditioner` runs `jaxpde.training.fit` on ``mean_b loss(model, A_b, key_b)``.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ..grids import Grid
from ..numerics.stencils import DiffusionOperator
from ..numerics.preconditioning import AbstractPreconditioner
from ._triangular import AbstractSymmetricOperator, entries

__all__ = [
    "DarcySystems",
    "GraphNetwork",
    "MatrixGraph",
    "inverse_residual_loss",
    "matrix_graph",
    "select_loss",
    "train_preconditioner",
    "unrolled_pcg_loss",
]


# ----------------------------------------------------------------------------------------------
# The matrix graph: host-side pattern, traced values.
# ----------------------------------------------------------------------------------------------


class MatrixGraph:
    """The graph of a square sparse matrix read by `matrix_graph`: its canonical entries (unique,
    row-major; `rows`, `cols` NumPy, `values` possibly traced), the position of every row's
    diagonal entry (`diagonal`), of the off-diagonal entries (`edges`) and of the lower triangle,
    diagonal included (`lower`). `shape` is the operator's input shape (flattened in C order)."""

    def __init__(self, entries, owner: str):
        self.entries = entries
        self.rows, self.cols, self.values, self.shape = entries.rows, entries.cols, entries.values, entries.shape
        self.n = entries.size
        self.nnz = int(self.rows.shape[0])
        on_diagonal = np.flatnonzero(self.rows == self.cols)
        if on_diagonal.size != self.n:
            missing = np.setdiff1d(np.arange(self.n), self.rows[on_diagonal])
            raise ValueError(
                f"{owner}: the matrix must store every diagonal entry (an SPD matrix has a positive diagonal), "
                f"got {self.n - on_diagonal.size} rows without one (e.g. row {int(missing[0])})."
            )
        # int32 positions: NumPy's default int64 indices fail under the strict dtype promotion
        # the Krylov solvers run with (an int64 index against int32 sizes) when x64 is off.
        self.diagonal = on_diagonal.astype(np.int32)
        self.edges = np.flatnonzero(self.rows != self.cols).astype(np.int32)
        self.lower = np.flatnonzero(self.rows >= self.cols).astype(np.int32)


def matrix_graph(operator: lx.AbstractLinearOperator, owner: str) -> MatrixGraph:
    """The `MatrixGraph` of a stencil operator, a `SparseOperator` with a static pattern or a
    dense `lineax.MatrixLinearOperator` (see `jaxpde.preconditioners._triangular.entries`), with a
    clear error for a non-square operator or one without stored entries."""
    structure = operator.in_structure()
    if eqx.tree_equal(structure, operator.out_structure()) is not True:
        raise ValueError(
            f"{owner}: the operator must be square (matching in/out structures), got in_structure {structure} and "
            f"out_structure {operator.out_structure()}."
        )
    return MatrixGraph(entries(operator, owner), owner)


# ----------------------------------------------------------------------------------------------
# Features and the message-passing network.
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GraphFeatures:
    """``Â = D^{-1/2} A D^{-1/2}`` on the pattern, with node and edge features (module docstring)."""

    scaled: Array  # (nnz,) entries of Â in the pattern's order
    root_diagonal: Array  # (n,) D^{1/2}
    nodes: Array  # (n, 4)
    edges: Array  # (num_edges, 2), for pattern.edges


def graph_features(pattern: MatrixGraph) -> GraphFeatures:
    values = pattern.values
    diagonal = values[pattern.diagonal]
    # A non-positive diagonal is not SPD; clamping keeps the features finite (CG then reports the
    # breakdown) instead of NaNs that would poison a whole training batch.
    tiny = jnp.finfo(values.dtype).tiny
    root = jnp.sqrt(jnp.maximum(diagonal, tiny))
    scaled = values / (root[pattern.rows] * root[pattern.cols])
    off = scaled[pattern.edges]
    senders = pattern.rows[pattern.edges]
    n = pattern.n
    total = jax.ops.segment_sum(off, senders, n)
    absolute = jax.ops.segment_sum(jnp.abs(off), senders, n)
    largest = jax.ops.segment_max(jnp.abs(off), senders, n)
    largest = jnp.where(jnp.isfinite(largest), largest, 0)
    nodes = jnp.stack([total, absolute, largest, jnp.ones_like(total)], axis=-1)
    orientation = jnp.sign(pattern.rows[pattern.edges] - pattern.cols[pattern.edges]).astype(values.dtype)
    edges = jnp.stack([off, orientation], axis=-1)
    return GraphFeatures(scaled, root, nodes, edges)


def _mlp(n_in: int, n_out: int, width: int, key) -> eqx.nn.MLP:
    return eqx.nn.MLP(n_in, n_out, width, 1, activation=jax.nn.gelu, key=key)


def _zero_linear(n_in: int, key) -> eqx.nn.Linear:
    layer = eqx.nn.Linear(n_in, 1, key=key)
    return eqx.tree_at(lambda l: (l.weight, l.bias), layer, (jnp.zeros_like(layer.weight), jnp.zeros_like(layer.bias)))


def _rows(mlp, x):
    return jax.vmap(mlp)(x)


class GraphNetwork(eqx.Module):
    r"""A message-passing network on a matrix graph (Gilmer et al. 2017; the GNN of NeuralIF,
    Häusner et al. TMLR 2024): encode node and edge features to `width`, then `rounds` times

    .. math::

        m_{ij} = φ(h_i, h_j, e_{ij}),\quad h_i ← h_i + ψ\big(h_i, \tfrac{1}{|N(i)|}\textstyle\sum_j m_{ij}\big),
        \quad e_{ij} ← e_{ij} + χ(e_{ij}, h_i, h_j),

    and read out one scalar per node (from ``h_i``) and one per *pattern entry* ``(i, j)`` (from
    ``e_ij, h_i, h_j``; diagonal entries use a zero edge state). Both read-outs start at zero,
    so a preconditioner built on the network starts at its classical baseline. The mean
    aggregation and residual updates keep the statistics of ``h`` independent of the node
    degree and of the matrix size.
    """

    encode_node: eqx.nn.MLP
    encode_edge: eqx.nn.MLP
    messages: tuple[eqx.nn.MLP, ...]
    node_updates: tuple[eqx.nn.MLP, ...]
    edge_updates: tuple[eqx.nn.MLP, ...]
    read_node: eqx.nn.Linear
    read_entry: eqx.nn.Linear

    def __init__(self, width: int = 16, rounds: int = 2, *, key: PRNGKeyArray):
        for name, value in (("width", width), ("rounds", rounds)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GraphNetwork: `{name}` must be a positive integer, got {value!r}.")
        keys = iter(jax.random.split(key, 4 + 3 * rounds))
        self.encode_node = _mlp(4, width, width, next(keys))
        self.encode_edge = _mlp(2, width, width, next(keys))
        self.messages = tuple(_mlp(3 * width, width, width, next(keys)) for _ in range(rounds))
        self.node_updates = tuple(_mlp(2 * width, width, width, next(keys)) for _ in range(rounds))
        self.edge_updates = tuple(_mlp(3 * width, width, width, next(keys)) for _ in range(rounds))
        self.read_node = _zero_linear(width, next(keys))
        self.read_entry = _zero_linear(3 * width, next(keys))

    def __call__(self, pattern: MatrixGraph, features: GraphFeatures, entries: np.ndarray) -> tuple[Array, Array]:
        """``(node outputs (n,), outputs for the pattern positions `entries`)``."""
        entries = np.asarray(entries, np.int32)
        senders = pattern.rows[pattern.edges]
        receivers = pattern.cols[pattern.edges]
        n = pattern.n
        degree = jnp.maximum(jax.ops.segment_sum(jnp.ones(senders.shape, features.nodes.dtype), senders, n), 1)
        h = _rows(self.encode_node, features.nodes)
        e = _rows(self.encode_edge, features.edges)
        for message, node_update, edge_update in zip(self.messages, self.node_updates, self.edge_updates):
            m = _rows(message, jnp.concatenate([h[senders], h[receivers], e], axis=-1))
            aggregated = jax.ops.segment_sum(m, senders, n) / degree[:, None]
            h = h + _rows(node_update, jnp.concatenate([h, aggregated], axis=-1))
            e = e + _rows(edge_update, jnp.concatenate([e, h[senders], h[receivers]], axis=-1))
        # Edge state per pattern entry: the edge's own state, zero on the diagonal.
        slot = np.full(pattern.nnz, pattern.edges.size, np.int32)
        slot[pattern.edges] = np.arange(pattern.edges.size, dtype=np.int32)
        e_all = jnp.concatenate([e, jnp.zeros((1, e.shape[-1]), e.dtype)], axis=0)[slot[entries]]
        rows, cols = pattern.rows[entries], pattern.cols[entries]
        entry_out = _rows(self.read_entry, jnp.concatenate([e_all, h[rows], h[cols]], axis=-1))[:, 0]
        return _rows(self.read_node, h)[:, 0], entry_out


# ----------------------------------------------------------------------------------------------
# A symmetric operator on the operator's own structure, applied through a flat function.
# ----------------------------------------------------------------------------------------------


class FlatSymmetricOperator(AbstractSymmetricOperator):
    """``M`` applied as ``unflatten(apply(arrays, flatten(x)))`` on `structure` — the lineax face of
    the learned SPD preconditioners (``G Gᵀ``, the spectral ``S Φ C Φ S``), which compute on flat
    vectors while the operator they precondition may be grid-shaped. SPD by construction of its
    users; tagged so by `AbstractSymmetricOperator`."""

    arrays: Any
    apply: Callable = eqx.field(static=True)
    structure: jax.ShapeDtypeStruct = eqx.field(static=True)

    def mv(self, vector):
        return self.apply(self.arrays, vector.reshape(-1)).reshape(self.structure.shape)


# ----------------------------------------------------------------------------------------------
# Losses.
# ----------------------------------------------------------------------------------------------


def _normal_like(key, structure, probes: int) -> Array:
    return jax.random.normal(key, (probes, *structure.shape), structure.dtype)


def inverse_residual_loss(
    preconditioner: AbstractPreconditioner, operator: lx.AbstractLinearOperator, key: PRNGKeyArray, probes: int = 4
) -> Float[Array, ""]:
    r"""``E_z ‖M A z − z‖² / ‖z‖²`` over `probes` Gaussian ``z`` (the stochastic ``‖MA − I‖_F²/n``)."""
    m = preconditioner(operator)
    z = _normal_like(key, operator.in_structure(), probes)
    r = jax.vmap(lambda v: m.mv(operator.mv(v)) - v)(z)
    return jnp.mean(jnp.sum(r**2, axis=tuple(range(1, r.ndim))) / jnp.sum(z**2, axis=tuple(range(1, z.ndim))))


def unrolled_pcg_loss(
    preconditioner: AbstractPreconditioner,
    operator: lx.AbstractLinearOperator,
    key: PRNGKeyArray,
    iterations: int = 10,
    probes: int = 1,
) -> Float[Array, ""]:
    r"""``mean_b log(‖r_k‖/‖r_0‖)`` after ``k`` = `iterations` PCG steps, Gaussian right-hand sides.

    The logarithm weighs every decade of convergence alike (the raw ratio spans orders of
    magnitude across a batch); a floor at ``10⁻³⁰`` keeps an exact convergence finite.
    """
    from ._unrolled import unrolled_pcg  # the Krylov layer's; imported late, as a sibling family module

    m = preconditioner(operator)
    b = _normal_like(key, operator.in_structure(), probes)

    def ratio(v):
        _, norms = unrolled_pcg(operator, v, m, iterations)
        return norms[-1] / norms[0]

    return jnp.mean(jnp.log(jnp.maximum(jax.vmap(ratio)(b), 1e-30)))


# ----------------------------------------------------------------------------------------------
# Darcy systems and the fit recipe.
# ----------------------------------------------------------------------------------------------


class DarcySystems(eqx.Module):
    """A `fit` sampler of FNO-Darcy ``12/3`` coefficients on an ``size × size`` interior grid.

    ``DarcySystems(size, batch)(key)`` is ``{"coefficient": (batch, size, size)}``: the
    thresholded cosine Gaussian field of `jaxpde.data.DarcyConfig` (``resolution = size + 2``,
    no subsampling) without its boundary nodes. `operator` turns one coefficient into the
    `DiffusionOperator` of the Darcy problem on the Dirichlet grid.
    """

    size: int = eqx.field(static=True)
    batch: int = eqx.field(static=True, default=4)
    high: float = eqx.field(static=True, default=12.0)
    low: float = eqx.field(static=True, default=3.0)

    def __check_init__(self):
        for name, value, least in (("size", self.size, 2), ("batch", self.batch, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"DarcySystems: `{name}` must be an integer >= {least}, got {value!r}.")

    @property
    def grid(self) -> Grid:
        return Grid((self.size, self.size), boundary="dirichlet")

    def coefficient(self, key: PRNGKeyArray) -> Float[Array, "size size"]:
        from ..data import DarcyConfig  # the data layer sits above numerics; import late

        config = DarcyConfig(resolution=self.size + 2, subsample=1, high=self.high, low=self.low)
        return config.coefficient(key)[1:-1, 1:-1]

    def __call__(self, key: PRNGKeyArray) -> dict[str, Array]:
        return {"coefficient": jax.vmap(self.coefficient)(jax.random.split(key, self.batch))}

    def operator(self, coefficient: Array) -> DiffusionOperator:
        return DiffusionOperator(self.grid, coefficient)


def select_loss(loss: str, iterations: int, alternatives: dict[str, Callable], owner: str) -> Callable:
    """The objective named `loss`: ``"pcg"`` (`unrolled_pcg_loss` after `iterations` steps) or one
    of `alternatives`; an unknown name fails listing the choices."""
    if loss == "pcg":
        return lambda model, operator, key: unrolled_pcg_loss(model, operator, key, iterations=iterations)
    if loss in alternatives:
        return alternatives[loss]
    raise ValueError(f"{owner}: `loss` must be one of {['pcg', *alternatives]}, got {loss!r}.")


def train_preconditioner(
    model: AbstractPreconditioner,
    loss: Callable[[AbstractPreconditioner, lx.AbstractLinearOperator, PRNGKeyArray], Array],
    systems: DarcySystems,
    steps: int,
    key: PRNGKeyArray,
    learning_rate: float = 3e-3,
    **fit_options,
) -> AbstractPreconditioner:
    """Train `model` with `jaxpde.training.fit` on ``mean_b loss(model, A_b, key_b)`` over the
    batches of `systems` (Adam with cosine decay, gradients clipped at norm 1). `fit_options` go
    to `fit` (``out_dir`` for checkpoints and resume, ``log_every``, ``callbacks`` …)."""
    from ..training import fit  # training depends on nothing here; import late

    if not isinstance(systems, DarcySystems):
        raise TypeError(f"train_preconditioner: `systems` must be a DarcySystems sampler, got {type(systems).__name__}.")

    def batch_loss(model, batch, key):
        keys = jax.random.split(key, systems.batch)
        values = jax.vmap(lambda a, k: loss(model, systems.operator(a), k))(batch["coefficient"], keys)
        return jnp.mean(values)

    schedule = optax.cosine_decay_schedule(learning_rate, max(int(steps), 1), alpha=0.1)
    optimiser = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
    fit_options.setdefault("progress", False)
    fit_options.setdefault("log_every", max(1, int(steps) // 4) if steps else 1)
    return fit(model, optimiser, batch_loss, systems, steps=steps, key=key, **fit_options).model

