r"""Adaptive loss weights: how much each term of a PINN loss counts.

A PINN loss is a weighted sum of terms, $\mathcal L(\theta) = \sum_i \lambda_i \mathcal L_i(\theta)$,
$\mathcal L_i = \operatorname{mean}_p\, r_i(p;\theta)^2$ (the PDE residual, the initial
condition, each boundary, data). With all $\lambda_i = 1$ the terms are trained at very
different speeds — the residual's gradient is typically orders of magnitude larger than the
boundary's — and the network fits the PDE to a wrong solution. The weightings here rebalance
the terms from the state of training (Wang, Wang & Perdikaris, "Understanding and mitigating
gradient flow pathologies in PINNs", 2021; Wang, Yu & Perdikaris, "When and why PINNs fail to
train: a neural tangent kernel perspective", 2022; the recipe of Wang et al., "An expert's guide
to training physics-informed neural networks", 2023):

- `FixedWeights`: constant $\lambda_i$ (default 1).
- `GradNormWeighting`: $\hat\lambda_i = \sum_j \lVert\nabla_\theta \mathcal L_j\rVert /
  \lVert\nabla_\theta \mathcal L_i\rVert$, so every weighted term has the same gradient norm
  $\sum_j \lVert\nabla_\theta\mathcal L_j\rVert$.
- `NTKWeighting`: $\hat\lambda_i = \sum_j \bar K_j / \bar K_i$ with
  $\bar K_i = \operatorname{tr} K_i / n_i = \operatorname{mean}_p \lVert\nabla_\theta r_i(p)\rVert^2$,
  the mean diagonal of the term's neural tangent kernel
  $K_i = J_i J_i^\top$, $J_i = \partial r_i / \partial\theta$ (as jaxpi, the trace normalised by
  the number of points, so that resampling more points of a term does not change its weight).
  It is computed from the per-point parameter gradients of the residual at (up to)
  `max_points` points of each term.

The adaptive weights are smoothed by a moving average,
$\lambda \leftarrow \alpha\lambda + (1-\alpha)\hat\lambda$ (`momentum` $\alpha$, 0.9 in the
expert's guide), recomputed every `update_every` steps, and never differentiated: they are a
state of training, kept in `fit`'s ``extra`` (so exact resume holds), not a function of
$\theta$. The state starts at $\hat\lambda$ of the initial model.

The contract (see `AbstractWeighting`) needs of the problem only ``loss_terms(model, points)``
(the dict of term losses) and, for `NTKWeighting`, ``residuals(model, points)`` (the dict of
pointwise residuals), each on a dict of `Points` holding some or all of the terms.
"""

import abc
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["AbstractWeighting", "FixedWeights", "GradNormWeighting", "NTKWeighting"]

Weights = dict[str, Float[Array, ""]]


def stopped(model: eqx.Module) -> eqx.Module:
    """`model` with its arrays under `jax.lax.stop_gradient` (weights and points are not trained)."""
    arrays, rest = eqx.partition(model, eqx.is_inexact_array)
    return eqx.combine(jax.lax.stop_gradient(arrays), rest)


def _check_update_every(owner: str, update_every) -> int:
    if not (isinstance(update_every, int) and not isinstance(update_every, bool) and update_every >= 1):
        raise ValueError(f"{owner}: `update_every` must be an integer >= 1, got {update_every!r}.")
    return update_every


def _check_momentum(owner: str, momentum) -> float:
    if not (isinstance(momentum, (int, float)) and 0.0 <= momentum < 1.0):
        raise ValueError(f"{owner}: `momentum` must be a number in [0, 1), got {momentum!r}.")
    return float(momentum)


def term_names(problem, model, points) -> tuple[str, ...]:
    """The names of the problem's loss terms at `points` (by shape: nothing is computed)."""
    return tuple(eqx.filter_eval_shape(problem.loss_terms, model, points))


def _tree_norm(tree) -> Float[Array, ""]:
    leaves = [jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(tree)]
    return jnp.sqrt(sum(leaves)) if leaves else jnp.zeros(())


def _balance(scales: Mapping[str, Array]) -> Weights:
    """$\\hat\\lambda_i = \\sum_j s_j / s_i$; a vanishing scale (a term already exactly met) gets
    the largest finite weight rather than an infinite one."""
    total = sum(scales.values())
    tiny = jnp.finfo(total.dtype).tiny
    return {name: total / jnp.maximum(scale, tiny * total + tiny) for name, scale in scales.items()}


class AbstractWeighting(eqx.Module):
    """How the terms of a PINN loss are weighted: a state, updated during training, and the weights it gives.

    - ``init(problem, model, points) -> state``: the initial state, a pytree of arrays (it lives
      in `fit`'s ``extra``).
    - ``update(state, problem, model, points) -> state``: a new state from the current model and
      points; `jaxpde.pinns.pinn_loss` calls it every `update_every` steps, on a model under
      `stop_gradient`.
    - ``weights(state) -> {term: scalar}``: the weight of every term.
    """

    update_every: eqx.AbstractVar[int]

    @abc.abstractmethod
    def init(self, problem, model, points):
        """The initial state (a pytree of arrays)."""

    @abc.abstractmethod
    def update(self, state, problem, model, points):
        """The state after one update."""

    @abc.abstractmethod
    def weights(self, state) -> Weights:
        """The weight of every term."""


