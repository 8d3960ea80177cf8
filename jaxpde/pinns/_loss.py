r"""The PINN loss in `jaxpde.training.fit`'s form: weighting, causal weights and resampling assembled.

``loss_fn, extra0 = pinn_loss(problem, model=model, key=key, weighting=..., causal=..., sampling=...)``
gives ``loss_fn(model, batch, key, extra) -> (loss, {term: value}, new_extra)`` and its initial
``extra``; then ``fit(model, optax.adam(1e-3), loss_fn, problem.sample, extra=extra0, ...)``.

The loss is

.. math::

    \mathcal L(\theta) = \sum_i \lambda_i \mathcal L_i(\theta),\qquad
    \mathcal L_i = \operatorname{mean}\, r_i^2

over the problem's terms ($r_i$ the pointwise residuals of ``problem.residuals``, the mean over
points and components), with

- $\lambda_i$ from `weighting` (an `AbstractWeighting`; ``None``: all 1), its state in
  ``extra["weights"]``, updated every ``weighting.update_every`` steps on the model under
  `stop_gradient`;
- the residual term replaced by its causally weighted form when `causal` (a
  `CausalWeighting`) is given;
- the points of ``sampling.term`` taken from the population in ``extra["points"]`` (renewed
  every ``sampling.every`` steps by `sampling`, an `AbstractResampling`) instead of from the
  batch; the other terms' points come from the batch (``problem.sample`` draws fresh uniform
  points every step; ``lambda key: points`` keeps a fixed set).

``extra["step"]`` counts the calls, so the schedule of updates is part of the checkpointed state
and a resumed run repeats it exactly. The logged terms are the problem's term names, each the
unweighted $\mathcal L_i$ (the plain mean of $r^2$ even under causal weighting), plus
``weight/<term>`` for an adaptive weighting and ``causal/min_weight`` ($\min_i w_i$, the
paper's criterion for raising $\varepsilon$) with causal weights.

`pinn_residual_vector` gives the same loss as a residual vector, $\mathcal L = \lVert
\rho\rVert^2$ with $\rho = (\sqrt{\lambda_i / N_i}\, r_i)_i$ flattened ($N_i$ the number of
entries of $r_i$; under causal weights each residual point of chunk $k$ is scaled by
$\sqrt{w_k/(M n_k)}$ instead) — what `GaussNewton` linearises.
"""

from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp

from ._causal import CausalWeighting
from ._sampling import AbstractResampling
from ._weighting import AbstractWeighting, FixedWeights, stopped

__all__ = ["pinn_loss", "pinn_residual_vector"]


def _mean_square(residual):
    return jnp.mean(jnp.square(residual))


class _Objective(eqx.Module):
    """The problem's loss terms with the causal form of the residual term: what weightings see."""

    problem: object
    causal: CausalWeighting | None

    def residuals(self, model, points):
        return self.problem.residuals(model, points)

    def loss_terms(self, model, points):
        return self.terms_of(self.problem.residuals(model, points), points)

    def terms_of(self, residuals, points):
        terms = {name: _mean_square(r) for name, r in residuals.items()}
        if self.causal is not None and self.causal.term in residuals:
            terms[self.causal.term], _ = self.causal.loss(residuals[self.causal.term], points[self.causal.term].t)
        return terms


def _check(problem, weighting, causal, sampling, model, key):
    for method in ("sample", "residuals"):
        if not callable(getattr(problem, method, None)):
            raise TypeError(f"pinn_loss: `problem` must have a `{method}` method (a jaxpde.pinns.Problem), got {type(problem).__name__}.")
    if weighting is not None and not isinstance(weighting, AbstractWeighting):
        raise TypeError(f"pinn_loss: `weighting` must be an AbstractWeighting or None, got {type(weighting).__name__}.")
    if causal is not None and not isinstance(causal, CausalWeighting):
        raise TypeError(f"pinn_loss: `causal` must be a CausalWeighting or None, got {type(causal).__name__}.")
    if sampling is not None and not isinstance(sampling, AbstractResampling):
        raise TypeError(f"pinn_loss: `sampling` must be an AbstractResampling or None, got {type(sampling).__name__}.")
    if weighting is not None and model is None:
        raise ValueError("pinn_loss: a `weighting` needs the initial `model` (its initial weights are computed from it).")
    if (weighting is not None or sampling is not None) and key is None:
        raise ValueError("pinn_loss: a `weighting` or `sampling` needs a `key` (for the initial points).")


