r"""The Fourier neural operator (FNO) in 1, 2 or 3 dimensions.

Li, Kovachki, Azizzadenesheli, Liu, Bhattacharya, Stuart & Anandkumar, "Fourier Neural Operator
for Parametric Partial Differential Equations", ICLR 2021. For one sample ``a`` of ``c_in``
channels on a ``d``-dimensional grid,

$$v_0 = P(a, x), \qquad v_{\ell+1} = \sigma_\ell\big(\mathcal K_\ell v_\ell + W_\ell v_\ell + b_\ell\big)
\ \ (\ell = 0, …, L−1), \qquad u = Q(v_L),$$

- ``P``: the *lifting*, a pointwise linear map of the input channels — and, with
  `coordinates`, of the grid coordinates ``x`` appended as ``d`` extra channels, as the FNO
  code does — to `width` channels;
- ``𝒦_ℓ``: a truncated spectral convolution (`SpectralConv`, learned on the lowest `modes`);
- ``W_ℓ``: a pointwise (``1 × 1``) linear map and bias, the local path that carries what the
  truncated spectrum drops;
- ``σ_ℓ``: the activation (GELU), on every layer but the last (as in the FNO code);
- ``Q``: the *projection*, pointwise ``width → projection_width → c_out`` with the activation
  between.

**Resolution.** Every piece is pointwise or indexed by wavenumber, so one FNO applies at any
grid that holds its modes. For inputs band-limited to the retained modes, a one-layer FNO
without coordinate channels gives, at every resolution, samples of one and the same function;
deeper ones agree up to the aliasing of the activation's products (measured in the tests).
Coordinate channels break the exact statement (the coordinate is not band-limited) but not the
use: the FNO paper trains at ``s = 85`` with them and evaluates at finer grids.

**Domain padding.** The spectral convolution is periodic. For a non-periodic problem (Darcy's
Dirichlet square) the FNO code pads the lifted field with zeros at the far end of each axis,
runs the Fourier layers on the padded grid and crops before the projection, so the periodic
wrap-around happens in the padding. `padding` is that extension as a fraction of each axis
(``⌊padding · s + ½⌋`` points; Darcy at ``s = 85`` pads 9 ≈ 0.1·85), so it scales with the
grid and the model stays resolution independent.
"""

import functools
import math
from collections.abc import Callable, Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._channel_mix import channel_mix
from ._spectral_conv import SpectralConv, as_modes, check_grid, positive_int

__all__ = ["FNO", "Pointwise", "grid_coordinates", "activation_function"]

_ACTIVATIONS: dict[str, Callable] = {
    "gelu": jax.nn.gelu,
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "silu": jax.nn.silu,
    "identity": lambda x: x,
}
_COORDINATES = (None, "nodes", "periodic")
_PROJECTION_CHUNK = 512  # points per chunk of the projection (see `FNO.project`)


