r"""Regularisers ``R(θ)`` for inverse problems: Tikhonov, smoothed total variation, a learned prior.

An inverse problem minimises ``Φ(θ) + R(θ)``; the regulariser is what makes the minimiser unique
and stable when the data ``y`` do not determine ``θ`` (sparse sensors, a smoothing forward map).

- `Tikhonov` — ``R(θ) = (λ/2) ‖L(θ − θ₀)‖²`` with ``L = I`` (order 0) or the forward-difference
  gradient ``∇_h`` (order 1, an ``H¹``-seminorm penalty that favours smooth fields), weighted by
  the cell volume ``∏ h_i`` so that ``λ`` means the same at every resolution (Tikhonov &
  Arsenin, "Solutions of Ill-Posed Problems", 1977; Engl, Hanke & Neubauer, "Regularization of
  Inverse Problems", 1996, ch. 5).
- `TotalVariation` — ``R(θ) = λ Σ_cells √(|∇_h θ|² + ε²) ∏ h_i``, the smoothed TV of Rudin,
  Osher & Fatemi (Physica D 60, 1992) / Vogel & Oman (SIAM J. Sci. Comput. 17, 1996): it
  penalises the *length* of jumps, not their height, and so keeps sharp interfaces that
  Tikhonov blurs. ``ε > 0`` makes it differentiable.
- `DenoiserPrior` — regularisation by denoising (RED; Romano, Elad & Milanfar, SIAM J. Imaging
  Sci. 10, 2017): ``∇R(θ) = (λ/σ²)(θ − D(θ))`` for a denoiser ``D`` at noise level ``σ`` — here
  a `jaxpde.samplers.Denoiser`'s Tweedie estimate ``E[x₀ | x_t = θ]`` at a small diffusion time
  ``t``, so that ``∇R ≈ −λ ∇ log p(θ)`` (Tweedie: ``x − E[x₀|x] = −σ² ∇ log p_t(x)`` for
  ``α_t ≈ 1``). Its value ``(λ/2σ²) ⟨θ, θ − D(θ)⟩`` is the RED energy, consistent with the
  gradient only for a denoiser with a symmetric Jacobian (Reehorst & Schniter, IEEE TCI 5,
  2019), so minimise it with a gradient method (optax), not a line search.

Each is an `equinox.Module` with ``__call__(θ) -> scalar``; the quadratic ones also give
``residuals(θ)`` with ``R = ½‖r‖²`` (for Gauss–Newton). The weight ``λ`` is an array leaf, so a
bilevel problem can differentiate with respect to it (`jaxpde.implicit` bilevel tools).
"""

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

__all__ = ["AbstractRegulariser", "Tikhonov", "TotalVariation", "DenoiserPrior", "check_weight"]


def check_weight(owner: str, weight) -> Array:
    """``weight`` as an array; a concrete negative or non-finite value raises, naming it."""
    if not isinstance(weight, jax.core.Tracer):
        value = float(jnp.asarray(weight))
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"{owner}: `weight` must be a non-negative finite number, got {value!r}.")
    return jnp.asarray(weight)


def _forward_differences(theta: Array, spacing: tuple[float, ...]) -> list[Array]:
    """``(θ_{i+e_k} − θ_i)/h_k`` along each axis, one shorter along that axis (no boundary values assumed)."""
    return [jnp.diff(theta, axis=k) / h for k, h in enumerate(spacing)]


class AbstractRegulariser(eqx.Module):
    """Base class: ``__call__(θ)`` is ``R(θ) ≥ 0``; `weight` is ``λ ≥ 0`` (an array leaf)."""

    weight: eqx.AbstractVar[Array]

    @abc.abstractmethod
    def __call__(self, theta: Float[Array, "*shape"]) -> Float[Array, ""]:
        """The penalty ``R(θ)``."""

    def residuals(self, theta: Float[Array, "*shape"]) -> Float[Array, " k"]:
        """``r(θ)`` with ``R(θ) = ½‖r(θ)‖²`` (Gauss–Newton); only the quadratic regularisers have it."""
        raise NotImplementedError(f"{type(self).__name__} is not a sum of squares; use a minimiser (L-BFGS), not Gauss–Newton.")


class Tikhonov(AbstractRegulariser):
    r"""``(λ/2) ‖L(θ − θ₀)‖²_h`` with ``L = I`` (`order` 0) or ``∇_h`` (`order` 1).

    **Arguments:**

    - `weight`: ``λ ≥ 0``.
    - `spacing`: the grid spacings ``h_i`` (a tuple; `Grid.spacing`); the norm carries the cell
      volume ``∏ h_i``. ``None``: unit spacing in as many axes as ``θ`` has (a plain vector).
    - `order`: 0 or 1.
    - `reference`: ``θ₀`` (a scalar or a field; default 0). With order 1 a constant ``θ₀`` does
      not matter.
    """

    weight: Array
    spacing: tuple[float, ...] | None = eqx.field(static=True)
    order: int = eqx.field(static=True)
    reference: Array

    def __init__(self, weight: ArrayLike, spacing=None, order: int = 1, reference: ArrayLike = 0.0):
        self.weight = check_weight("Tikhonov", weight)
        if order not in (0, 1):
            raise ValueError(f"Tikhonov: `order` must be 0 (L = I) or 1 (L = the gradient), got {order!r}.")
        self.spacing = None if spacing is None else tuple(float(h) for h in spacing)
        self.order = order
        self.reference = jnp.asarray(reference)

    def _spacing(self, theta):
        return self.spacing if self.spacing is not None else (1.0,) * theta.ndim

    def residuals(self, theta):
        spacing = self._spacing(theta)
        if len(spacing) != theta.ndim:
            raise ValueError(f"Tikhonov: `theta` has {theta.ndim} axes but `spacing` has {len(spacing)} entries.")
        scale = jnp.sqrt(self.weight * math.prod(spacing))
        shifted = theta - self.reference
        if self.order == 0:
            return scale * shifted.reshape(-1)
        return scale * jnp.concatenate([d.reshape(-1) for d in _forward_differences(shifted, spacing)])

    def __call__(self, theta):
        return 0.5 * jnp.sum(self.residuals(theta) ** 2)


