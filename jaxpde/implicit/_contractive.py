r"""Equilibrium cells with a guaranteed contraction: a unique fixed point, reached from any start.

If ``z ↦ f(z, x)`` is a ``γ``-contraction, ``‖f(z, x) − f(z', x)‖ ≤ γ‖z − z'‖`` with ``γ < 1``,
then (Banach) it has exactly one fixed point ``z^\star(x)``, fixed-point iteration reaches it
from every ``z_0`` with error ``≤ γ^k ‖z_0 − z^\star‖``, and ``I − ∂f/∂z`` is invertible at it —
so the implicit gradient of `DeepEquilibrium` exists and its linear solve is well posed.
Convergent Graph Solvers (Park, Choo & Park, "Convergent Graph Solvers", ICLR 2022) build
such maps as *linear* fixed points ``z = γ A(x) z + b(x)`` with the input-dependent transition
``A(x)`` kept below unit operator norm. Here:

- `ContractiveLinearCell`: ``f(z, x) = T(x) z + B x + c``, ``T(x) = D(x) γ Â``, with
  ``Â = A / max(‖A‖₂, 1)`` (spectral normalisation, exact: the largest singular value) and the
  gate ``D(x) = diag σ(G x + g) ∈ (0, 1)`` — the CGS fixed point, ``‖T(x)‖₂ < γ`` for every
  ``x``, and ``z^\star = (I − T(x))^{−1}(B x + c)``.
- `FourierCell`: a Fourier layer of the FNO (Li et al., ICLR 2021) as an equilibrium map on a
  2D grid of ``c`` channels,

  $$f(z, x) = σ\big(s\,(\mathcal K z + W z) + x\big), \qquad
    \widehat{\mathcal K z}(k) = R_k\,\hat z(k)\ \ (k \text{ retained}),$$

  a spectral convolution (learned complex ``c × c`` matrices ``R_k`` on the lowest modes) plus
  a pointwise linear map ``W``, the injected features ``x`` and a pointwise activation ``σ``.
  In Fourier space the linear part is block diagonal: ``W + R_k`` on the retained modes, ``W``
  on the rest, so by Parseval its operator norm is at most
  ``ν = max(‖W‖₂, max_k ‖W + R_k‖₂)`` (the real projection of the inverse real FFT averages
  the blocks of ``±k`` and cannot raise it). With `gamma`, the scale is
  ``s = (γ/L_σ)/max(ν, 1)`` (``L_σ`` the activation's Lipschitz constant), so
  ``Lip(f) ≤ L_σ s ν ≤ γ``; without it ``s = 1`` — the plain FNO layer, no guarantee.

Both cells compute the normalisation from their weights at every call: the gradient sees it
(the weights learn under the constraint), and it costs a few small SVDs per application.
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._deq import AbstractEquilibriumCell

__all__ = ["ContractiveLinearCell", "FourierCell", "spectral_norm"]

# Upper bounds of sup |σ'|: GELU's slope peaks at 1.12890 (x = √2; the tanh approximation at
# 1.12899), so 1.129 bounds both.
_LIPSCHITZ = {"relu": 1.0, "tanh": 1.0, "gelu": 1.129}
_ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh, "gelu": jax.nn.gelu}


def spectral_norm(matrices: Array) -> Array:
    """The largest singular value over a stack of matrices ``(..., m, n)``, real or complex."""
    return jnp.max(jnp.linalg.svd(matrices, compute_uv=False))


def _check_gamma(gamma, owner: str, optional: bool = False):
    if optional and gamma is None:
        return
    if isinstance(gamma, bool) or not (isinstance(gamma, (int, float)) and 0 < gamma < 1):
        raise ValueError(f"{owner}: `gamma` must be a number in (0, 1){' or None' if optional else ''}, got {gamma!r}.")


def _positive_int(value, name: str, owner: str):
    if isinstance(value, bool) or not (isinstance(value, int) and value >= 1):
        raise ValueError(f"{owner}: `{name}` must be a positive integer, got {value!r}.")


class ContractiveLinearCell(AbstractEquilibriumCell):
    r"""``f(z, x) = σ(G x + g) ⊙ (γ Â z) + B x + c``: the Convergent-Graph-Solver linear fixed point.

    ``Â = A / max(‖A‖₂, 1)``, so the transition ``T(x) = diag σ(Gx + g) γ Â`` has
    ``‖T(x)‖₂ < γ`` for every input, and the unique fixed point is
    ``z^\star = (I − T(x))^{−1}(B x + c)`` (see the module docstring).

    **Arguments:** `state_size` (``n``), `input_size`, `gamma` in ``(0, 1)``, `key`.
    """

    transition_weight: Float[Array, "n n"]
    gate: eqx.nn.Linear
    inject: eqx.nn.Linear
    gamma: float = eqx.field(static=True)

    def __init__(self, state_size: int, input_size: int, gamma: float = 0.9, *, key: PRNGKeyArray):
        for name, value in (("state_size", state_size), ("input_size", input_size)):
            _positive_int(value, name, "ContractiveLinearCell")
        _check_gamma(gamma, "ContractiveLinearCell")
        k_a, k_g, k_b = jax.random.split(key, 3)
        self.transition_weight = jax.random.normal(k_a, (state_size, state_size)) / jnp.sqrt(state_size)
        self.gate = eqx.nn.Linear(input_size, state_size, key=k_g)
        self.inject = eqx.nn.Linear(input_size, state_size, key=k_b)
        self.gamma = float(gamma)

    def transition(self, x: Float[Array, " input"]) -> Float[Array, "n n"]:
        """``T(x) = diag σ(G x + g) γ Â``, of operator norm below ``γ``."""
        weight = self.transition_weight
        normalised = weight / jnp.maximum(spectral_norm(weight), 1.0)
        return jax.nn.sigmoid(self.gate(x))[:, None] * (self.gamma * normalised)

    def __call__(self, z: Float[Array, " n"], x: Float[Array, " input"]) -> Float[Array, " n"]:
        return self.transition(x) @ z + self.inject(x)

    def init(self, x: Float[Array, " input"]) -> Float[Array, " n"]:
        return jnp.zeros(self.transition_weight.shape[0], jnp.result_type(x, self.transition_weight))

    def lipschitz(self) -> Array:
        return self.gamma * jnp.minimum(spectral_norm(self.transition_weight), 1.0)


class FourierCell(AbstractEquilibriumCell):
    r"""``f(z, x) = σ(s (𝒦 z + W z) + x)`` on ``(width, s₁, s₂)`` fields: a Fourier layer as an equilibrium map.

    **Arguments:**

    - `width`: the channels ``c`` of the state and of the injected features ``x``.
    - `modes`: ``(m₁, m₂)``, the retained modes: ``|k₁| < m₁`` (both signs, ``2 m₁ ≤ s₁``) and
      ``0 ≤ k₂ < m₂`` (``m₂ ≤ s₂//2 + 1``) of the real FFT, as in the FNO.
    - `gamma`: ``None`` for the plain Fourier layer, or the guaranteed Lipschitz constant
      ``γ ∈ (0, 1)`` of ``z ↦ f(z, x)`` (see the module docstring).
    - `activation`: ``"gelu"`` (the FNO's), ``"relu"`` or ``"tanh"``.
    - `key`: the weights' initialisation (the FNO's: ``R_k`` uniform in ``[0, 1/c²)``, ``W`` as
      a ``1 × 1`` convolution).

    The state starts at zero (``init``), the shape of ``x``.
    """

    spectral: Float[Array, "2 m1 m2 c c 2"]  # the two corners k₁ ≥ 0 and k₁ < 0; real and imaginary parts
    pointwise: Float[Array, "c c"]
    gamma: float | None = eqx.field(static=True)
    activation: Literal["gelu", "relu", "tanh"] = eqx.field(static=True)

    def __init__(self, width: int, modes: tuple[int, int], gamma: float | None = None,
                 activation: Literal["gelu", "relu", "tanh"] = "gelu", *, key: PRNGKeyArray):
        _positive_int(width, "width", "FourierCell")
        if not (isinstance(modes, (tuple, list)) and len(modes) == 2):
            raise ValueError(f"FourierCell: `modes` must be a pair (m1, m2) of positive integers, got {modes!r}.")
        for m in modes:
            _positive_int(m, "modes", "FourierCell")
        _check_gamma(gamma, "FourierCell", optional=True)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"FourierCell: `activation` must be one of {tuple(_ACTIVATIONS)}, got {activation!r}.")
        k_r, k_w = jax.random.split(key)
        m1, m2 = modes
        self.spectral = jax.random.uniform(k_r, (2, m1, m2, width, width, 2)) / width**2
        bound = 1 / jnp.sqrt(width)
        self.pointwise = jax.random.uniform(k_w, (width, width), minval=-bound, maxval=bound)
        self.gamma = None if gamma is None else float(gamma)
        self.activation = activation

    @property
    def modes(self) -> tuple[int, int]:
        return self.spectral.shape[1], self.spectral.shape[2]

    def _blocks(self) -> Array:
        """``W + R_k`` for every retained mode, ``(2, m₁, m₂, c, c)`` complex."""
        return self.pointwise + (self.spectral[..., 0] + 1j * self.spectral[..., 1])

    def _norm_bound(self) -> Array:
        """``ν = max(‖W‖₂, max_k ‖W + R_k‖₂)``, the linear part's operator norm bound before scaling."""
        return jnp.maximum(spectral_norm(self.pointwise), spectral_norm(self._blocks()))

    def _scale(self) -> Array | float:
        if self.gamma is None:
            return 1.0
        return (self.gamma / _LIPSCHITZ[self.activation]) / jnp.maximum(self._norm_bound(), 1.0)

    def linear(self, z: Float[Array, "c s1 s2"]) -> Float[Array, "c s1 s2"]:
        """``s (𝒦 z + W z)``, the linear part of the map."""
        c, s1, s2 = z.shape
        m1, m2 = self.modes
        if c != self.pointwise.shape[0] or 2 * m1 > s1 or m2 > s2 // 2 + 1:
            raise ValueError(
                f"FourierCell: the state must have shape ({self.pointwise.shape[0]}, s1, s2) with 2*{m1} <= s1 and "
                f"{m2} <= s2//2 + 1, got {z.shape}."
            )
        weights = self.spectral[..., 0] + 1j * self.spectral[..., 1]
        z_hat = jnp.fft.rfft2(z)
        out = jnp.zeros_like(z_hat)
        out = out.at[:, :m1, :m2].set(jnp.einsum("xyoi,ixy->oxy", weights[0], z_hat[:, :m1, :m2]))
        out = out.at[:, s1 - m1:, :m2].set(jnp.einsum("xyoi,ixy->oxy", weights[1], z_hat[:, s1 - m1:, :m2]))
        spectral = jnp.fft.irfft2(out, s=(s1, s2))
        return self._scale() * (spectral + jnp.einsum("oi,ixy->oxy", self.pointwise, z))

    def __call__(self, z: Float[Array, "c s1 s2"], x: Float[Array, "c s1 s2"]) -> Float[Array, "c s1 s2"]:
        return _ACTIVATIONS[self.activation](self.linear(z) + x)

    def init(self, x: Float[Array, "c s1 s2"]) -> Float[Array, "c s1 s2"]:
        return jnp.zeros_like(x)

    def lipschitz(self) -> Array:
        return _LIPSCHITZ[self.activation] * self._scale() * self._norm_bound()
