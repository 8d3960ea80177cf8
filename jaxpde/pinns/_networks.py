r"""Networks for physics-informed learning: one point in, the solution out.

Every network is an `equinox.Module` mapping **one point**: ``net(x)`` for a stationary problem,
``net(x, t)`` for a time-dependent one, with ``x`` of shape ``(d,)`` and ``t`` a scalar. The
network concatenates ``z = (x_1, …, x_d, t)`` itself (time is the **last** input coordinate),
so ``in_size`` is ``d`` (+1 with time). The output is a scalar ``()`` for ``out_size="scalar"``
and ``(c,)`` otherwise. Batches are a `jax.vmap` over points; derivatives are those of
`jaxpde.autodiff`.

Building blocks, each composable with the others:

- `Dense`: ``z ↦ W z + b``, optionally with **random weight factorisation** (Wang, Wang, Teng &
  Perdikaris, "Random weight factorization improves the training of continuous neural
  representations", 2022): $W = \operatorname{diag}(e^{s}) V$, trained in $(s, V)$, with
  $s \sim \mathcal N(\mu, \sigma^2)$ and $V = \operatorname{diag}(e^{-s}) W_0$ at initialisation,
  so the factorised layer starts as the plain layer with the same key (`WeightFactorisation`).
- **Embeddings** (`AbstractEmbedding`), modules ``z ↦ features`` put in front of any network with
  ``embedding=``, chained with `Embeddings`:

  * `PeriodicEmbedding`: each periodic coordinate $z_i$ of period $L_i$ becomes
    $(\cos(k\omega_i z_i), \sin(k\omega_i z_i))_{k=1..K}$, $\omega_i = 2\pi/L_i$, so the network is
    periodic in $z_i$ *exactly*, derivatives included (Dong & Ni, "A method for representing
    periodic functions and enforcing exactly periodic boundary conditions with deep neural
    networks", J. Comput. Phys. 435, 2021);
  * `FourierFeatures`: $z \mapsto (\cos Bz, \sin Bz)$, $B_{ij} \sim \mathcal N(0, \sigma^2)$ fixed
    (Tancik et al., "Fourier features let networks learn high frequency functions in low
    dimensional domains", NeurIPS 2020; for PINNs Wang, Wang & Perdikaris, "On the eigenvector
    bias of Fourier feature networks", CMAME 384, 2021).

- **Networks** (`AbstractNetwork`):

  * `MLP`: $h_{k+1} = \sigma(W_k h_k + b_k)$, a linear output layer;
  * `ModifiedMLP` (Wang, Teng & Perdikaris, "Understanding and mitigating gradient flow
    pathologies in physics-informed neural networks", SIAM J. Sci. Comput. 43, 2021): two
    encoders $U = \sigma(W_U z + b_U)$, $V = \sigma(W_V z + b_V)$ gate every hidden layer,
    $g_k = \sigma(W_k h_k + b_k)$, $h_{k+1} = g_k \odot U + (1 - g_k) \odot V$;
  * `PirateNet` (Wang, Li, Chen & Perdikaris, "PirateNets: physics-informed deep learning with
    residual adaptive networks", JMLR 25, 2024): on the embedding $\Phi = \phi(z)$, blocks of three
    gated dense layers with an adaptive residual connection
    $x_{l+1} = \alpha_l\, h_l + (1 - \alpha_l)\, x_l$, $\alpha_l = 0$ at initialisation, so the
    initial network is exactly its linear output layer on the embedding, $u = W\Phi + b$ — a
    shallow model fitted to data by least squares (`PirateNet.least_squares_output`, the
    paper's physics-informed initialisation), deepened by training.

Initialisation: weights ``init="glorot_normal"`` ($\mathcal N(0, 2/(n_{in} + n_{out}))$, not
truncated: PyTorch's ``xavier_normal_``, DeepXDE's "Glorot normal"), ``"glorot_uniform"``,
``"lecun_normal"``, or any ``jax.nn.initializers`` initialiser (called with the shape
``(in, out)``, jax's convention); biases zero.
"""

