r"""Losses for operator learning: relative L2 and relative H1 of one predicted field.

For a prediction ``p`` and a target ``t`` of one sample, shape ``(*channels, *grid)``:

$$\mathcal E_{L^2}(p, t) = \frac{\|p - t\|_{L^2}}{\|t\|_{L^2}}, \qquad
  \mathcal E_{H^1}(p, t) = \frac{\|p - t\|_{H^1}}{\|t\|_{H^1}}, \qquad
  \|u\|_{H^1}^2 = \sum_k \big(1 + |k|^2\big)\,|\hat u_k|^2 ,$$

the norms summed over the channels. The relative L2 error is the FNO paper's training loss and
test metric (Li et al., "Fourier Neural Operator for Parametric PDEs", ICLR 2021); the H1 loss
also weighs the error of the gradient, which the L2 loss under-weights at high wavenumbers
(Li et al. train their Navier–Stokes and Darcy models with it in the neuraloperator library,
where the gradient is a finite difference).

**H1 here is spectral, on a periodic grid**: ``û = rfftn(u)`` over the trailing `spatial_ndim`
axes and ``k`` the angular wavenumbers ``2π m / L`` of the box `lengths`, so the norm is the
exact ``∫ u² + |∇u|²`` of the trigonometric interpolant (Parseval). Every mode is counted with
its weight in the full spectrum (the modes whose conjugate is not stored in the half spectrum
count twice). On a non-periodic field use a finite-difference gradient instead: the spectral
one sees the jump at the boundary.

`relative_l2_loss` and `relative_h1_loss` take **one sample**; `operator_loss` builds the
``loss_fn(model, batch, key)`` of `jaxpde.training.fit` for a batch ``(inputs, targets)``: the
mean over the batch of the per-sample error of ``vmap(model)(inputs)`` (optionally decoded by a
normaliser first), as the FNO paper averages its test error.
"""

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

__all__ = ["relative_l2_loss", "relative_h1_loss", "operator_loss"]


def _pair(prediction, target, owner: str) -> tuple[Array, Array]:
    prediction, target = jnp.asarray(prediction), jnp.asarray(target)
    if prediction.shape != target.shape:
        raise ValueError(
            f"{owner}: `prediction` and `target` must have one shape, got {prediction.shape} and {target.shape}."
        )
    return prediction, target


def relative_l2_loss(prediction: Float[ArrayLike, "..."], target: Float[ArrayLike, "..."]) -> Float[Array, ""]:
    r"""``‖prediction − target‖₂ / ‖target‖₂`` over every axis of one sample (a scalar)."""
    prediction, target = _pair(prediction, target, "relative_l2_loss")
    return jnp.sqrt(jnp.sum((prediction - target) ** 2) / jnp.sum(target**2))


def _h1_weights(shape: tuple[int, ...], lengths: tuple[float, ...]) -> np.ndarray:
    """``(1 + |k|²)`` times the mode's multiplicity in the full spectrum, on the rfftn half grid."""
    axes = []
    for i, (n, length) in enumerate(zip(shape, lengths)):
        m = np.fft.rfftfreq(n, 1.0 / n) if i == len(shape) - 1 else np.fft.fftfreq(n, 1.0 / n)
        axes.append(2 * np.pi * m / length)
    k = np.meshgrid(*axes, indexing="ij")
    weight = 1.0 + sum(ki**2 for ki in k)
    # The half spectrum stores m = 0 … n//2 of the last axis; every m whose conjugate partner
    # −m is not stored (0 < m < n/2) stands for two modes of the full spectrum.
    n_last = shape[-1]
    m_last = np.arange(n_last // 2 + 1)
    multiplicity = np.where((m_last > 0) & (2 * m_last != n_last), 2.0, 1.0)
    return weight * multiplicity


def relative_h1_loss(
    prediction: Float[ArrayLike, "..."],
    target: Float[ArrayLike, "..."],
    *,
    spatial_ndim: int,
    lengths: float | Sequence[float] = 1.0,
) -> Float[Array, ""]:
    r"""``‖p − t‖_{H¹} / ‖t‖_{H¹}`` of one periodic sample, ``‖u‖²_{H¹} = Σ_k (1 + |k|²)|û_k|²``.

    **Arguments:**

    - `prediction`, `target`: one sample, shape ``(*channels, *grid)``; the trailing
      `spatial_ndim` axes are the periodic grid.
    - `spatial_ndim`: the number of grid axes (1, 2 or 3).
    - `lengths`: the period of each grid axis (one number for all), which sets ``k = 2π m/L``.
    """
    prediction, target = _pair(prediction, target, "relative_h1_loss")
    if not isinstance(spatial_ndim, int) or isinstance(spatial_ndim, bool) or not 1 <= spatial_ndim <= prediction.ndim:
        raise ValueError(
            f"relative_h1_loss: `spatial_ndim` must be an integer in [1, {prediction.ndim}] (the field's rank), "
            f"got {spatial_ndim!r}."
        )
    lengths = (lengths,) * spatial_ndim if isinstance(lengths, (int, float)) else tuple(lengths)
    if len(lengths) != spatial_ndim or not all(math.isfinite(x) and x > 0 for x in lengths):
        raise ValueError(
            f"relative_h1_loss: `lengths` must be {spatial_ndim} positive periods, got {lengths!r}."
        )
    axes = tuple(range(-spatial_ndim, 0))
    weights = jnp.asarray(_h1_weights(prediction.shape[-spatial_ndim:], lengths), dtype=prediction.dtype)

    def norm2(u):
        return jnp.sum(weights * jnp.abs(jnp.fft.rfftn(u, axes=axes)) ** 2)

    return jnp.sqrt(norm2(prediction - target) / norm2(target))


def operator_loss(
    norm: str = "l2",
    *,
    decode: Callable[[Array], Array] | None = None,
    spatial_ndim: int | None = None,
    lengths: float | Sequence[float] = 1.0,
) -> Callable:
    r"""``loss_fn(model, (inputs, targets), key)`` for `jaxpde.training.fit`: the batch mean of the relative error.

    The model maps one sample; ``vmap(model)(inputs)`` is compared with `targets` sample by
    sample, after ``decode`` (e.g. ``UnitGaussianNormalizer.decode``: train on standardised
    outputs, measure the error in physical units, as the FNO code does).

    **Arguments:**

    - `norm`: ``"l2"`` (`relative_l2_loss`) or ``"h1"`` (`relative_h1_loss`, which needs
      `spatial_ndim` and takes `lengths`).
    - `decode`: applied to the batched prediction before the error (default: none).

    The returned loss also logs ``relative_l2`` when training with H1.
    """
    if norm not in ("l2", "h1"):
        raise ValueError(f"operator_loss: `norm` must be 'l2' or 'h1', got {norm!r}.")
    if norm == "h1" and spatial_ndim is None:
        raise ValueError("operator_loss: `norm='h1'` needs `spatial_ndim` (the number of periodic grid axes).")

    def per_sample(p, t):
        if norm == "l2":
            return relative_l2_loss(p, t)
        return relative_h1_loss(p, t, spatial_ndim=spatial_ndim, lengths=lengths)

    def loss_fn(model, batch, key):
        inputs, targets = batch
        prediction = jax.vmap(model)(inputs)
        if decode is not None:
            prediction = decode(prediction)
        loss = jnp.mean(jax.vmap(per_sample)(prediction, targets))
        if norm == "l2":
            return loss
        return loss, {"relative_l2": jnp.mean(jax.vmap(relative_l2_loss)(prediction, targets))}

    return loss_fn