class TotalVariation(AbstractRegulariser):
    r"""Smoothed isotropic total variation ``λ Σ √(|∇_h θ|² + ε²) ∏h_i``.

    The gradient is taken by forward differences on the cells where all of them exist
    (``θ[:-1, :-1]`` in 2D), so a field of shape ``(n₁, …, n_d)`` has ``∏(n_i − 1)`` terms.

    **Arguments:**

    - `weight`: ``λ ≥ 0``.
    - `spacing`: the grid spacings (`Grid.spacing`); ``None``: unit spacing.
    - `epsilon`: the smoothing ``ε > 0`` (in units of ``θ`` per length).
    """

    weight: Array
    spacing: tuple[float, ...] | None = eqx.field(static=True)
    epsilon: float = eqx.field(static=True)

    def __init__(self, weight: ArrayLike, spacing=None, epsilon: float = 1e-2):
        self.weight = check_weight("TotalVariation", weight)
        if not (epsilon > 0 and math.isfinite(epsilon)):
            raise ValueError(f"TotalVariation: `epsilon` must be positive and finite (it smooths |∇θ| at 0), got {epsilon!r}.")
        self.spacing = None if spacing is None else tuple(float(h) for h in spacing)
        self.epsilon = float(epsilon)

    def __call__(self, theta):
        spacing = self.spacing if self.spacing is not None else (1.0,) * theta.ndim
        if len(spacing) != theta.ndim:
            raise ValueError(f"TotalVariation: `theta` has {theta.ndim} axes but `spacing` has {len(spacing)} entries.")
        differences = _forward_differences(theta, spacing)
        # Crop each difference to the common cells (drop the last node along the other axes).
        cells = tuple(slice(0, n - 1) for n in theta.shape)
        squared = sum(d[cells] ** 2 for d in differences)
        return self.weight * math.prod(spacing) * jnp.sum(jnp.sqrt(squared + self.epsilon**2))


class DenoiserPrior(AbstractRegulariser):
    r"""Regularisation by denoising with a `jaxpde.samplers.Denoiser` as the learned prior.

    ``R(θ) = (λ/2σ_t²) ⟨θ, θ − D(θ)⟩`` with gradient ``(λ/σ_t²)(θ − D(θ))``, where ``D(θ) =``
    ``denoiser(α_t θ, t, to="x0")`` is the Tweedie estimate at diffusion time `t` (the input
    scaled by ``α_t`` so that a clean ``θ`` sits where the model expects ``x_t``). For a
    Gaussian prior ``N(μ, Σ)`` and ``α_t → 1`` the gradient tends to ``λ Σ⁻¹(θ − μ)``, the
    Tikhonov gradient with the prior's precision. The value is RED's energy; the gradient is
    supplied directly (a custom VJP, the RED rule), so use it with a gradient method.

    **Arguments:**

    - `denoiser`: a `jaxpde.samplers.Denoiser` on fields shaped like ``θ``.
    - `t`: the diffusion time (small: the prior's score at low noise).
    - `weight`: ``λ ≥ 0``.
    """

    denoiser: eqx.Module
    t: float = eqx.field(static=True)
    weight: Array

    def __init__(self, denoiser, t: float = 1e-2, weight: ArrayLike = 1.0):
        self.denoiser = denoiser
        if not (t > 0 and math.isfinite(t)):
            raise ValueError(f"DenoiserPrior: `t` must be a positive diffusion time, got {t!r}.")
        self.t = float(t)
        self.weight = check_weight("DenoiserPrior", weight)

    def gradient(self, theta):
        """``(λ/σ_t²)(θ − D(θ))`` — RED's gradient rule."""
        schedule = self.denoiser.schedule
        t = jnp.asarray(self.t, theta.dtype)
        alpha, sigma = schedule.alpha(t), schedule.sigma(t)
        denoised = self.denoiser(alpha * theta, t, to="x0")
        return self.weight / sigma**2 * (theta - denoised)

    def __call__(self, theta):
        return _red(theta, self)


# The RED rule: the gradient is (λ/σ²)(θ − D(θ)), not the derivative of the energy (which would
# differentiate through the network). The weight gets no cotangent: tune λ of a learned prior
# by a grid, not by hypergradients.
@eqx.filter_custom_vjp
def _red(theta, prior):
    return 0.5 * jnp.vdot(theta, prior.gradient(theta))


@_red.def_fwd
def _red_fwd(perturbed, theta, prior):
    g = prior.gradient(theta)
    return 0.5 * jnp.vdot(theta, g), g


@_red.def_bwd
def _red_bwd(g, cotangent, perturbed, theta, prior):
    return cotangent * g
