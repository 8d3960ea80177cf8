r"""What a denoising model predicts, and exact conversions between the choices.

Along ``x_t = α x₀ + σ ε`` (a schedule, `jaxpde.samplers.AbstractSchedule`) a model may predict

============  ==========================================  ====================================
name          prediction                                   reference
============  ==========================================  ====================================
``"eps"``     the noise ``ε``                              Ho et al. 2020 (DDPM)
``"x0"``      the data ``x₀``                              DPM-Solver++ (Lu et al. 2022b)
``"v"``       ``v = α ε − σ x₀``                           Salimans & Ho 2022
``"score"``   ``s = ∇ log p_t(x) = −ε/σ``                  Song et al. 2021
``"flow"``    the velocity ``u = α' x₀ + σ' ε = dx_t/dt``   flow matching (Lipman et al. 2023)
============  ==========================================  ====================================

For the optimal model each is the conditional mean ``E[· | x_t]`` of its target, and any two
are related by an exact affine map at fixed ``(x_t, t)``: every one of them is
``a(t) x_t + b(t) ε̂``. `convert` goes through ``(x̂₀, ε̂)``, solving the 2×2 system
``x_t = α x̂₀ + σ ε̂`` together with the prediction's own definition, so it is exact for every
schedule (``"v"`` included: for VP, ``α² + σ² = 1`` recovers Salimans & Ho's formulas; for VE
and EDM the same system is solved). For `LinearPath` the ``"flow"`` prediction is ``ε − x₀``.

The probability-flow ODE (Song et al. 2021, eq. 13) of the forward SDE ``dx = f x dt + g dW``,

.. math::

    \frac{dx}{dt} = f(t) x - \tfrac12 g^2(t)\, ∇ \log p_t(x),

is the ``"flow"`` prediction (`probability_flow`). The reverse-time SDEs with the same
marginals, for any noise level ``η(t) ≥ 0``, have drift ``u − ½ η² s`` and diffusion ``η``
(`sde_drift`; ``η = g`` is Song et al.'s reverse SDE, ``η = 0`` the ODE).

Classifier-free guidance (Ho & Salimans 2022) extrapolates the conditional prediction away from
the unconditional one, ``p̂ = p̂_u + w (p̂_c − p̂_u)``; since every parameterisation is affine in
the score with the same coefficients, the combination means the same in all of them
(`classifier_free_guidance`).

`Denoiser` wraps any equinox model ``(x_t, t[, cond]) -> prediction`` and serves every
parameterisation.
"""

from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, PyTree

from ._schedules import AbstractSchedule

__all__ = [
    "PARAMETERISATIONS",
    "Parameterisation",
    "convert",
    "probability_flow",
    "sde_drift",
    "classifier_free_guidance",
    "Denoiser",
]

Parameterisation = Literal["eps", "x0", "v", "score", "flow"]
PARAMETERISATIONS: tuple[str, ...] = ("eps", "x0", "v", "score", "flow")


def check_parameterisation(value: Any, name: str, owner: str) -> str:
    if not isinstance(value, str) or value not in PARAMETERISATIONS:
        raise ValueError(f"{owner}: `{name}` must be one of {PARAMETERISATIONS}, got {value!r}.")
    return value


def _coefficients(schedule: AbstractSchedule, t) -> tuple[Array, Array, Array, Array]:
    t = schedule._check(t)
    ones = jnp.ones_like(t)
    alpha, alpha_dot = jax.jvp(schedule._alpha, (t,), (ones,))
    sigma, sigma_dot = jax.jvp(schedule._sigma, (t,), (ones,))
    return alpha, sigma, alpha_dot, sigma_dot


