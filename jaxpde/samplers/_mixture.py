r"""Gaussian mixtures: data whose noised density and score are exact at every time.

If ``x₀ ~ Σ_k w_k N(μ_k, Σ_k)`` and ``x_t = α x₀ + σ ε``, then

.. math::

    x_t \sim \sum_k w_k\, N(α μ_k,\; α^2 Σ_k + σ^2 I),

so ``log p_t``, the score ``∇ log p_t``, and the optimal predictions (Tweedie's formula
``E[x₀ | x_t] = (x_t + σ² ∇ log p_t)/α``, ``E[ε | x_t] = −σ ∇ log p_t``) are all closed form —
ground truth for samplers' convergence orders, for losses' minima and for likelihoods, with no
training (the test problem of the DPM-Solver and EDM analyses).

`GaussianMixture` holds weights, means and full covariances (isotropic or diagonal inputs are
expanded); everything is computed through Cholesky factors, in any dimension. `eight_gaussians`
is the benchmark mixture (8 isotropic components of std 0.3 on the circle of radius 4).
"""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._parameterisation import Denoiser, Parameterisation, _coefficients, _from_data_and_noise, check_parameterisation
from ._schedules import AbstractSchedule

__all__ = ["GaussianMixture", "eight_gaussians"]


class GaussianMixture(eqx.Module):
    r"""``p(x) = Σ_k w_k N(x; μ_k, Σ_k)`` on ``R^d``.

    **Arguments:**

    - `weights`: shape ``(K,)``, positive (normalised here).
    - `means`: shape ``(K, d)``.
    - `covariances`: ``(K, d, d)`` full, ``(K, d)`` diagonal, ``(K,)`` isotropic variances, or a
      scalar variance shared by all components. Symmetric positive definite.

    Methods take one point ``x`` of shape ``(d,)`` or a batch ``(..., d)``.
    """

    weights: Float[Array, " K"]
    means: Float[Array, "K d"]
    covariances: Float[Array, "K d d"]

    def __init__(self, weights: ArrayLike, means: ArrayLike, covariances: ArrayLike):
        means = jnp.asarray(means)
        if means.ndim != 2 or not jnp.issubdtype(means.dtype, jnp.floating):
            raise ValueError(f"GaussianMixture: `means` must be a floating array of shape (K, d), got shape {means.shape} and dtype {means.dtype}.")
        k, d = means.shape
        weights = jnp.asarray(weights, dtype=means.dtype)
        if weights.shape != (k,):
            raise ValueError(f"GaussianMixture: `weights` must have shape (K,) = ({k},), got {weights.shape}.")
        covariances = jnp.asarray(covariances, dtype=means.dtype)
        if covariances.ndim == 0:
            covariances = jnp.broadcast_to(covariances * jnp.eye(d, dtype=means.dtype), (k, d, d))
        elif covariances.shape == (k,):
            covariances = covariances[:, None, None] * jnp.eye(d, dtype=means.dtype)
        elif covariances.shape == (k, d):
            covariances = jax.vmap(jnp.diag)(covariances)
        elif covariances.shape != (k, d, d):
            raise ValueError(
                f"GaussianMixture: `covariances` must have shape (K, d, d) = ({k}, {d}, {d}), (K, d), (K,) or (), got {covariances.shape}."
            )
        try:
            positive = bool(jnp.all(weights > 0))
        except jax.errors.ConcretizationTypeError:  # built under jit (a noised mixture): unchecked
            positive = True
        if not positive:
            raise ValueError(f"GaussianMixture: `weights` must be positive, got {weights}.")
        self.weights = weights / jnp.sum(weights)
        self.means = means
        self.covariances = covariances

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def mean(self) -> Float[Array, " d"]:
        """``E x = Σ w_k μ_k``."""
        return self.weights @ self.means

    def covariance(self) -> Float[Array, "d d"]:
        """``Cov x = Σ w_k (Σ_k + μ_k μ_kᵀ) − E x E xᵀ``."""
        m = self.mean()
        second = jnp.einsum("k,kij->ij", self.weights, self.covariances + self.means[:, :, None] * self.means[:, None, :])
        return second - jnp.outer(m, m)

    def noised(self, schedule: AbstractSchedule, t: ArrayLike) -> "GaussianMixture":
        """The law of ``x_t = α(t) x₀ + σ(t) ε``: means ``α μ_k``, covariances ``α² Σ_k + σ² I``."""
        if not isinstance(schedule, AbstractSchedule):
            raise TypeError(f"GaussianMixture.noised: `schedule` must be an AbstractSchedule, got {type(schedule).__name__}.")
        alpha, sigma = schedule.alpha(t), schedule.sigma(t)
        eye = jnp.eye(self.dim, dtype=self.means.dtype)
        return GaussianMixture(self.weights, alpha * self.means, alpha**2 * self.covariances + sigma**2 * eye)

    def _check_points(self, x, owner: str) -> Array:
        x = jnp.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"GaussianMixture.{owner}: `x` must have shape (..., d) with d = {self.dim}, got {x.shape}.")
        return x

    def log_prob(self, x: Float[ArrayLike, "... d"]) -> Float[Array, "..."]:
        """Exact ``log p(x)``."""
        x = self._check_points(x, "log_prob")
        return _log_prob_and_grad(self.weights, self.means, self.covariances, x)[0]

    def grad_log_prob(self, x: Float[ArrayLike, "... d"]) -> Float[Array, "... d"]:
        r"""Exact ``∇ log p(x) = −Σ_k r_k(x) Σ_k⁻¹ (x − μ_k)``, ``r_k`` the responsibilities."""
        x = self._check_points(x, "grad_log_prob")
        return _log_prob_and_grad(self.weights, self.means, self.covariances, x)[1]

    def score(self, x: Float[ArrayLike, "... d"], t: ArrayLike, schedule: AbstractSchedule) -> Float[Array, "... d"]:
        """``∇_x log p_t(x)`` of the noised mixture at time ``t`` (a scalar)."""
        if not isinstance(schedule, AbstractSchedule):
            raise TypeError(f"GaussianMixture.score: `schedule` must be an AbstractSchedule, got {type(schedule).__name__}.")
        return _noised_prediction(self, self._check_points(x, "score"), t, schedule, "score")

    def prediction(
        self, x: Float[ArrayLike, "... d"], t: ArrayLike, schedule: AbstractSchedule, parameterisation: Parameterisation = "eps"
    ) -> Float[Array, "... d"]:
        """The optimal (conditional-mean) prediction of kind `parameterisation` at ``(x, t)``:
        ``E[ε | x_t]``, ``E[x₀ | x_t]``, ``E[v | x_t]``, the score or the flow velocity."""
        check_parameterisation(parameterisation, "parameterisation", "GaussianMixture.prediction")
        x = self._check_points(x, "prediction")
        return _noised_prediction(self, x, t, schedule, parameterisation)

    def eps_prediction(self, x, t, schedule: AbstractSchedule) -> Array:
        """``E[ε | x_t] = −σ ∇ log p_t``."""
        return self.prediction(x, t, schedule, "eps")

    def x0_prediction(self, x, t, schedule: AbstractSchedule) -> Array:
        """``E[x₀ | x_t] = (x + σ² ∇ log p_t)/α`` (Tweedie)."""
        return self.prediction(x, t, schedule, "x0")

    def v_prediction(self, x, t, schedule: AbstractSchedule) -> Array:
        """``E[α ε − σ x₀ | x_t]``."""
        return self.prediction(x, t, schedule, "v")

    def denoiser(self, schedule: AbstractSchedule, parameterisation: Parameterisation = "eps") -> Denoiser:
        """The exact model as a `Denoiser`: a drop-in for a trained network in any sampler."""
        return Denoiser(_ExactModel(self, schedule, parameterisation), schedule, parameterisation)

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        """``n`` independent samples."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"GaussianMixture.sample: `n` must be a positive integer, got {n!r}.")
        return _sample(self.weights, self.means, self.covariances, key, n)


def _posterior_terms(weights, means, covariances, x):
    """At points ``x`` of shape ``(..., d)``: ``log p(x)``, the responsibilities ``r_k(x)`` and
    ``Σ_k⁻¹ (x − μ_k)``, through Cholesky factors."""
    d = means.shape[1]
    chol = jnp.linalg.cholesky(covariances)
    log_norm = jnp.log(weights) - 0.5 * (d * math.log(2 * math.pi)) - jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)

    def one(y):
        diff = y[None, :] - means
        white = jax.vmap(lambda c, r: jsl.solve_triangular(c, r, lower=True))(chol, diff)
        precision_diff = jax.vmap(lambda c, w: jsl.solve_triangular(c, w, lower=True, trans="T"))(chol, white)
        logits = log_norm - 0.5 * jnp.sum(white**2, axis=-1)
        return jax.nn.logsumexp(logits), jax.nn.softmax(logits), precision_diff

    flat = x.reshape(-1, d)
    log_p, resp, precision_diff = jax.vmap(one)(flat)
    k = means.shape[0]
    return log_p.reshape(x.shape[:-1]), resp.reshape(x.shape[:-1] + (k,)), precision_diff.reshape(x.shape[:-1] + (k, d))


@jax.jit  # one compilation per shape, also when called eagerly (tests, notebooks)
def _log_prob_and_grad(weights, means, covariances, x):
    log_p, resp, precision_diff = _posterior_terms(weights, means, covariances, x)
    return log_p, -jnp.einsum("...k,...kd->...d", resp, precision_diff)


@functools.partial(jax.jit, static_argnums=4)
def _sample(weights, means, covariances, key, n):
    k_component, k_noise = jax.random.split(key)
    components = jax.random.choice(k_component, means.shape[0], (n,), p=weights)
    chol = jnp.linalg.cholesky(covariances)
    noise = jax.random.normal(k_noise, (n, means.shape[1]), dtype=means.dtype)
    return means[components] + jnp.einsum("nij,nj->ni", chol[components], noise)


@eqx.filter_jit
def _noised_prediction(mixture, x, t, schedule, parameterisation):
    # Both E[x₀ | x_t] = Σ r_k (μ_k + α Σ_k C_k⁻¹ (x − α μ_k)) and E[ε | x_t] = −σ ∇ log p_t are
    # computed directly (C_k = α² Σ_k + σ² I), so every prediction stays exact where α = 0
    # (a flow's t = 1) and the score where σ is small.
    alpha, sigma, alpha_dot, sigma_dot = _coefficients(schedule, t)
    noised = mixture.noised(schedule, t)
    _, resp, precision_diff = _posterior_terms(noised.weights, noised.means, noised.covariances, x)
    score = -jnp.einsum("...k,...kd->...d", resp, precision_diff)
    if parameterisation == "score":
        return score
    x0 = resp @ mixture.means + alpha * jnp.einsum("...k,kde,...ke->...d", resp, mixture.covariances, precision_diff)
    return _from_data_and_noise(x0, -sigma * score, parameterisation, alpha, sigma, alpha_dot, sigma_dot)


class _ExactModel(eqx.Module):
    mixture: GaussianMixture
    schedule: AbstractSchedule
    parameterisation: str = eqx.field(static=True)

    def __call__(self, x, t):
        return self.mixture.prediction(x, t, self.schedule, self.parameterisation)


def eight_gaussians(radius: float = 4.0, std: float = 0.3, dtype=None) -> GaussianMixture:
    """The benchmark mixture: means ``radius (cos 2πk/8, sin 2πk/8)``, isotropic `std`, equal weights."""
    dtype = dtype or jnp.result_type(float)
    angles = 2 * jnp.pi * jnp.arange(8, dtype=dtype) / 8
    means = radius * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=1)
    return GaussianMixture(jnp.ones(8, dtype=dtype), means, jnp.full((8,), std**2, dtype=dtype))
