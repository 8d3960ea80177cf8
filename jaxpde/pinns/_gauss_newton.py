r"""A matrix-free Gauss–Newton (energy natural gradient) step for `jaxpde.training.fit`.

For a least-squares loss $\mathcal L(\theta) = \lVert\rho(\theta)\rVert^2$ — a PINN loss is one,
$\rho$ the residuals at all collocation, boundary and data points, each scaled by
$\sqrt{\lambda_i/N_i}$ (`jaxpde.pinns.pinn_residual_vector`) — the Gauss–Newton step linearises
$\rho$ at $\theta$, $\rho(\theta + d) \approx \rho + J d$, $J = \partial\rho/\partial\theta$, and
minimises the damped model $\lVert\rho + Jd\rVert^2 + \mu\lVert d\rVert^2$:

.. math::

    (J^\top J + \mu I)\, d = -J^\top \rho,\qquad \theta \leftarrow \theta + \eta^\ast d,\qquad
    \eta^\ast = \operatorname*{arg\,min}_{\eta \in \{1, \tfrac12, \tfrac14, \dots\}}
    \mathcal L(\theta + \eta d).

For a linear PDE with the PINN loss this is the *energy natural gradient* of Müller & Zeinhofer
("Achieving high accuracy with PINNs via energy natural gradient descent", ICML 2023): $J^\top J$
is the Gramian of the energy inner product pulled back to parameter space, and the step is the
function-space Newton step projected onto the model's tangent space. They report relative $L^2$
errors of $10^{-6}$–$10^{-7}$ on 2-D Poisson where Adam and BFGS stall near $10^{-3}$, with a
logarithmic grid line search as here.

**Matrix-free.** $J$ is never formed: the system is solved by conjugate gradients (by default
jaxpde's `ConjugateGradient`, any lineax solver for positive semidefinite operators works)
through `lineax.linear_solve` on the operator $v \mapsto J^\top(Jv) + \mu v$, one
vector–Jacobian product (`jax.vjp`, its linearisation stored once per step) and one
Jacobian–vector product (the transpose of that linear map, `jax.linear_transpose`) per CG
iteration. Memory is that of one gradient; a network with $10^6$ parameters and $10^4$
residuals (a $10^{10}$-entry Jacobian) takes one step in a few mat-vecs' time. The CG
iteration is truncated at `max_cg_steps` (an inexact Newton step: from zero every CG iterate is
a descent direction of a positive definite system), started by default from the previous
step's direction (`warm_start`), and the line search keeps $\theta$ when no step size lowers
the loss.

**Damping.** $\mu$ starts at `damping`; with ``adaptive_damping=True`` it follows a
Levenberg–Marquardt rule on the line search: divided by `damping_factor` when the full step
$\eta^\ast = 1$ is taken, multiplied by it otherwise, within ``[min_damping, max_damping]``.
Its current value, the step size taken and the CG iterations are the step's state
(``opt_state``), checkpointed like an optimiser's moments.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx

from ..numerics.krylov import ConjugateGradient
from ..training import AbstractTrainStep, StepOutput

__all__ = ["GaussNewton"]


def _flat(tree) -> jax.Array:
    return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)])


def _positive(owner, name, value, allow_zero=False):
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)):
        raise ValueError(f"{owner}: `{name}` must be a number {'>= 0' if allow_zero else '> 0'}, got {value!r}.")
    return float(value)


class GaussNewton(AbstractTrainStep):
    """One damped Gauss–Newton step with a line search per call (see the module docstring).

    **Arguments:**

    - `residual_fn`: ``residual_fn(model, batch, key, extra) -> ρ``, an array or a pytree of
      arrays; the loss minimised is ``‖ρ‖²`` (`jaxpde.pinns.pinn_residual_vector` gives it for a
      PINN). `fit`'s ``loss_fn`` is called first, for the logged loss and terms and the new extra
      state (resampled points, weights); ``ρ`` is then evaluated with that new extra state.
    - `damping`: $\\mu$ (the initial value with `adaptive_damping`), ``≥ 0``.
    - `max_cg_steps`, `cg_rtol`: the truncation of the CG solve.
    - `solver`: a lineax solver for the positive semidefinite system (default: jaxpde's
      `ConjugateGradient(cg_rtol, max_steps=max_cg_steps)`; then `cg_rtol`/`max_cg_steps` are its
      settings).
    - `step_sizes`: the line-search grid, ``1, 1/2, …, 2^{−(step_sizes−1)}``.
    - `adaptive_damping`, `damping_factor`, `min_damping`, `max_damping`: the
      Levenberg–Marquardt rule.
    - `warm_start`: start CG from the previous step's direction (kept in ``opt_state``) rather
      than from zero. Successive systems differ little, so a truncated CG gets further (the
      Hessian-free optimisation of Martens, ICML 2010, does the same).
    """

    residual_fn: Callable = eqx.field(static=True)
    damping: float = eqx.field(static=True, default=1e-8)
    max_cg_steps: int = eqx.field(static=True, default=100)
    cg_rtol: float = eqx.field(static=True, default=1e-6)
    solver: lx.AbstractLinearSolver | None = None
    step_sizes: int = eqx.field(static=True, default=20)
    adaptive_damping: bool = eqx.field(static=True, default=False)
    damping_factor: float = eqx.field(static=True, default=2.0)
    min_damping: float = eqx.field(static=True, default=1e-12)
    max_damping: float = eqx.field(static=True, default=1e6)
    warm_start: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        owner = "GaussNewton"
        if not callable(self.residual_fn):
            raise TypeError(f"{owner}: `residual_fn` must be callable(model, batch, key, extra), got {type(self.residual_fn).__name__}.")
        _positive(owner, "damping", self.damping, allow_zero=True)
        _positive(owner, "cg_rtol", self.cg_rtol, allow_zero=True)
        for name in ("max_cg_steps", "step_sizes"):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{owner}: `{name}` must be an integer >= 1, got {value!r}.")
        if self.damping_factor <= 1:
            raise ValueError(f"{owner}: `damping_factor` must be > 1, got {self.damping_factor!r}.")
        if not 0 <= self.min_damping <= self.max_damping:
            raise ValueError(f"{owner}: need 0 <= `min_damping` <= `max_damping`, got {self.min_damping!r} and {self.max_damping!r}.")
        if self.solver is not None and not isinstance(self.solver, lx.AbstractLinearSolver):
            raise TypeError(f"{owner}: `solver` must be a lineax.AbstractLinearSolver or None, got {type(self.solver).__name__}.")

    def init(self, model):
        trained = eqx.filter(model, eqx.is_inexact_array)
        dtype = jnp.result_type(*[leaf.dtype for leaf in jax.tree.leaves(trained)])
        return {
            "damping": jnp.asarray(self.damping, dtype),
            "step_size": jnp.zeros((), dtype),
            "cg_steps": jnp.zeros((), jnp.int32),
            "direction": jax.tree.map(jnp.zeros_like, trained) if self.warm_start else None,
        }

    def _linear_solver(self):
        if self.solver is not None:
            return self.solver
        return ConjugateGradient(self.cg_rtol, max_steps=self.max_cg_steps, accept_stagnation=True)

    def __call__(self, loss_fn, model, opt_state, batch, key, extra):
        loss, terms, new_extra = loss_fn(model, batch, key, extra)
        trained, frozen = eqx.partition(model, eqx.is_inexact_array)

        def rho(t):
            return _flat(self.residual_fn(eqx.combine(t, frozen), batch, key, new_extra))

        # The VJP's linearisation is stored once, and J v is its transpose: both passes reuse the
        # stored residuals. A fresh `jax.jvp` per mat-vec recomputes the nested derivatives of the
        # PDE residual each time: measured 2.5x slower per mat-vec on the Poisson PINN of
        # `pinn-poisson-gn` (6.3 vs 2.5 ms), 1.5-1.7x on wider and deeper MLPs.
        r, vjp = jax.vjp(rho, trained)
        jvp = jax.linear_transpose(vjp, r)
        mu = opt_state["damping"]

        def normal_matvec(v):  # (JᵀJ + μI) v, two passes, no Jacobian
            (jtjv,) = vjp(jvp((v,))[0])
            return jax.tree.map(lambda a, b: a + mu.astype(a.dtype) * b, jtjv, v)

        (gradient_half,) = vjp(r)  # Jᵀρ = ∇L / 2
        operator = lx.FunctionLinearOperator(normal_matvec, jax.eval_shape(lambda: trained), lx.positive_semidefinite_tag)
        rhs = jax.tree.map(jnp.negative, gradient_half)
        options = {"y0": opt_state["direction"]} if self.warm_start else {}
        solution = lx.linear_solve(operator, rhs, self._linear_solver(), options=options, throw=False)
        direction = solution.value

        current = jnp.sum(jnp.square(r))
        etas = 0.5 ** jnp.arange(self.step_sizes, dtype=current.dtype)

        def loss_at(eta):
            candidate = jax.tree.map(lambda p, d: p + eta.astype(p.dtype) * d, trained, direction)
            return jnp.sum(jnp.square(rho(candidate)))

        # Sequentially (lax.map, not vmap): the memory of one evaluation, not of the whole grid.
        losses = jax.lax.map(loss_at, etas)
        losses = jnp.where(jnp.isfinite(losses), losses, jnp.inf)
        best = jnp.argmin(losses)
        improved = losses[best] < current
        eta = jnp.where(improved, etas[best], 0.0)
        new_trained = jax.tree.map(lambda p, d: p + eta.astype(p.dtype) * d, trained, direction)
        if self.adaptive_damping:
            full = improved & (best == 0)
            mu = jnp.clip(
                jnp.where(full, mu / self.damping_factor, mu * self.damping_factor), self.min_damping, self.max_damping
            ).astype(mu.dtype)
        steps = solution.stats.get("num_steps", -1)
        new_state = {
            "damping": mu,
            "step_size": eta.astype(mu.dtype),
            "cg_steps": jnp.asarray(steps, jnp.int32),
            "direction": direction if self.warm_start else None,
        }
        return StepOutput(
            eqx.combine(new_trained, frozen), new_state, new_extra, loss, terms,
            {"gradient": gradient_half, "update": direction},
        )