def _to_data_and_noise(prediction, kind, x_t, alpha, sigma, alpha_dot, sigma_dot) -> tuple[Array, Array]:
    """``(x̂₀, ε̂)`` from one prediction and ``x_t = α x̂₀ + σ ε̂``."""
    if kind == "eps":
        return (x_t - sigma * prediction) / alpha, prediction
    if kind == "x0":
        return prediction, (x_t - alpha * prediction) / sigma
    if kind == "score":
        eps = -sigma * prediction
        return (x_t - sigma * eps) / alpha, eps
    if kind == "v":
        # [−σ α; α σ] (x̂₀, ε̂) = (v, x_t), determinant −(α² + σ²).
        norm = alpha**2 + sigma**2
        return (alpha * x_t - sigma * prediction) / norm, (sigma * x_t + alpha * prediction) / norm
    # flow: [α' σ'; α σ] (x̂₀, ε̂) = (u, x_t), determinant α'σ − ασ' < 0 (α falls, σ rises).
    det = alpha * sigma_dot - sigma * alpha_dot
    return (sigma_dot * x_t - sigma * prediction) / det, (alpha * prediction - alpha_dot * x_t) / det


def _from_data_and_noise(x0, eps, kind, alpha, sigma, alpha_dot, sigma_dot) -> Array:
    if kind == "eps":
        return eps
    if kind == "x0":
        return x0
    if kind == "score":
        return -eps / sigma
    if kind == "v":
        return alpha * eps - sigma * x0
    return alpha_dot * x0 + sigma_dot * eps


def convert(
    prediction: PyTree[Array],
    *,
    from_: Parameterisation,
    to: Parameterisation,
    x_t: PyTree[Array],
    t: ArrayLike,
    schedule: AbstractSchedule,
) -> PyTree[Array]:
    """Convert a `prediction` of kind `from_` at ``(x_t, t)`` into the equivalent prediction of kind `to`.

    Exact (affine in the prediction). ``"eps"``/``"score"`` need ``α > 0`` and ``"x0"`` needs
    ``σ > 0`` as the *source*; the flow prediction needs ``α'σ ≠ ασ'``. `t` is a scalar (or
    broadcasts against the arrays); pytrees of arrays are converted leaf by leaf.
    """
    check_parameterisation(from_, "from_", "convert")
    check_parameterisation(to, "to", "convert")
    if not isinstance(schedule, AbstractSchedule):
        raise TypeError(f"convert: `schedule` must be an AbstractSchedule, got {type(schedule).__name__}.")
    if from_ == to:
        return prediction
    coefficients = _coefficients(schedule, t)

    def one(p, x):
        x0, eps = _to_data_and_noise(p, from_, x, *coefficients)
        return _from_data_and_noise(x0, eps, to, *coefficients)

    return jax.tree.map(one, prediction, x_t)


def probability_flow(
    prediction: PyTree[Array], parameterisation: Parameterisation, x_t: PyTree[Array], t: ArrayLike, schedule: AbstractSchedule
) -> PyTree[Array]:
    r"""The probability-flow ODE's vector field ``dx/dt = f x − ½ g² ∇ log p_t`` from any prediction."""
    check_parameterisation(parameterisation, "parameterisation", "probability_flow")
    score = convert(prediction, from_=parameterisation, to="score", x_t=x_t, t=t, schedule=schedule)
    f, g2 = schedule.drift(t), schedule.diffusion_squared(t)
    return jax.tree.map(lambda x, s: f * x - 0.5 * g2 * s, x_t, score)


def sde_drift(
    prediction: PyTree[Array],
    parameterisation: Parameterisation,
    x_t: PyTree[Array],
    t: ArrayLike,
    schedule: AbstractSchedule,
    noise_squared: ArrayLike | None = None,
) -> PyTree[Array]:
    r"""Drift ``u − ½ η² ∇ log p_t`` of the backward-in-time SDE ``dx = [·] dt + η dW̄`` with marginals ``p_t``.

    `noise_squared` is ``η²(t)``; the default ``g²(t)`` gives Song et al.'s reverse SDE
    ``dx = [f x − g² s] dt + g dW̄``, ``0`` the probability-flow ODE.
    """
    check_parameterisation(parameterisation, "parameterisation", "sde_drift")
    score = convert(prediction, from_=parameterisation, to="score", x_t=x_t, t=t, schedule=schedule)
    f, g2 = schedule.drift(t), schedule.diffusion_squared(t)
    eta2 = g2 if noise_squared is None else jnp.asarray(noise_squared)
    return jax.tree.map(lambda x, s: f * x - 0.5 * g2 * s - 0.5 * eta2 * s, x_t, score)