class FixedWeights(AbstractWeighting):
    """Constant weights: `weights` maps term names to numbers; unnamed terms weigh 1.

    A name that is not one of the problem's terms is refused at `init` (a misspelt
    ``"boundary/lft"`` would otherwise silently weigh nothing).
    """

    weights_: dict[str, float] = eqx.field(static=True)
    update_every: int = eqx.field(static=True, default=1)

    def __init__(self, weights: Mapping[str, float] | None = None):
        weights = dict(weights or {})
        for name, value in weights.items():
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"FixedWeights: the weight of {name!r} must be a number >= 0, got {value!r}.")
        self.weights_ = {name: float(value) for name, value in weights.items()}
        self.update_every = 1

    def init(self, problem, model, points):
        names = term_names(problem, model, points)
        unknown = sorted(set(self.weights_) - set(names))
        if unknown:
            raise ValueError(f"FixedWeights: `weights` names terms {unknown} that the problem lacks; its terms are {list(names)}.")
        return {name: jnp.asarray(self.weights_.get(name, 1.0), jnp.result_type(float)) for name in names}

    def update(self, state, problem, model, points):
        return state

    def weights(self, state) -> Weights:
        return dict(state)


class _MovingAverage(AbstractWeighting):
    """λ ← α λ + (1 − α) λ̂(model, points), starting at λ̂ of the initial model."""

    update_every: eqx.AbstractVar[int]
    momentum: eqx.AbstractVar[float]

    @abc.abstractmethod
    def target(self, problem, model, points) -> Weights:
        """λ̂: the weights the current model and points call for."""

    def init(self, problem, model, points):
        return self.target(problem, stopped(model), points)

    def update(self, state, problem, model, points):
        new = self.target(problem, stopped(model), points)
        a = self.momentum
        return {name: (a * state[name] + (1 - a) * new[name]).astype(state[name].dtype) for name in state}

    def weights(self, state) -> Weights:
        return dict(state)


class GradNormWeighting(_MovingAverage):
    r"""$\hat\lambda_i = \sum_j \lVert\nabla_\theta \mathcal L_j\rVert / \lVert\nabla_\theta \mathcal L_i\rVert$,
    averaged with `momentum` and recomputed every `update_every` steps (Wang et al., "An expert's
    guide to training physics-informed neural networks", 2023, their Algorithm 1; there every
    1000 steps with momentum 0.9).

    One reverse pass per term ($\nabla_\theta$ of each $\mathcal L_i$) on the model's
    floating-point arrays.
    """

    update_every: int = eqx.field(static=True, default=1000)
    momentum: float = eqx.field(static=True, default=0.9)

    def __check_init__(self):
        _check_update_every("GradNormWeighting", self.update_every)
        _check_momentum("GradNormWeighting", self.momentum)

    def target(self, problem, model, points) -> Weights:
        arrays, rest = eqx.partition(model, eqx.is_inexact_array)
        grads = jax.jacrev(lambda a: problem.loss_terms(eqx.combine(a, rest), points))(arrays)
        return _balance({name: _tree_norm(g) for name, g in grads.items()})


class NTKWeighting(_MovingAverage):
    r"""$\hat\lambda_i = \sum_j \bar K_j / \bar K_i$, $\bar K_i = \operatorname{tr}(J_i J_i^\top)/n_i
    = \operatorname{mean}_p \lVert \nabla_\theta r_i(p)\rVert^2$ (Wang, Yu & Perdikaris, "When
    and why PINNs fail to train: a neural tangent kernel perspective", J. Comput. Phys. 2022;
    the moving average of the expert's guide).

    The per-point gradients are those of the first `max_points` points of each term (collocation
    points are random, so these are a random subset); a vector residual ``(n, c)`` counts every
    component, $\lVert\partial r(p)/\partial\theta\rVert_F^2$. Cost: one Jacobian row per point,
    ``max_points × parameters`` numbers per term.
    """

    update_every: int = eqx.field(static=True, default=1000)
    momentum: float = eqx.field(static=True, default=0.9)
    max_points: int = eqx.field(static=True, default=256)

    def __check_init__(self):
        _check_update_every("NTKWeighting", self.update_every)
        _check_momentum("NTKWeighting", self.momentum)
        if not (isinstance(self.max_points, int) and self.max_points >= 1):
            raise ValueError(f"NTKWeighting: `max_points` must be an integer >= 1, got {self.max_points!r}.")

    def target(self, problem, model, points) -> Weights:
        arrays, rest = eqx.partition(model, eqx.is_inexact_array)

        def kernel_diagonal(name, term_points):
            def residual_at(a, one):  # the residual of one point, as a flat vector
                single = jax.tree.map(lambda leaf: leaf[None], one)
                return jnp.ravel(problem.residuals(eqx.combine(a, rest), {name: single})[name])

            def squared_norm(one):
                return _tree_norm(jax.jacrev(residual_at)(arrays, one)) ** 2

            n = jax.tree.leaves(term_points)[0].shape[0]
            subset = jax.tree.map(lambda leaf: leaf[: min(n, self.max_points)], term_points)
            return jnp.mean(jax.vmap(squared_norm)(subset))

        return _balance({name: kernel_diagonal(name, term_points) for name, term_points in points.items()})