def activation_function(name: str, owner: str) -> Callable:
    """The activation called `name` (a string, so that models stay comparable pytrees)."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"{owner}: `activation` must be one of {tuple(_ACTIVATIONS)}, got {name!r}.")
    return _ACTIVATIONS[name]


def grid_coordinates(shape: tuple[int, ...], kind: Literal["nodes", "periodic"], dtype) -> Float[Array, "d *grid"]:
    """The coordinates of a grid of `shape` on the unit cube, channels first: ``x_j = j/(s − 1)``
    (``"nodes"``: both end points, as ``linspace(0, 1, s)`` in the FNO code) or ``x_j = j/s``
    (``"periodic"``: the end point is the start)."""
    axes = [jnp.arange(s, dtype=dtype) / (s - 1 if kind == "nodes" and s > 1 else s) for s in shape]
    return jnp.stack(jnp.meshgrid(*axes, indexing="ij"))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _initial_weight_and_bias(key: PRNGKeyArray, out_channels: int, in_channels: int):
    # One compiled program per shape (op by op, each draw compiles on its own).
    k_w, k_b = jax.random.split(key)
    bound = 1.0 / in_channels**0.5
    weight = jax.random.uniform(k_w, (out_channels, in_channels), minval=-bound, maxval=bound)
    return weight, jax.random.uniform(k_b, (out_channels,), minval=-bound, maxval=bound)


class Pointwise(eqx.Module):
    """``v ↦ W v + b`` at every grid point (a ``1 × 1`` convolution), channels first, any number
    of spatial axes. Initialised as `equinox.nn.Linear` (uniform in ``±1/√c_in``)."""

    weight: Float[Array, "c_out c_in"]
    bias: Float[Array, " c_out"]

    def __init__(self, in_channels: int, out_channels: int, *, key: PRNGKeyArray):
        self.weight, self.bias = _initial_weight_and_bias(key, out_channels, in_channels)

    def __call__(self, v: Float[Array, "c_in *grid"]) -> Float[Array, "c_out *grid"]:
        out = channel_mix(self.weight, v)  # tensordot's numbers, a batched GEMM under vmap
        return out + self.bias.reshape((-1,) + (1,) * (v.ndim - 1))


class FNO(eqx.Module):
    r"""The Fourier neural operator: lifting, `depth` Fourier layers, projection (see the module docstring).

    **Arguments:**

    - `in_channels`, `out_channels`: channels of one input and one output sample.
    - `modes`: an int (1-D) or ``(m_1, …, m_d)``, ``d ≤ 3`` (sets the dimension): the retained
      wavenumbers of every Fourier layer (`SpectralConv`).
    - `width`: the channels of the Fourier layers.
    - `depth`: the number ``L`` of Fourier layers.
    - `key`: the initialisation.
    - `projection_width`: hidden channels of the projection (default ``4·width``, the FNO
      code's 128 at width 32).
    - `activation`: ``"gelu"`` (default), ``"relu"``, ``"tanh"``, ``"silu"`` or ``"identity"``.
    - `coordinates`: append the grid coordinates to the input (``"nodes"``: ``j/(s − 1)``, the
      FNO code's; ``"periodic"``: ``j/s``) or not (``None``).
    - `padding`: domain padding as a fraction of each axis (``0``: none, for periodic problems).
    - `factorization`, `rank`: factorised spectral weights (``"cp"``, ``"tucker"``; see
      `SpectralConv`).

    One sample ``a`` of shape ``(in_channels, s_1, …, s_d)`` maps to ``(out_channels, s_1, …,
    s_d)``; batch with `jax.vmap`.

    ```python
    model = FNO(1, 1, modes=(12, 12), width=32, depth=4, key=jax.random.key(0), padding=0.1)
    u = jax.vmap(model)(a[:, None])[:, 0]        # (batch, 85, 85) -> (batch, 85, 85)
    ```
    """

    lift: Pointwise
    spectral: tuple[SpectralConv, ...]
    local: tuple[Pointwise, ...]
    project_hidden: Pointwise
    project_out: Pointwise
    modes: tuple[int, ...] = eqx.field(static=True)
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    coordinates: Literal["nodes", "periodic"] | None = eqx.field(static=True)
    padding: float = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: int | Sequence[int],
        width: int,
        depth: int,
        *,
        key: PRNGKeyArray,
        projection_width: int | None = None,
        activation: str = "gelu",
        coordinates: Literal["nodes", "periodic"] | None = "nodes",
        padding: float = 0.0,
        factorization: Literal["cp", "tucker"] | None = None,
        rank: int = 8,
    ):
        owner = "FNO"
        self.in_channels = positive_int(in_channels, "in_channels", owner)
        self.out_channels = positive_int(out_channels, "out_channels", owner)
        width = positive_int(width, "width", owner)
        depth = positive_int(depth, "depth", owner)
        projection_width = 4 * width if projection_width is None else positive_int(projection_width, "projection_width", owner)
        self.modes = as_modes(modes, owner)
        activation_function(activation, owner)
        self.activation = activation
        if coordinates not in _COORDINATES:
            raise ValueError(f"{owner}: `coordinates` must be one of {_COORDINATES}, got {coordinates!r}.")
        self.coordinates = coordinates
        if isinstance(padding, bool) or not isinstance(padding, (int, float)) or not 0 <= padding <= 1:
            raise ValueError(f"{owner}: `padding` must be a fraction in [0, 1] of each axis, got {padding!r}.")
        self.padding = float(padding)
        k_lift, k_hidden, k_out, *k_layers = jax.random.split(key, 3 + 2 * depth)
        lifted_in = self.in_channels + (len(self.modes) if coordinates else 0)
        self.lift = Pointwise(lifted_in, width, key=k_lift)
        self.spectral = tuple(
            SpectralConv(width, width, self.modes, factorization=factorization, rank=rank, key=k)
            for k in k_layers[:depth]
        )
        self.local = tuple(Pointwise(width, width, key=k) for k in k_layers[depth:])
        self.project_hidden = Pointwise(width, projection_width, key=k_hidden)
        self.project_out = Pointwise(projection_width, self.out_channels, key=k_out)

    @property
    def ndim(self) -> int:
        return len(self.modes)

    @property
    def depth(self) -> int:
        return len(self.spectral)

    def padded_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The grid the Fourier layers see for an input grid of `shape`."""
        return tuple(s + int(self.padding * s + 0.5) for s in shape)  # round half up

    def __call__(self, a: Float[Array, "c_in *grid"]) -> Float[Array, "c_out *grid"]:
        a = jnp.asarray(a)
        if a.ndim != self.ndim + 1 or a.shape[0] != self.in_channels or not jnp.issubdtype(a.dtype, jnp.floating):
            raise ValueError(
                f"FNO: `a` must be one real sample of shape (in_channels={self.in_channels}, {self.ndim} spatial "
                f"axes) (vmap batches), got {a.dtype}{list(a.shape)}."
            )
        shape = a.shape[1:]
        padded = self.padded_shape(shape)
        check_grid(padded, self.modes, "FNO", "a" if padded == shape else "a (after domain padding)")
        sigma = activation_function(self.activation, "FNO")
        if self.coordinates is not None:
            a = jnp.concatenate([a, grid_coordinates(shape, self.coordinates, a.dtype)])
        v = self.lift(a)
        if padded != shape:
            v = jnp.pad(v, [(0, 0), *((0, p - s) for s, p in zip(shape, padded))])
        for layer, (spectral, local) in enumerate(zip(self.spectral, self.local)):
            v = spectral(v) + local(v)
            if layer < self.depth - 1:
                v = sigma(v)
        if padded != shape:
            v = v[(slice(None), *(slice(0, s) for s in shape))]
        return self.project(v)

    def project(self, v: Float[Array, "width *grid"]) -> Float[Array, "c_out *grid"]:
        """``Q``: ``width → projection_width → c_out`` at every point, in chunks of
        `_PROJECTION_CHUNK` points, each recomputed in the backward pass (`jax.checkpoint`).

        The hidden field is the widest of the network (``4·width`` channels): made whole it is
        written, read and re-read through main memory several times per training step. In
        chunks it never leaves the cache; the CPU step of the FNO-2D benchmark (64², batch 20,
        width 32) went from 206 to 87 ms for this part's gradient, measured."""
        sigma = activation_function(self.activation, "FNO")
        mlp = jax.checkpoint(lambda x: self.project_out(sigma(self.project_hidden(x))))
        channels, *grid = v.shape
        points = math.prod(grid)
        if points <= _PROJECTION_CHUNK:
            return mlp(v)
        pieces = -(-points // _PROJECTION_CHUNK)
        flat = jnp.pad(v.reshape(channels, points), [(0, 0), (0, pieces * _PROJECTION_CHUNK - points)])
        chunks = jnp.moveaxis(flat.reshape(channels, pieces, _PROJECTION_CHUNK), 1, 0)
        out = jnp.moveaxis(jax.lax.map(mlp, chunks), 0, 1).reshape(self.out_channels, -1)
        return out[:, :points].reshape(self.out_channels, *grid)
