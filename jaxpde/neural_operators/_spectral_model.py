r"""Transform Once: one Fourier transform in, every layer on the truncated spectrum, one inverse out.

Poli, Massaroli, Berto, Park, Ermon & Park, "Transform Once: Efficient Operator Learning in
Frequency Domain", NeurIPS 2022 (T1). An FNO transforms forward and back in every layer, so that
its pointwise activation acts in physical space. T1 transforms once: for one sample ``a`` of
``c_in`` channels on a periodic grid,

$$\hat a = \mathcal T_M\,\mathcal F a, \qquad z_0 = P\,[\Re\hat a; \Im\hat a], \qquad
z_{\ell+1} = z_\ell + \sigma\big(A_\ell z_\ell B_\ell + c_\ell\big), \qquad
u = \mathcal F^{-1}\,\mathcal T_M^{*}\,Q z_L,$$

- ``𝒯_M`` keeps the retained block of the real FFT (the same modes as `SpectralConv`:
  ``|k_i| < m_i`` on leading axes, ``0 ≤ k_d < m_d`` on the last) and ``𝒯_M^*`` puts it back
  into a zero spectrum;
- the complex coefficients are carried as real channels (real and imaginary parts stacked);
  ``P``, ``Q`` and ``A_ℓ`` mix channels at every mode alike; ``B_ℓ`` is a **dense** real
  ``K × K`` matrix over the ``K`` retained modes (flattened), so that each layer couples every
  mode with every other — the "frequency-domain" model of T1, where the FNO's diagonal spectral
  weights only couple modes through the physical-space activation;
- ``σ`` acts entrywise on the spectral channels (T1 applies its nonlinearities in frequency
  domain; nothing is transformed back in between), with residual connections.

The transforms use ``norm="forward"`` (the forward FFT divides by the number of points), so the
coefficients are the Fourier coefficients of the field, the same at every resolution: for an input
band-limited to the grids' resolved modes the output is one trigonometric polynomial, sampled,
**exactly** at every resolution (the FNO's activation aliases between layers; this model has no
physical-space step to alias). The output is band-limited to the retained modes.

What differs from the paper: T1 also offers the real-valued DCT for non-periodic data and an
initialisation scheme (variance-preserving for the reduced-order spectra); here only the Fourier
transform (periodic data) and a Glorot-like initialisation with ``B_ℓ`` near the identity.
"""

from collections.abc import Sequence

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._fno import Pointwise, activation_function
from ._spectral_conv import as_modes, check_grid, from_retained_spectrum, positive_int, retained_shape, retained_spectrum

__all__ = ["TransformOnce"]


class TransformOnce(eqx.Module):
    r"""The T1 operator: layers on the truncated spectrum between one FFT and one inverse FFT (see
    the module docstring).

    **Arguments:**

    - `in_channels`, `out_channels`: channels of one input and one output sample.
    - `modes`: an int (1-D) or ``(m_1, …, m_d)``, ``d ≤ 3``: the retained block.
    - `width`: complex channels of the layers (``2·width`` real channels).
    - `depth`: the number of residual frequency-domain layers.
    - `activation`: ``"gelu"`` (default), ``"relu"``, ``"tanh"``, ``"silu"``, ``"identity"``.
    - `key`: the initialisation.

    One sample ``a`` of shape ``(in_channels, s_1, …, s_d)`` maps to ``(out_channels, s_1, …,
    s_d)``, at any grid that holds the modes.
    """

    lift: Pointwise
    channel_mix: tuple[Pointwise, ...]
    mode_mix: tuple[Float[Array, "K K"], ...]
    project: Pointwise
    modes: tuple[int, ...] = eqx.field(static=True)
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: int | Sequence[int],
        width: int,
        depth: int,
        *,
        activation: str = "gelu",
        key: PRNGKeyArray,
    ):
        self.in_channels = positive_int(in_channels, "in_channels", "TransformOnce")
        self.out_channels = positive_int(out_channels, "out_channels", "TransformOnce")
        width = positive_int(width, "width", "TransformOnce")
        depth = positive_int(depth, "depth", "TransformOnce")
        self.modes = as_modes(modes, "TransformOnce")
        activation_function(activation, "TransformOnce")
        self.activation = activation
        size = int(np.prod(retained_shape(self.modes)))
        k_lift, k_project, *k_layers = jax.random.split(key, 2 + 2 * depth)
        self.lift = Pointwise(2 * self.in_channels, 2 * width, key=k_lift)
        self.channel_mix = tuple(Pointwise(2 * width, 2 * width, key=k) for k in k_layers[:depth])
        # Near the identity: at initialisation each layer mostly acts mode by mode, and the
        # coupling between modes is learned.
        self.mode_mix = tuple(jnp.eye(size) + jax.random.normal(k, (size, size)) / (2 * size**0.5)
                              for k in k_layers[depth:])
        self.project = Pointwise(2 * width, 2 * self.out_channels, key=k_project)

    @property
    def ndim(self) -> int:
        return len(self.modes)

    def __call__(self, a: Float[Array, "c_in *grid"]) -> Float[Array, "c_out *grid"]:
        a = jnp.asarray(a)
        if a.ndim != self.ndim + 1 or a.shape[0] != self.in_channels or not jnp.issubdtype(a.dtype, jnp.floating):
            raise ValueError(
                f"TransformOnce: `a` must be one real sample of shape (in_channels={self.in_channels}, {self.ndim} "
                f"spatial axes) (vmap batches), got {a.dtype}{list(a.shape)}."
            )
        shape = a.shape[1:]
        check_grid(shape, self.modes, "TransformOnce", "a")
        points = math.prod(shape)  # the forward-normalised transform: coefficients independent of the grid
        spectrum = retained_spectrum(a, self.modes) / points
        kept = spectrum.shape[1:]
        z = self.lift(jnp.concatenate([spectrum.real, spectrum.imag]).astype(a.dtype))
        sigma = activation_function(self.activation, "TransformOnce")
        for channels, modes in zip(self.channel_mix, self.mode_mix):
            mixed = channels(z).reshape(z.shape[0], -1) @ modes
            z = z + sigma(mixed.reshape(z.shape))
        out = self.project(z)
        block = jax.lax.complex(out[: self.out_channels], out[self.out_channels :]).reshape(self.out_channels, *kept)
        return (from_retained_spectrum(block, self.modes, shape) * points).astype(a.dtype)
