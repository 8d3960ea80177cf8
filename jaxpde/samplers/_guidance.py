r"""Diffusion posterior sampling (DPS; Chung et al., ICLR 2023) with a differentiable forward model.

To sample ``x₀`` given observations ``y = A(x₀) + n``, ``n ~ N(0, σ_y² I)``, with a diffusion
prior, a sampler needs the posterior score ``∇ log p_t(x | y) = ∇ log p_t(x) + ∇ log p_t(y | x)``.
The second term is intractable; DPS replaces ``p_t(y | x_t)`` by ``p(y | x̂₀(x_t))`` with
Tweedie's denoised estimate ``x̂₀ = E[x₀ | x_t]``:

.. math::

    ∇_x \log p_t(y \mid x) \approx -\frac{ζ}{2σ_y^2} ∇_x \| y - A(\hat x_0(x, t)) \|^2 ,

differentiating *through the denoiser and the forward model* (any jaxpde solver: a Darcy solve,
an ETDRK rollout, a sparse sampling operator). ``ζ = 1`` is the plain Gaussian approximation;
Chung et al. use a step ``ζ_i = ζ' / ‖y − A(x̂₀)‖`` (`normalised`), which makes the guidance
term ``−ζ' ∇‖y − A(x̂₀)‖``, insensitive to the scale of the residual.

The approximation is exact as ``t → 0`` (then ``x̂₀ → x``). `DPS` is a model in the ``"score"``
parameterisation, so `DPS.denoiser()` drops into any sampler of `jaxpde.samplers` — the
probability-flow ODE, the reverse SDE, DPM-Solver — unchanged.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from ._parameterisation import Denoiser

__all__ = ["DPS"]


class DPS(eqx.Module):
    """The DPS posterior score ``s(x, t) + guidance``, a model ``(x, t) -> score``.

    - `prior`: a `Denoiser` (any parameterisation) of the prior.
    - `forward`: the differentiable forward model ``A: x₀ -> predicted observations``.
    - `observations`: ``y``, the shape of ``A``'s output.
    - `noise_std`: ``σ_y > 0``.
    - `scale`: ``ζ`` (or ``ζ'`` with `normalised`).
    - `normalised`: Chung et al.'s step ``ζ'/‖y − A(x̂₀)‖``.
    """

    prior: Denoiser
    forward: Callable
    observations: Array
    noise_std: float
    scale: float = 1.0
    normalised: bool = eqx.field(default=False, static=True)

    def __check_init__(self):
        if not isinstance(self.prior, Denoiser):
            raise TypeError(f"DPS: `prior` must be a Denoiser, got {type(self.prior).__name__}.")
        if not callable(self.forward):
            raise TypeError(f"DPS: `forward` must be callable x0 -> observations, got {type(self.forward).__name__}.")
        if isinstance(self.noise_std, (int, float)) and not self.noise_std > 0:
            raise ValueError(f"DPS: `noise_std` must be positive, got {self.noise_std!r}.")

    def misfit(self, x: Array, t: ArrayLike) -> Array:
        """``‖y − A(x̂₀(x, t))‖²/(2σ_y²)``."""
        predicted = self.forward(self.prior(x, t, to="x0"))
        if jnp.shape(predicted) != jnp.shape(self.observations):
            raise ValueError(
                f"DPS: the forward model's output must have the shape of `observations` {jnp.shape(self.observations)}, "
                f"got {jnp.shape(predicted)}."
            )
        return 0.5 * jnp.sum((self.observations - predicted) ** 2) / self.noise_std**2

    def guidance(self, x: Array, t: ArrayLike) -> Array:
        """The approximate likelihood score ``∇_x log p(y | x̂₀(x, t))``, scaled."""
        misfit, grad = jax.value_and_grad(self.misfit)(x, t)
        if self.normalised:
            # −ζ' ∇‖r‖ with ∇‖r‖ = σ_y² ∇(misfit)/‖r‖ and ‖r‖ = σ_y √(2 misfit).
            residual_norm = jnp.sqrt(2 * misfit) * self.noise_std
            return -self.scale * grad * self.noise_std**2 / jnp.maximum(residual_norm, jnp.finfo(grad.dtype).tiny)
        return -self.scale * grad

    def __call__(self, x: Array, t: ArrayLike) -> Array:
        return self.prior(x, t, to="score") + self.guidance(x, t)

    def denoiser(self) -> Denoiser:
        """This posterior score as a `Denoiser` (``"score"``) on the prior's schedule."""
        return Denoiser(self, self.prior.schedule, "score")