import abc
import functools
import math
from collections.abc import Callable, Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..autodiff import as_point

__all__ = [
    "AbstractEmbedding",
    "AbstractNetwork",
    "Dense",
    "Embeddings",
    "FourierFeatures",
    "MLP",
    "ModifiedMLP",
    "PeriodicEmbedding",
    "PirateNet",
    "WeightFactorisation",
    "activation_function",
]

Activation = Callable[[Array], Array]
Initialiser = Literal["glorot_normal", "glorot_uniform", "lecun_normal"] | Callable

_ACTIVATIONS: dict[str, Activation] = {
    "tanh": jnp.tanh,
    "sin": jnp.sin,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "softplus": jax.nn.softplus,
    "relu": jax.nn.relu,
}


def activation_function(owner: str, activation: str | Activation) -> Activation:
    """`activation` by name (``"tanh"``, ``"sin"``, ``"gelu"``, ``"silu"``, ``"softplus"``, ``"relu"``) or as given."""
    if callable(activation):
        return activation
    if activation not in _ACTIVATIONS:
        raise ValueError(f"{owner}: `activation` must be a callable or one of {sorted(_ACTIVATIONS)}, got {activation!r}.")
    return _ACTIVATIONS[activation]


def _positive_int(owner: str, name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}: `{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _out_size(owner: str, out_size) -> int | str:
    if out_size == "scalar":
        return "scalar"
    return _positive_int(owner, "out_size", out_size)


def _dtype(dtype):
    return jnp.result_type(float) if dtype is None else jnp.dtype(dtype)


def _weights(owner: str, init: Initialiser, key: PRNGKeyArray, in_size: int, out_size: int, dtype) -> Array:
    """An ``(out, in)`` weight matrix drawn by `init`."""
    if callable(init):
        return jnp.asarray(init(key, (in_size, out_size), dtype), dtype).T
    fan = in_size + out_size
    if init == "glorot_normal":
        return math.sqrt(2.0 / fan) * jax.random.normal(key, (out_size, in_size), dtype)
    if init == "glorot_uniform":
        limit = math.sqrt(6.0 / fan)
        return jax.random.uniform(key, (out_size, in_size), dtype, -limit, limit)
    if init == "lecun_normal":
        return math.sqrt(1.0 / in_size) * jax.random.normal(key, (out_size, in_size), dtype)
    raise ValueError(
        f"{owner}: `init` must be 'glorot_normal', 'glorot_uniform', 'lecun_normal' or a jax initialiser, got {init!r}."
    )


# --------------------------------------------------------------------------------------------
# Dense layers and random weight factorisation
# --------------------------------------------------------------------------------------------


class WeightFactorisation(eqx.Module):
    r"""Random weight factorisation $W = \operatorname{diag}(e^{s}) V$, $s \sim \mathcal N(\mu, \sigma^2)$.

    Wang et al. (2022) recommend $\mu = 1$, $\sigma = 0.1$ (the defaults; jaxpi uses them for
    Allen–Cahn): each output neuron gets its own trainable scale $e^{s_i}$, which changes the
    loss landscape's geometry (a per-neuron adaptive learning rate) without changing the
    function class or the initial network.
    """

    mean: float = 1.0
    std: float = 0.1

    def __check_init__(self):
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std >= 0):
            raise ValueError(
                f"WeightFactorisation: `mean` must be finite and `std` finite and >= 0, got {self.mean!r}, {self.std!r}."
            )


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5, 6))
def _dense_parameters(key, in_size, out_size, init, mean, std, dtype):
    """``(W or V, b, s or None)`` of a dense layer, as one compiled program: building a network
    eagerly would otherwise compile a handful of tiny programs per layer shape."""
    k_weight, k_scale = jax.random.split(key)
    weight = _weights("Dense", init, k_weight, in_size, out_size, dtype)
    bias = jnp.zeros((out_size,), dtype)
    if mean is None:
        return weight, bias, None
    s = mean + std * jax.random.normal(k_scale, (out_size,), dtype)
    return weight * jnp.exp(-s)[:, None], bias, s


class Dense(eqx.Module):
    r"""$z \mapsto W z + b$, $W$ of shape ``(out, in)``; with `factorisation`, $W = \operatorname{diag}(e^{s}) V$.

    **Arguments:** `in_size`, `out_size` (integers); `init` the weights' initialiser (module
    docstring); `factorisation` a `WeightFactorisation` or ``None``; `key`; `dtype`.

    The factorised layer draws $W_0$ with the same key as the plain layer and then
    $V = \operatorname{diag}(e^{-s}) W_0$, so at initialisation both compute the same map (to
    round-off); only the parameterisation that the optimiser sees differs.
    """

    weight: Float[Array, "out in"]  # W, or V when factorised
    bias: Float[Array, " out"]
    log_scale: Float[Array, " out"] | None  # s; None for a plain layer
    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        *,
        init: Initialiser = "glorot_normal",
        factorisation: WeightFactorisation | None = None,
        key: PRNGKeyArray,
        dtype=None,
    ):
        self.in_size = _positive_int("Dense", "in_size", in_size)
        self.out_size = _positive_int("Dense", "out_size", out_size)
        if factorisation is not None and not isinstance(factorisation, WeightFactorisation):
            raise TypeError(f"Dense: `factorisation` must be a WeightFactorisation or None, got {factorisation!r}.")
        mean, std = (None, None) if factorisation is None else (factorisation.mean, factorisation.std)
        self.weight, self.bias, self.log_scale = _dense_parameters(key, self.in_size, self.out_size, init, mean, std,
                                                                   _dtype(dtype))

    @property
    def matrix(self) -> Float[Array, "out in"]:
        """The effective weight $W$ (``diag(exp(s)) V`` when factorised)."""
        if self.log_scale is None:
            return self.weight
        return jnp.exp(self.log_scale)[:, None] * self.weight

    def with_matrix(self, matrix: Float[ArrayLike, "out in"], bias: Float[ArrayLike, " out"]) -> "Dense":
        """The same layer computing ``z ↦ matrix z + bias`` (the scales $s$ are kept when factorised)."""
        matrix = jnp.asarray(matrix, self.weight.dtype)
        bias = jnp.asarray(bias, self.bias.dtype)
        if matrix.shape != self.weight.shape or bias.shape != self.bias.shape:
            raise ValueError(
                f"Dense.with_matrix: `matrix` and `bias` must have shapes {self.weight.shape} and {self.bias.shape}, "
                f"got {matrix.shape} and {bias.shape}."
            )
        if self.log_scale is not None:
            matrix = jnp.exp(-self.log_scale)[:, None] * matrix
        return eqx.tree_at(lambda layer: (layer.weight, layer.bias), self, (matrix, bias))

    def __call__(self, z: Float[Array, " in"]) -> Float[Array, " out"]:
        return self.matrix @ z + self.bias


# --------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------


class AbstractEmbedding(eqx.Module):
    """A map ``z ↦ features`` from ``(in_size,)`` to ``(out_size,)`` in front of a network (``embedding=``)."""

    in_size: eqx.AbstractVar[int]
    out_size: eqx.AbstractVar[int]

    @abc.abstractmethod
    def __call__(self, z: Float[Array, " in"]) -> Float[Array, " out"]:
        """The features of one input point."""


class PeriodicEmbedding(AbstractEmbedding):
    r"""Exact periodicity: $z_i \mapsto (\cos(k\omega_i z_i), \sin(k\omega_i z_i))_{k=1}^{K}$, $\omega_i = 2\pi / L_i$.

    **Arguments:**

    - `in_size`: the input size (``d``, +1 with time; time is the last coordinate).
    - `axes`: the periodic coordinates (indices into ``z``), e.g. ``(0,)`` for $x$ of $(x, t)$.
    - `periods`: $L_i$ per axis (a float applies to every axis). The embedding is exactly
      $L_i$-periodic in $z_i$, so is every network behind it, to all orders of derivatives.
    - `harmonics`: $K \ge 1$ (default 1; the network builds the higher harmonics itself).

    The other coordinates pass through unchanged, in order. ``out_size = in_size + (2K - 1)·len(axes)``.
    """

    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)
    axes: tuple[int, ...] = eqx.field(static=True)
    periods: tuple[float, ...] = eqx.field(static=True)
    harmonics: int = eqx.field(static=True)

    def __init__(self, in_size: int, axes: Sequence[int] = (0,), periods: float | Sequence[float] = 2 * math.pi,
                 harmonics: int = 1):
        owner = "PeriodicEmbedding"
        self.in_size = _positive_int(owner, "in_size", in_size)
        axes = tuple(int(a) for a in np.atleast_1d(axes))
        if not axes or len(set(axes)) != len(axes) or any(not 0 <= a < self.in_size for a in axes):
            raise ValueError(f"{owner}: `axes` must be distinct indices in [0, {self.in_size}), got {axes!r}.")
        periods = np.broadcast_to(np.asarray(periods, dtype=float), (len(axes),)) if np.ndim(periods) == 0 else \
            np.asarray(periods, dtype=float)
        if periods.shape != (len(axes),) or not np.all(np.isfinite(periods)) or not np.all(periods > 0):
            raise ValueError(
                f"{owner}: `periods` must be one positive period per axis ({len(axes)}), got {np.asarray(periods).tolist()!r}."
            )
        self.axes = axes
        self.periods = tuple(float(p) for p in periods)
        self.harmonics = _positive_int(owner, "harmonics", harmonics)
        self.out_size = self.in_size + (2 * self.harmonics - 1) * len(axes)

    def __call__(self, z):
        z = as_point("PeriodicEmbedding", z, self.in_size)
        k = jnp.arange(1, self.harmonics + 1, dtype=z.dtype)
        features = []
        for i in range(self.in_size):
            if i in self.axes:
                angle = k * (2 * math.pi / self.periods[self.axes.index(i)]) * z[i]
                features += [jnp.cos(angle), jnp.sin(angle)]
            else:
                features.append(z[i : i + 1])
        return jnp.concatenate(features)


class FourierFeatures(AbstractEmbedding):
    r"""Random Fourier features $z \mapsto (\cos Bz, \sin Bz)$, $B \in \mathbb R^{m \times n}$, $B_{ij} \sim \mathcal N(0, \sigma^2)$.

    **Arguments:** `in_size` ($n$); `out_size` ($2m$, even); `scale` ($\sigma$: the frequency
    band the network can fit quickly — too small and it stays smooth, too large and it is
    noisy; jaxpi uses $\sigma = 1$–$2$ on $[-1, 1]$); `key`; `trainable` (default ``False``: $B$ is a
    fixed random matrix, as in both papers, and gets no gradient).

    No $2\pi$ inside the cosine (jaxpi's convention); multiply `scale` by $2\pi$ for Tancik's.
    """

    frequencies: Float[Array, "m in"]
    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)
    trainable: bool = eqx.field(static=True)

    def __init__(self, in_size: int, out_size: int, scale: float = 1.0, *, key: PRNGKeyArray, trainable: bool = False,
                 dtype=None):
        owner = "FourierFeatures"
        self.in_size = _positive_int(owner, "in_size", in_size)
        self.out_size = _positive_int(owner, "out_size", out_size, 2)
        if self.out_size % 2:
            raise ValueError(f"{owner}: `out_size` must be even (cosines and sines), got {out_size!r}.")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"{owner}: `scale` must be positive and finite, got {scale!r}.")
        self.frequencies = scale * jax.random.normal(key, (self.out_size // 2, self.in_size), _dtype(dtype))
        self.trainable = bool(trainable)

    def __call__(self, z):
        z = as_point("FourierFeatures", z, self.in_size)
        b = self.frequencies if self.trainable else jax.lax.stop_gradient(self.frequencies)
        phase = b @ z
        return jnp.concatenate([jnp.cos(phase), jnp.sin(phase)])


class Embeddings(AbstractEmbedding):
    """Embeddings applied in order (``PeriodicEmbedding`` then ``FourierFeatures``, say); sizes must chain."""

    embeddings: tuple[AbstractEmbedding, ...]

    def __init__(self, *embeddings: AbstractEmbedding):
        if not embeddings or not all(isinstance(e, AbstractEmbedding) for e in embeddings):
            raise TypeError(f"Embeddings: `embeddings` must be one or more AbstractEmbedding, got {embeddings!r}.")
        for i, (a, b) in enumerate(zip(embeddings, embeddings[1:])):
            if a.out_size != b.in_size:
                raise ValueError(
                    f"Embeddings: embedding {i + 1} ({type(b).__name__}) must take in_size = {a.out_size} "
                    f"(the out_size of {type(a).__name__}), got {b.in_size}."
                )
        self.embeddings = tuple(embeddings)

    @property
    def in_size(self) -> int:
        return self.embeddings[0].in_size

    @property
    def out_size(self) -> int:
        return self.embeddings[-1].out_size

    def __call__(self, z):
        for embedding in self.embeddings:
            z = embedding(z)
        return z


# --------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------


class AbstractNetwork(eqx.Module):
    r"""Base class of the networks: ``net(x)`` or ``net(x, t)`` for one point, ``()`` or ``(c,)`` out.

    Subclasses hold `in_size`, `out_size`, an `embedding` (or ``None``) and implement
    ``forward(features) -> (out,)`` on the embedded input. `__call__` (final) checks the point,
    appends ``t``, applies the embedding and drops the output axis for ``out_size="scalar"``.
    """

    in_size: eqx.AbstractVar[int]
    out_size: eqx.AbstractVar[int | str]
    embedding: eqx.AbstractVar[AbstractEmbedding | None]

    @abc.abstractmethod
    def forward(self, features: Float[Array, " features"]) -> Float[Array, " out"]:
        """The network on the embedded input (the output axis kept even for a scalar)."""

    def features(self, x: Float[ArrayLike, " d"], t=None) -> Float[Array, " features"]:
        """The embedded input ``embedding((x, t))`` (``(x, t)`` itself without an embedding)."""
        owner = type(self).__name__
        x = jnp.asarray(x)
        if x.ndim != 1:
            raise ValueError(f"{owner}: `x` must be one point of shape (d,), got shape {x.shape}; use jax.vmap over points.")
        x = as_point(owner, x)
        if t is not None:
            t = jnp.asarray(t, x.dtype)
            if t.ndim != 0:
                raise ValueError(f"{owner}: `t` must be a scalar time, got shape {t.shape}; use jax.vmap over points.")
            x = jnp.concatenate([x, t[None]])
        if x.shape != (self.in_size,):
            with_time = "with" if t is not None else "without"
            raise ValueError(
                f"{owner}: the input (x{', t' if t is not None else ''}) must have in_size = {self.in_size} coordinates, "
                f"got {x.shape[0]} ({with_time} time; time-dependent networks take in_size = d + 1)."
            )
        return x if self.embedding is None else self.embedding(x)

    def __call__(self, x: Float[ArrayLike, " d"], t=None) -> Float[Array, "..."]:
        y = self.forward(self.features(x, t))
        return y[0] if self.out_size == "scalar" else y


def _embedding_size(owner: str, in_size: int, embedding) -> int:
    if embedding is None:
        return in_size
    if not isinstance(embedding, AbstractEmbedding):
        raise TypeError(f"{owner}: `embedding` must be an AbstractEmbedding or None, got {type(embedding).__name__}.")
    if embedding.in_size != in_size:
        raise ValueError(f"{owner}: `embedding` must take in_size = {in_size} coordinates, got {embedding.in_size}.")
    return embedding.out_size


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _dense_layers(key, shapes, init, factorisation, dtype) -> tuple[Dense, ...]:
    """One `Dense` per ``(in, out)`` in `shapes`, layer ``i`` from ``fold_in(key, i)``, built as one
    compiled program (eagerly, every new layer shape would compile its own small programs)."""
    return tuple(Dense(a, b, init=init, factorisation=factorisation, key=jax.random.fold_in(key, i), dtype=dtype)
                 for i, (a, b) in enumerate(shapes))


def _check_layers(owner, init, factorisation):
    if factorisation is not None and not isinstance(factorisation, WeightFactorisation):
        raise TypeError(f"{owner}: `factorisation` must be a WeightFactorisation or None, got {factorisation!r}.")
    if not callable(init) and init not in ("glorot_normal", "glorot_uniform", "lecun_normal"):
        raise ValueError(
            f"{owner}: `init` must be 'glorot_normal', 'glorot_uniform', 'lecun_normal' or a jax initialiser, got {init!r}."
        )


def _set_up(net, owner, in_size, out_size, activation, embedding, init, factorisation) -> int:
    """Check and set the fields every network shares (in `__init__`); the embedded input's size."""
    net.in_size = _positive_int(owner, "in_size", in_size)
    net.out_size = _out_size(owner, out_size)
    net.activation = activation_function(owner, activation)
    net.embedding = embedding
    _check_layers(owner, init, factorisation)
    return _embedding_size(owner, net.in_size, embedding)


class MLP(AbstractNetwork):
    r"""A multilayer perceptron: `depth` hidden layers of `width`, activation $\sigma$, linear output.

    **Arguments:**

    - `in_size`: ``d`` (+1 with time); `out_size`: an integer or ``"scalar"``.
    - `width`, `depth`: hidden width and number of hidden layers (``depth >= 1``).
    - `activation`: a name (``"tanh"``, ``"sin"``, ``"gelu"``, …) or a callable (default tanh).
    - `init`: the weights' initialiser (default Glorot normal; biases zero).
    - `factorisation`: a `WeightFactorisation` for every layer, or ``None``.
    - `embedding`: an `AbstractEmbedding` applied to ``(x, t)`` first, or ``None``.
    - `key`, `dtype`.

    DeepXDE's standard network, ``dde.nn.FNN([2] + [20] * 3 + [1], "tanh", "Glorot normal")``, is
    ``MLP(2, "scalar", 20, 3, activation="tanh", init="glorot_normal", key=key)``.
    """

    layers: tuple[Dense, ...]
    embedding: AbstractEmbedding | None
    activation: Activation = eqx.field(static=True)
    in_size: int = eqx.field(static=True)
    out_size: int | str = eqx.field(static=True)

    def __init__(self, in_size: int, out_size: int | Literal["scalar"], width: int, depth: int, *,
                 activation: str | Activation = "tanh", init: Initialiser = "glorot_normal",
                 factorisation: WeightFactorisation | None = None, embedding: AbstractEmbedding | None = None,
                 key: PRNGKeyArray, dtype=None):
        owner = "MLP"
        features = _set_up(self, owner, in_size, out_size, activation, embedding, init, factorisation)
        width, depth = _positive_int(owner, "width", width), _positive_int(owner, "depth", depth)
        sizes = [features] + [width] * depth
        sizes.append(1 if self.out_size == "scalar" else self.out_size)
        self.layers = _dense_layers(key, tuple(zip(sizes, sizes[1:])), init, factorisation, _dtype(dtype))

    def forward(self, features):
        h = features
        for layer in self.layers[:-1]:
            h = self.activation(layer(h))
        return self.layers[-1](h)


class _GatedNetwork(AbstractNetwork):
    r"""The fields of the networks gated by two encoders $U = \sigma(W_U z + b_U)$, $V = \sigma(W_V z + b_V)$."""

    encoder_u: Dense
    encoder_v: Dense
    output: Dense
    embedding: AbstractEmbedding | None
    activation: Activation = eqx.field(static=True)
    in_size: int = eqx.field(static=True)
    out_size: int | str = eqx.field(static=True)

    def encoders(self, features):
        """$(U, V)$ at the embedded input."""
        return self.activation(self.encoder_u(features)), self.activation(self.encoder_v(features))


class ModifiedMLP(_GatedNetwork):
    r"""The modified MLP of Wang, Teng & Perdikaris (2021): encoders $U, V$ gate every hidden layer.

    $U = \sigma(W_U z + b_U)$, $V = \sigma(W_V z + b_V)$; $h_0 = z$;
    $g_k = \sigma(W_k h_k + b_k)$, $h_{k+1} = g_k \odot U + (1 - g_k) \odot V$ for
    $k = 0..\text{depth}-1$; $u = W h_{\text{depth}} + b$. Arguments as `MLP`.
    """

    layers: tuple[Dense, ...]

    def __init__(self, in_size: int, out_size: int | Literal["scalar"], width: int, depth: int, *,
                 activation: str | Activation = "tanh", init: Initialiser = "glorot_normal",
                 factorisation: WeightFactorisation | None = None, embedding: AbstractEmbedding | None = None,
                 key: PRNGKeyArray, dtype=None):
        owner = "ModifiedMLP"
        features = _set_up(self, owner, in_size, out_size, activation, embedding, init, factorisation)
        width, depth = _positive_int(owner, "width", width), _positive_int(owner, "depth", depth)
        sizes = [features] + [width] * depth
        shapes = ((features, width), (features, width), *zip(sizes, sizes[1:]),
                  (width, 1 if self.out_size == "scalar" else self.out_size))
        self.encoder_u, self.encoder_v, *layers, self.output = _dense_layers(key, shapes, init, factorisation,
                                                                             _dtype(dtype))
        self.layers = tuple(layers)

    def forward(self, features):
        u, v = self.encoders(features)
        h = features
        for layer in self.layers:
            gate = self.activation(layer(h))
            h = gate * u + (1 - gate) * v
        return self.output(h)


class PirateBlock(eqx.Module):
    r"""One PirateNet block on $x$ (the embedding's size) with the encoders' $U, V$ (the width):

    $f = \sigma(W_1 x + b_1)$, $z_1 = f \odot U + (1 - f) \odot V$; $g = \sigma(W_2 z_1 + b_2)$,
    $z_2 = g \odot U + (1 - g) \odot V$; $h = \sigma(W_3 z_2 + b_3)$;
    $x' = \alpha h + (1 - \alpha) x$, with the trainable gate $\alpha$ starting at 0 (the block
    is the identity at initialisation).
    """

    dense1: Dense
    dense2: Dense
    dense3: Dense
    alpha: Float[Array, ""]

    def __call__(self, x, u, v, activation):
        f = activation(self.dense1(x))
        z1 = f * u + (1 - f) * v
        g = activation(self.dense2(z1))
        z2 = g * u + (1 - g) * v
        h = activation(self.dense3(z2))
        return self.alpha * h + (1 - self.alpha) * x


class PirateNet(_GatedNetwork):
    r"""PirateNet (Wang, Li, Chen & Perdikaris 2024): gated residual blocks with adaptive gates $\alpha_l = 0$.

    On the embedding $\Phi = \phi(z)$ (size $E$; use `FourierFeatures`, after a
    `PeriodicEmbedding` for periodic coordinates): $U = \sigma(W_U \Phi + b_U)$,
    $V = \sigma(W_V \Phi + b_V)$ (size `width`), $x_1 = \Phi$, $x_{l+1} = $ `PirateBlock`$_l(x_l)$,
    $u = W x_{L+1} + b$. With every $\alpha_l = 0$ the network *is* $u = W\Phi + b$ — the
    initialisation the paper builds on: start from a shallow model (with
    `least_squares_output`, the best fit of data, e.g. the initial condition) and let training
    open the gates to add depth when it helps.

    **Arguments:** as `MLP`, with `blocks` ($L \ge 1$) instead of `depth` (each block has three
    dense layers). jaxpi uses width 256, 3 blocks, tanh, Fourier features of scale 2 and weight
    factorisation (1, 0.1) for Allen–Cahn.
    """

    blocks: tuple[PirateBlock, ...]

    def __init__(self, in_size: int, out_size: int | Literal["scalar"], width: int, blocks: int, *,
                 activation: str | Activation = "tanh", init: Initialiser = "glorot_normal",
                 factorisation: WeightFactorisation | None = None, embedding: AbstractEmbedding | None = None,
                 key: PRNGKeyArray, dtype=None):
        owner = "PirateNet"
        features = _set_up(self, owner, in_size, out_size, activation, embedding, init, factorisation)
        width, blocks = _positive_int(owner, "width", width), _positive_int(owner, "blocks", blocks)
        out = 1 if self.out_size == "scalar" else self.out_size
        shapes = ((features, width), (features, width), (features, out),
                  *(((features, width), (width, width), (width, features)) * blocks))
        self.encoder_u, self.encoder_v, self.output, *layers = _dense_layers(key, shapes, init, factorisation,
                                                                             _dtype(dtype))
        zero = jnp.zeros((), _dtype(dtype))
        self.blocks = tuple(PirateBlock(*layers[3 * i:3 * i + 3], zero) for i in range(blocks))

    def hidden(self, features: Float[Array, " features"]) -> Float[Array, " features"]:
        """$x_{L+1}$, the input of the output layer (the embedding itself while every $\\alpha_l = 0$)."""
        u, v = self.encoders(features)
        x = features
        for block in self.blocks:
            x = block(x, u, v, self.activation)
        return x

    def forward(self, features):
        return self.output(self.hidden(features))

    def least_squares_output(self, x: Float[ArrayLike, "n d"], t: Float[ArrayLike, " n"] | None,
                             values: Float[ArrayLike, "n ..."], ridge: float = 0.0) -> "PirateNet":
        r"""The physics-informed initialisation: the output layer $(W, b)$ fitted to data by least squares.

        Solves $\min_{W,b} \sum_i |W\Phi(z_i) + b - y_i|^2 + \lambda(|W|^2 + |b|^2)$ on the features of
        the points ``(x[i], t[i])`` (``t=None`` for a stationary network) and the targets
        `values` (shape ``(n,)`` for a scalar network, ``(n, c)`` otherwise), $\lambda$ = `ridge`.
        With the gates $\alpha = 0$ (a fresh network) the returned network's output at those
        points is the least-squares fit (jaxpi fits the initial condition). Returns a new network.
        """
        owner = "PirateNet.least_squares_output"
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"{owner}: `x` must have shape (n, d) with n >= 1, got {x.shape}.")
        channels = 1 if self.out_size == "scalar" else self.out_size
        values = jnp.asarray(values, self.output.weight.dtype)
        expected = (x.shape[0],) if self.out_size == "scalar" else (x.shape[0], channels)
        if values.shape != expected:
            raise ValueError(f"{owner}: `values` must have shape {expected} (n = {x.shape[0]} points), got {values.shape}.")
        values = values.reshape(x.shape[0], channels)
        if not (ridge >= 0 and math.isfinite(ridge)):
            raise ValueError(f"{owner}: `ridge` must be finite and >= 0, got {ridge!r}.")

        if t is None:
            hidden = jax.vmap(lambda xi: self.hidden(self.features(xi)))(x)
        else:
            hidden = jax.vmap(lambda xi, ti: self.hidden(self.features(xi, ti)))(x, jnp.asarray(t))
        design = jnp.concatenate([hidden, jnp.ones((hidden.shape[0], 1), hidden.dtype)], axis=1)
        if ridge > 0:
            gram = design.T @ design + ridge * jnp.eye(design.shape[1], dtype=design.dtype)
            solution = jnp.linalg.solve(gram, design.T @ values)
        else:
            solution = jnp.linalg.lstsq(design, values)[0]
        return eqx.tree_at(lambda net: net.output, self, self.output.with_matrix(solution[:-1].T, solution[-1]))