def classifier_free_guidance(conditional: PyTree[Array], unconditional: PyTree[Array], scale: ArrayLike) -> PyTree[Array]:
    r"""``p̂_u + w (p̂_c − p̂_u)`` (Ho & Salimans 2022 with ``w = 1 + their w``): ``w = 1`` is the
    conditional prediction, ``w = 0`` the unconditional one, ``w > 1`` guides. The same in every
    parameterisation."""
    return jax.tree.map(lambda c, u: u + scale * (c - u), conditional, unconditional)


class Denoiser(eqx.Module):
    r"""A model ``(x_t, t[, cond]) -> prediction`` of kind `parameterisation` on `schedule`,
    served in every parameterisation.

    The model maps **one sample** (``jax.vmap`` batches); its output must have the shape and
    structure of ``x_t`` (checked at trace time). ``denoiser(x, t)`` returns the raw
    prediction, ``denoiser(x, t, to="x0")`` the converted one; `probability_flow` the ODE's
    vector field; `guided` the classifier-free-guided prediction.
    """

    model: Callable
    schedule: AbstractSchedule
    parameterisation: str = eqx.field(static=True)

    def __check_init__(self):
        check_parameterisation(self.parameterisation, "parameterisation", "Denoiser")
        if not isinstance(self.schedule, AbstractSchedule):
            raise TypeError(f"Denoiser: `schedule` must be an AbstractSchedule, got {type(self.schedule).__name__}.")
        if not callable(self.model):
            raise TypeError(f"Denoiser: `model` must be callable (x_t, t[, cond]) -> prediction, got {type(self.model).__name__}.")

    def raw(self, x_t: PyTree[Array], t: ArrayLike, cond: Any = None) -> PyTree[Array]:
        """The model's own prediction, shape-checked against ``x_t``."""
        t = self.schedule._check(t)
        out = self.model(x_t, t) if cond is None else self.model(x_t, t, cond)
        expected = jax.tree.structure(x_t)
        got = jax.tree.structure(out)
        shapes_in = [jnp.shape(a) for a in jax.tree.leaves(x_t)]
        shapes_out = [jnp.shape(a) for a in jax.tree.leaves(out)]
        if got != expected or shapes_in != shapes_out:
            raise ValueError(
                f"Denoiser: the model's {self.parameterisation!r} prediction must have the shape of x_t "
                f"{shapes_in if len(shapes_in) != 1 else shapes_in[0]} (one sample: vmap the Denoiser for a batch), "
                f"got {shapes_out if len(shapes_out) != 1 else shapes_out[0]}."
            )
        return out

    def __call__(self, x_t: PyTree[Array], t: ArrayLike, cond: Any = None, *, to: Parameterisation | None = None) -> PyTree[Array]:
        """The prediction in parameterisation `to` (default: the model's own)."""
        out = self.raw(x_t, t, cond)
        if to is None or to == self.parameterisation:
            check_parameterisation(to or self.parameterisation, "to", "Denoiser")
            return out
        return convert(out, from_=self.parameterisation, to=to, x_t=x_t, t=t, schedule=self.schedule)

    def probability_flow(self, x_t: PyTree[Array], t: ArrayLike, cond: Any = None) -> PyTree[Array]:
        """``dx/dt = f x − ½ g² ∇ log p_t(x)``."""
        return probability_flow(self.raw(x_t, t, cond), self.parameterisation, x_t, t, self.schedule)

    def guided(
        self, x_t: PyTree[Array], t: ArrayLike, cond: Any, null_cond: Any, scale: ArrayLike, *, to: Parameterisation | None = None
    ) -> PyTree[Array]:
        """Classifier-free guidance: ``p̂(x, t, null) + w (p̂(x, t, cond) − p̂(x, t, null))``."""
        guided = classifier_free_guidance(self.raw(x_t, t, cond), self.raw(x_t, t, null_cond), scale)
        if to is None or to == self.parameterisation:
            return guided
        return convert(guided, from_=self.parameterisation, to=to, x_t=x_t, t=t, schedule=self.schedule)