def pinn_loss(
    problem,
    weighting: AbstractWeighting | None = None,
    causal: CausalWeighting | None = None,
    sampling: AbstractResampling | None = None,
    *,
    model: eqx.Module | None = None,
    key=None,
):
    """``(loss_fn, extra0)`` for `jaxpde.training.fit`; see the module docstring.

    **Arguments:** `problem` (``sample``, ``residuals``, and ``sample_term`` for `sampling`);
    `weighting`, `causal`, `sampling` as above; `model`, the initial model (needed with a
    `weighting`); `key`, for the initial points of the weighting and the population.
    """
    _check(problem, weighting, causal, sampling, model, key)
    objective = _Objective(problem, causal)
    extra0: dict = {"step": jnp.zeros((), jnp.int32)}
    points0 = None
    if key is not None:
        points_key, population_key = jax.random.split(key)
        points0 = dict(problem.sample(points_key))
        if sampling is not None:
            extra0["points"] = sampling.init(problem, population_key)
            points0[sampling.term] = extra0["points"]
    if weighting is not None:
        # Compiled: run op by op, a grad-norm or NTK initialisation took minutes on a loaded CPU.
        extra0["weights"] = eqx.filter_jit(weighting.init)(objective, model, points0)
    adaptive = weighting is not None and not isinstance(weighting, FixedWeights)

    def every(step, period, renew, current):
        # Renewed at steps period, 2·period, …: step 0 uses the initial state.
        return jax.lax.cond((step > 0) & (step % period == 0), renew, lambda: current)

    def loss_fn(model, batch, key, extra):
        step, new_extra = extra["step"], dict(extra)
        new_extra["step"] = step + 1
        points = dict(batch)
        frozen = stopped(model)
        if sampling is not None:
            renew = lambda: sampling.resample(extra["points"], problem, frozen, key)  # noqa: E731
            population = every(step, sampling.every, renew, extra["points"])
            new_extra["points"] = population
            points[sampling.term] = population
        logged = {}
        weights = None
        if weighting is not None:
            renew = lambda: weighting.update(extra["weights"], objective, frozen, points)  # noqa: E731
            state = every(step, weighting.update_every, renew, extra["weights"])
            new_extra["weights"] = state
            weights = weighting.weights(state)
            if adaptive:
                logged.update({f"weight/{name}": value for name, value in weights.items()})
        residuals = problem.residuals(model, points)
        plain = {name: _mean_square(r) for name, r in residuals.items()}
        terms = objective.terms_of(residuals, points)
        if causal is not None and causal.term in residuals:
            chunk_losses = causal.chunk_losses(residuals[causal.term], points[causal.term].t)
            logged["causal/min_weight"] = jnp.min(causal.weights(chunk_losses))
        loss = sum((1.0 if weights is None else weights[name]) * value for name, value in terms.items())
        return loss, {**plain, **logged}, new_extra

    return loss_fn, extra0


def pinn_residual_vector(
    problem,
    weighting: AbstractWeighting | Mapping[str, float] | None = None,
    causal: CausalWeighting | None = None,
    sampling: AbstractResampling | None = None,
):
    """``residual_fn(model, batch, key, extra) -> ρ`` with ``‖ρ‖² = `` `pinn_loss`'s loss.

    The weights are read from ``extra["weights"]`` when `weighting` is an `AbstractWeighting`
    (the state `pinn_loss` keeps), or given directly as a dict of numbers (unnamed terms
    weigh 1); the population of `sampling` from ``extra["points"]``. The causal weights are
    recomputed (under `stop_gradient`) from the residual itself.
    """
    if sampling is not None and not isinstance(sampling, AbstractResampling):
        raise TypeError(f"pinn_residual_vector: `sampling` must be an AbstractResampling or None, got {type(sampling).__name__}.")

    def residual_fn(model, batch, key, extra):
        points = dict(batch)
        if sampling is not None:
            points[sampling.term] = extra["points"]
        if isinstance(weighting, AbstractWeighting):
            weights = weighting.weights(extra["weights"])
        else:
            weights = dict(weighting or {})
        parts = []
        for name, r in problem.residuals(model, points).items():
            w = jax.lax.stop_gradient(jnp.asarray(weights.get(name, 1.0), r.dtype))
            if causal is not None and name == causal.term:
                t = points[name].t
                chunk_losses = causal.chunk_losses(r, t)
                index = causal.chunk_index(t)
                counts = jax.ops.segment_sum(jnp.ones_like(t), index, num_segments=causal.chunks)
                per_row = jax.lax.stop_gradient(causal.weights(chunk_losses) / (causal.chunks * counts))[index]
                per_entry = r.reshape(r.shape[0], -1) / r.reshape(r.shape[0], -1).shape[1] ** 0.5
                parts.append(jnp.ravel(jnp.sqrt(w * per_row)[:, None] * per_entry))
            else:
                parts.append(jnp.ravel(jnp.sqrt(w / r.size) * r))
        return jnp.concatenate(parts)

    return residual_fn
