"""The update rule of `fit`: an optax step by default, any `AbstractTrainStep` in its place.

`fit` owns everything around one update — the key of the step, the batch, the NaN guard, the
EMA, checkpoints and exact resume — and delegates the update itself to a *step*. The default,
`OptaxStep`, differentiates the loss and applies an optax transform of the gradient. An
update that is not an optax transform of a gradient (a Gauss–Newton or Levenberg–Marquardt
step, a fixed-point iteration ``θ ← G(θ)``, an EM update, a step with its own line search) is
a subclass of `AbstractTrainStep`; it then gets the guard, the checkpoints and exact resume
for free.

The contract is `AbstractTrainStep`'s docstring.
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import equinox as eqx
import optax
from jaxtyping import Array, Float, PRNGKeyArray

PyTree = Any


class StepOutput(NamedTuple):
    """What a step returns (see `AbstractTrainStep` for the contract)."""

    model: eqx.Module
    opt_state: PyTree
    extra: PyTree
    loss: Float[Array, ""]
    terms: dict[str, Float[Array, ""]]
    checks: dict[str, PyTree] | None = None


class AbstractTrainStep(eqx.Module):
    """The update rule of `fit`: subclass it for an update that is not an optax step.

    A step is an equinox module with two methods:

    - ``init(model) -> opt_state``: the step's own state (optimiser moments, an L-BFGS memory, a
      damping parameter), a pytree of arrays. It is checkpointed and restored with the rest.
    - ``__call__(loss_fn, model, opt_state, batch, key, extra) -> StepOutput``, where
      ``loss_fn(model, batch, key, extra) -> (loss, {name: term}, new_extra)`` is the caller's
      loss in `fit`'s normal form. It must

      * be traceable under `jax.jit` and a pure function of its arguments — randomness only from
        `key`, no Python state carried between calls — since exact resume recomputes any step from
        the checkpointed state alone;
      * return a model, opt_state and extra with the same tree structure, shapes and dtypes as it
        was given (the compiled step's state is fixed);
      * return the scalar loss and the dict of scalar terms *of the model it was given* (these are
        logged and checked);
      * optionally name intermediate pytrees in ``checks`` (``{"gradient": g, "update": u}`` for
        the optax step) — the guard checks them, in order, and names the first non-finite one.

      The engine then checks the loss, the terms, each of ``checks``, the new model's arrays
      (``"parameters"``) and the new extra state (``"extra state"``). Only if all are finite are
      the new values kept; otherwise the old ones stay, the step counter does not advance and
      `fit` raises `NonFiniteError` at the next log point. Under data parallelism the batch is
      split across devices and the same code runs: the compiler inserts the reductions.

    Example — the fixed-point iteration ``x ← cos(x)`` of a model with one array field ``x``,
    logging the residual that `loss_fn` computes::

        class CosineIteration(AbstractTrainStep):
            def init(self, model):
                return jnp.zeros((), jnp.int32)  # a counter: any pytree of arrays

            def __call__(self, loss_fn, model, opt_state, batch, key, extra):
                loss, terms, extra = loss_fn(model, batch, key, extra)
                new = eqx.tree_at(lambda m: m.x, model, jnp.cos(model.x))
                return StepOutput(new, opt_state + 1, extra, loss, terms)

        fit(model, CosineIteration(), residual, data, steps=100, key=key)
    """

    @abc.abstractmethod
    def init(self, model: eqx.Module) -> PyTree:
        """The step's initial state for `model` (a pytree of arrays)."""

    @abc.abstractmethod
    def __call__(self, loss_fn, model: eqx.Module, opt_state: PyTree, batch: PyTree, key: PRNGKeyArray, extra: PyTree) -> StepOutput:
        """One update; see the class docstring for the contract."""


class OptaxStep(AbstractTrainStep):
    """``θ ← θ + u`` with ``(u, s) = optimiser.update(∇θ loss, s, θ)`` over the model's
    floating-point arrays.

    An `optax.GradientTransformationExtraArgs` (such as `optax.lbfgs`, whose line search
    evaluates the loss) also receives ``value``, ``grad`` and ``value_fn``, the loss as a function
    of the trained arrays at this step's batch, key and extra state.
    """

    optimiser: optax.GradientTransformation

    def init(self, model):
        return self.optimiser.init(eqx.filter(model, eqx.is_inexact_array))

    def __call__(self, loss_fn, model, opt_state, batch, key, extra):
        trained, frozen = eqx.partition(model, eqx.is_inexact_array)

        def loss_of(trained):
            loss, terms, new_extra = loss_fn(eqx.combine(trained, frozen), batch, key, extra)
            return loss, (terms, new_extra)

        (loss, (terms, new_extra)), grads = eqx.filter_value_and_grad(loss_of, has_aux=True)(trained)
        if isinstance(self.optimiser, optax.GradientTransformationExtraArgs):
            updates, opt_state = self.optimiser.update(
                grads, opt_state, trained, value=loss, grad=grads, value_fn=lambda t: loss_of(t)[0]
            )
        else:
            updates, opt_state = self.optimiser.update(grads, opt_state, trained)
        model = eqx.apply_updates(model, updates)
        return StepOutput(model, opt_state, new_extra, loss, terms, {"gradient": grads, "update": updates})
