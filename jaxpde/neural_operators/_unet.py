r"""A U-Net for fields on 1-D or 2-D grids, with periodic or zero (Dirichlet) padding.

Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation",
MICCAI 2015; as a PDE surrogate, the modern U-Net of Gupta & Brandstetter, "Towards
Multi-spatiotemporal-scale Generalized PDE Modeling", TMLR 2023, whose benchmarks it often leads
at a fixed resolution. For one sample ``a`` of ``c_in`` channels:

- an *encoder*: a block of two ``3^d`` convolutions with the activation, then at each of the
  `levels` levels a ``2×`` average pooling and a block that doubles the channels
  (``w, 2w, 4w, …``);
- a *decoder*: at each level a nearest-neighbour ``2×`` upsampling, a ``3^d`` convolution that
  halves the channels, the concatenation with the encoder's field of that size (the skip
  connection) and a block; a final ``1×1`` convolution to ``c_out``.

The convolutions pad their input by one cell: **periodically** (``padding="periodic"``, for a
periodic domain, where the stencil wraps round) or with **zeros** (``padding="zero"``, the
homogeneous Dirichlet extension of a field that vanishes outside the domain).

Unlike the FNO the network is tied to a grid: a ``3^d`` stencil covers a fixed number of cells,
not a fixed length, so a model trained at one resolution computes a different function at
another; and each level halves the grid, so every spatial size must be divisible by
``2^levels`` (an error otherwise, naming the sizes).
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._fno import activation_function
from ._spectral_conv import positive_int

__all__ = ["UNet"]

_PADDING = {"periodic": "CIRCULAR", "zero": "ZEROS"}


class _Block(eqx.Module):
    """Two ``3^d`` convolutions, each followed by the activation."""

    first: eqx.nn.Conv
    second: eqx.nn.Conv
    activation: str = eqx.field(static=True)

    def __init__(self, ndim, c_in, c_out, mode, activation, *, key):
        k1, k2 = jax.random.split(key)
        self.first = eqx.nn.Conv(ndim, c_in, c_out, 3, padding=1, padding_mode=mode, key=k1)
        self.second = eqx.nn.Conv(ndim, c_out, c_out, 3, padding=1, padding_mode=mode, key=k2)
        self.activation = activation

    def __call__(self, v):
        sigma = activation_function(self.activation, "UNet")
        return sigma(self.second(sigma(self.first(v))))


def _pool(v: Array) -> Array:
    """``2×`` average pooling over every spatial axis (channels first)."""
    c, *shape = v.shape
    split = [c]
    for s in shape:
        split += [s // 2, 2]
    return v.reshape(split).mean(axis=tuple(range(2, 2 * len(shape) + 1, 2)))


def _upsample(v: Array) -> Array:
    for axis in range(1, v.ndim):
        v = jnp.repeat(v, 2, axis=axis)
    return v


class UNet(eqx.Module):
    r"""A U-Net on ``(c_in, s_1[, s_2])`` fields (see the module docstring).

    **Arguments:**

    - `in_channels`, `out_channels`: channels of one input and one output sample.
    - `ndim`: 1 or 2 spatial dimensions.
    - `width`: channels of the first level (doubled at each level down).
    - `levels`: the number of ``2×`` downsamplings; every spatial size must be divisible by
      ``2^levels``.
    - `padding`: ``"periodic"`` or ``"zero"`` (Dirichlet).
    - `activation`: ``"gelu"`` (default), ``"relu"``, ``"tanh"``, ``"silu"``.
    - `key`: the initialisation.

    One sample ``a`` of shape ``(in_channels, *grid)`` maps to ``(out_channels, *grid)``.
    """

    encoder: tuple[_Block, ...]
    up: tuple[eqx.nn.Conv, ...]
    decoder: tuple[_Block, ...]
    out: eqx.nn.Conv
    in_channels: int = eqx.field(static=True)
    ndim: int = eqx.field(static=True)
    padding: str = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ndim: int,
        *,
        width: int = 32,
        levels: int = 3,
        padding: Literal["periodic", "zero"] = "periodic",
        activation: str = "gelu",
        key: PRNGKeyArray,
    ):
        self.in_channels = positive_int(in_channels, "in_channels", "UNet")
        out_channels = positive_int(out_channels, "out_channels", "UNet")
        if ndim not in (1, 2) or isinstance(ndim, bool):
            raise ValueError(f"UNet: `ndim` must be 1 or 2, got {ndim!r}.")
        self.ndim = int(ndim)
        width = positive_int(width, "width", "UNet")
        levels = positive_int(levels, "levels", "UNet", minimum=0)
        if padding not in _PADDING:
            raise ValueError(f"UNet: `padding` must be one of {tuple(_PADDING)}, got {padding!r}.")
        self.padding = padding
        activation_function(activation, "UNet")
        mode = _PADDING[padding]
        keys = iter(jax.random.split(key, 3 * levels + 2))
        channels = [width * 2**i for i in range(levels + 1)]
        self.encoder = tuple(
            _Block(ndim, self.in_channels if i == 0 else channels[i - 1], channels[i], mode, activation, key=next(keys))
            for i in range(levels + 1)
        )
        self.up = tuple(
            eqx.nn.Conv(ndim, channels[i + 1], channels[i], 3, padding=1, padding_mode=mode, key=next(keys))
            for i in reversed(range(levels))
        )
        self.decoder = tuple(_Block(ndim, 2 * channels[i], channels[i], mode, activation, key=next(keys))
                             for i in reversed(range(levels)))
        self.out = eqx.nn.Conv(ndim, width, out_channels, 1, key=next(keys))

    @property
    def levels(self) -> int:
        return len(self.up)

    def __call__(self, a: Float[Array, "c_in *grid"]) -> Float[Array, "c_out *grid"]:
        a = jnp.asarray(a)
        if a.ndim != self.ndim + 1 or a.shape[0] != self.in_channels:
            raise ValueError(
                f"UNet: `a` must be one sample of shape (in_channels={self.in_channels}, {self.ndim} spatial axes) "
                f"(vmap batches), got shape {a.shape}."
            )
        factor = 2**self.levels
        if any(s % factor for s in a.shape[1:]):
            raise ValueError(
                f"UNet: every spatial size of `a` must be divisible by 2**levels = {factor} (levels={self.levels}; "
                f"a U-Net is tied to its grid), got grid {a.shape[1:]}."
            )
        skips = []
        v = a
        for level, block in enumerate(self.encoder):
            v = block(v if level == 0 else _pool(v))
            skips.append(v)
        skips.pop()
        for up, block in zip(self.up, self.decoder):
            v = up(_upsample(v))
            v = block(jnp.concatenate([v, skips.pop()]))
        return self.out(v)
