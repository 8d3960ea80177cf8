r"""Normalisers: affine maps fitted on training data, as equinox modules usable inside `jax.jit`.

Neural operators train on standardised fields. With the statistics of the **training** split
only (the test split must not leak into them),

- `UnitGaussianNormalizer` standardises **pointwise**: for samples ``x^{(n)}(ξ)`` at grid
  points ``ξ``,

  $$\mu(\xi) = \frac1N\sum_n x^{(n)}(\xi), \qquad
    \sigma(\xi) = \Big(\frac1N\sum_n (x^{(n)}(\xi) - \mu(\xi))^2\Big)^{1/2}, \qquad
    \operatorname{encode}(x) = \frac{x - \mu}{\sigma + \varepsilon},$$

  the normaliser of the FNO reference code (Li et al., ICLR 2021), where it is used for the
  Darcy inputs and outputs and the Burgers inputs. It ties the model to the training
  resolution (``μ`` and ``σ`` are fields on that grid).
- `GaussianNormalizer` uses one **global** mean and standard deviation over all samples and
  points: resolution-independent, so suited to zero-shot super-resolution.

``decode`` is the exact inverse, ``decode(x) = x (σ + ε) + μ``. The statistics use the
population standard deviation (``ddof = 0``; the FNO code's ``torch.std`` uses ``ddof = 1``, a
relative difference of ``1/(2N)``). ``ε`` keeps points where every training sample agrees (e.g.
the zero boundary of Darcy solutions, where ``σ = 0``) finite: there ``encode`` maps to
``(x - μ)/ε``, which is ``0`` for data obeying the same constraint.

Both are pytrees of arrays: they pass through `jax.jit`, `jax.vmap` and `jax.grad`, and
`encode`/`decode` broadcast over leading batch axes (``x`` of shape ``(..., *sample_shape)``).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

__all__ = ["GaussianNormalizer", "UnitGaussianNormalizer"]


def _as_samples(x, owner: str) -> Array:
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"{owner}.fit: `x` must have a leading sample axis with >= 1 sample, got shape {x.shape}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def _check_eps(eps: float, owner: str) -> float:
    if not eps > 0:
        raise ValueError(f"{owner}: `eps` must be positive, got {eps!r}.")
    return float(eps)


class UnitGaussianNormalizer(eqx.Module):
    r"""Pointwise standardisation ``(x - μ(ξ)) / (σ(ξ) + ε)`` (see the module docstring).

    Build with `fit` on the training samples, or directly from ``mean`` and ``std`` fields of the
    sample shape.
    """

    mean: Float[Array, "*sample"]
    std: Float[Array, "*sample"]
    eps: float = eqx.field(static=True, default=1e-5)

    def __init__(self, mean: Float[ArrayLike, "*sample"], std: Float[ArrayLike, "*sample"], eps: float = 1e-5):
        self.mean = jnp.asarray(mean)
        self.std = jnp.asarray(std)
        if self.mean.shape != self.std.shape:
            raise ValueError(
                f"UnitGaussianNormalizer: `mean` and `std` must have the same shape, got {self.mean.shape} and "
                f"{self.std.shape}."
            )
        self.eps = _check_eps(eps, "UnitGaussianNormalizer")

    @classmethod
    def fit(cls, x: Float[ArrayLike, "n *sample"], eps: float = 1e-5) -> UnitGaussianNormalizer:
        """Statistics over the leading (sample) axis of the training array `x`."""
        x = _as_samples(x, "UnitGaussianNormalizer")
        return cls(jnp.mean(x, axis=0), jnp.std(x, axis=0), eps)

    def _check(self, x: Array) -> None:
        shape = self.mean.shape
        if x.shape[x.ndim - len(shape) :] != shape or x.ndim < len(shape):
            raise ValueError(
                f"UnitGaussianNormalizer: expected an array of shape (..., {', '.join(map(str, shape))}) — the "
                f"sample shape it was fitted on — got {x.shape}. Fit a normaliser per resolution, or use "
                "GaussianNormalizer for resolution-independent statistics."
            )

    def encode(self, x: Float[ArrayLike, "*batch *sample"]) -> Float[Array, "*batch *sample"]:
        x = jnp.asarray(x)
        self._check(x)
        return (x - self.mean) / (self.std + self.eps)

    def decode(self, x: Float[ArrayLike, "*batch *sample"]) -> Float[Array, "*batch *sample"]:
        x = jnp.asarray(x)
        self._check(x)
        return x * (self.std + self.eps) + self.mean


class GaussianNormalizer(eqx.Module):
    r"""Global standardisation ``(x - μ) / (σ + ε)`` with scalar ``μ``, ``σ`` over all samples and points."""

    mean: Float[Array, ""]
    std: Float[Array, ""]
    eps: float = eqx.field(static=True, default=1e-5)

    def __init__(self, mean: Float[ArrayLike, ""], std: Float[ArrayLike, ""], eps: float = 1e-5):
        self.mean = jnp.asarray(mean)
        self.std = jnp.asarray(std)
        if self.mean.ndim or self.std.ndim:
            raise ValueError(
                f"GaussianNormalizer: `mean` and `std` must be scalars, got shapes {self.mean.shape} and "
                f"{self.std.shape}; use UnitGaussianNormalizer for pointwise statistics."
            )
        self.eps = _check_eps(eps, "GaussianNormalizer")

    @classmethod
    def fit(cls, x: Float[ArrayLike, "n *sample"], eps: float = 1e-5) -> GaussianNormalizer:
        """Mean and standard deviation of every entry of the training array `x`."""
        x = _as_samples(x, "GaussianNormalizer")
        return cls(jnp.mean(x), jnp.std(x), eps)

    def encode(self, x: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
        return (jnp.asarray(x) - self.mean) / (self.std + self.eps)

    def decode(self, x: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
        return jnp.asarray(x) * (self.std + self.eps) + self.mean
