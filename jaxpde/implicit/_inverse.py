r"""PDE-constrained inverse problems: a forward model, an observation operator, a misfit and a regulariser.

Given data ``y = 𝒪(F(θ†)) + η`` with Gaussian noise ``η ~ N(0, σ² I)``, find ``θ`` by

.. math::

    \min_\theta \; J(\theta) = \underbrace{\tfrac12 \sum_j \Big(\frac{𝒪(F(\theta))_j - y_j}{\sigma}\Big)^2}_{\Phi(\theta),\ \text{the misfit}}
    \; + \; R(\theta),

where ``F`` is a PDE solve (any jaxpde solver: `Darcy.solve` through lineax, a heat or Burgers
solve through diffrax), ``𝒪`` an observation operator (`jaxpde.implicit` observations) and ``R``
a regulariser (Tikhonov, total variation, a learned prior). ``∇J`` is reverse-mode autodiff
*through* the solve: for a linear solve ``A(θ)u = f`` lineax's transpose rule is the adjoint
method — one extra solve with ``Aᵀ`` — and for a time integration diffrax's checkpointed adjoint
(Tröltzsch, "Optimal Control of Partial Differential Equations", AMS 2010, ch. 2–3; Hinze,
Pinnau, Ulbrich & Ulbrich, "Optimization with PDE Constraints", Springer 2009, ch. 1.6).

`minimise_inverse` solves it with an optimistix solver: L-BFGS (Liu & Nocedal 1989; needs only
``J`` and ``∇J``), Gauss–Newton or Levenberg–Marquardt on the residual form ``J = ½‖r‖²`` with
``r = ((𝒪F(θ) − y)/σ, r_R(θ))`` and a matrix-free normal-equations CG for the step (never a
dense Jacobian), or any optax optimiser (through `optimistix.OptaxMinimiser`). It can record
the objective and misfit after every iteration (the convergence plots of the experiments).

Three forward models come ready: `DarcyForward` (``θ = log a`` on the grid ↦ the pressure),
`HeatForward` (an initial condition ↦ the state at ``t₁``, any diffrax solver) and
`DirichletControlPoisson` (boundary values ↦ the interior solution of ``−Δu = f``, for
boundary control).
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx
import numpy as np
import optax
import optimistix as optx
from jaxtyping import Array, ArrayLike, Float, PyTree

from ..grids import Grid
from ..numerics import time_integration
from ..numerics.preconditioning import Jacobi
from ..pdes.elliptic import Darcy, Poisson, default_solver
from ._regularisers import AbstractRegulariser

__all__ = [
    "InverseProblem",
    "InverseSolution",
    "minimise_inverse",
    "DarcyForward",
    "HeatForward",
    "DirichletControlPoisson",
]


class InverseProblem(eqx.Module):
    r"""``J(θ) = ½‖(𝒪(F(θ)) − y)/σ‖² + R(θ)``.

    **Fields:**

    - `forward`: ``F``, a callable ``θ ↦ state`` (an `equinox.Module` or a function) — a PDE solve.
    - `observation`: ``𝒪``, a callable ``state ↦ (m,)`` (`PointObservation`, `NodeObservation`).
    - `data`: ``y``, shape ``(m,)``.
    - `noise_std`: ``σ > 0`` (the misfit's scale: ``Φ ≈ m/2`` at the truth).
    - `regulariser`: an `AbstractRegulariser` or ``None`` (the unregularised fit).
    """

    forward: Callable
    observation: Callable
    data: Float[Array, " m"]
    noise_std: Float[Array, ""]
    regulariser: AbstractRegulariser | None = None

    def __check_init__(self):
        if jnp.ndim(self.data) != 1:
            raise ValueError(f"InverseProblem: `data` must be a vector of shape (m,), got shape {jnp.shape(self.data)}.")
        if not isinstance(self.noise_std, jax.core.Tracer) and not float(self.noise_std) > 0:
            raise ValueError(f"InverseProblem: `noise_std` must be positive (it scales the misfit), got {float(self.noise_std)!r}.")
        if self.regulariser is not None and not isinstance(self.regulariser, AbstractRegulariser):
            raise TypeError(f"InverseProblem: `regulariser` must be an AbstractRegulariser or None, got {type(self.regulariser).__name__}.")

    def __init__(self, forward, observation, data, noise_std, regulariser=None):
        self.forward = forward
        self.observation = observation
        self.data = jnp.asarray(data)
        self.noise_std = jnp.asarray(noise_std, dtype=self.data.dtype)
        self.regulariser = regulariser

    def predict(self, theta):
        """``𝒪(F(θ))``."""
        return self.observation(self.forward(theta))

    def data_residuals(self, theta):
        """``(𝒪(F(θ)) − y)/σ``."""
        return (self.predict(theta) - self.data) / self.noise_std

    def misfit(self, theta):
        """``Φ(θ) = ½‖(𝒪(F(θ)) − y)/σ‖²``."""
        return 0.5 * jnp.sum(self.data_residuals(theta) ** 2)

    def penalty(self, theta):
        """``R(θ)`` (0 without a regulariser)."""
        return jnp.zeros((), self.data.dtype) if self.regulariser is None else self.regulariser(theta)

    def objective(self, theta):
        """``J(θ) = Φ(θ) + R(θ)``."""
        return self.misfit(theta) + self.penalty(theta)

    def residuals(self, theta):
        """``r(θ)`` with ``J = ½‖r‖²``: the data residuals, then the regulariser's (Gauss–Newton)."""
        r = self.data_residuals(theta)
        if self.regulariser is None:
            return r
        return jnp.concatenate([r, self.regulariser.residuals(theta)])

    def with_weight(self, weight):
        """The same problem with regulariser weight `weight` (differentiable in it)."""
        if self.regulariser is None:
            raise ValueError("InverseProblem.with_weight: the problem has no regulariser to weight.")
        return eqx.tree_at(lambda p: p.regulariser.weight, self, jnp.asarray(weight, self.data.dtype))

    def check(self, theta0) -> None:
        """Raise, naming the arguments, unless ``𝒪(F(θ₀))`` has the shape of `data`."""
        predicted = jax.eval_shape(self.predict, theta0)
        if tuple(predicted.shape) != tuple(self.data.shape):
            raise ValueError(
                f"InverseProblem: `data` has shape {tuple(self.data.shape)}, but the observation of the forward model "
                f"at `theta0` has shape {tuple(predicted.shape)}; they must match."
            )


class InverseSolution(eqx.Module):
    """The result of `minimise_inverse`.

    - `value`: the minimiser ``θ``.
    - `objective`, `misfit`: ``J`` and ``Φ`` at `value`.
    - `num_steps`: iterations taken; `result`: an `optimistix.RESULTS`.
    - `history`: with ``record=True``, a dict of arrays ``objective`` and ``misfit`` of length
      ``num_steps + 1`` (entry 0 at ``θ₀``; the entries after convergence repeat the last).
    """

    value: PyTree[Array]
    objective: Array
    misfit: Array
    num_steps: Array
    result: optx.RESULTS
    history: dict | None = None


def _solver(method, rtol: float, atol: float):
    if isinstance(method, optax.GradientTransformation):
        return optx.OptaxMinimiser(method, rtol=rtol, atol=atol), "minimise"
    if isinstance(method, optx.AbstractLeastSquaresSolver):
        return method, "least_squares"
    if isinstance(method, optx.AbstractMinimiser):
        return method, "minimise"
    # Matrix-free steps: normal-equations CG on JᵀJ through jvp/vjp, never a materialised Jacobian.
    linear = lx.Normal(lx.CG(rtol=min(rtol, 1e-6), atol=min(atol, 1e-10), max_steps=1000))
    if method == "lbfgs":
        return optx.LBFGS(rtol=rtol, atol=atol), "minimise"
    if method == "gauss_newton":
        return optx.GaussNewton(rtol=rtol, atol=atol, linear_solver=linear), "least_squares"
    if method == "levenberg_marquardt":
        return optx.LevenbergMarquardt(rtol=rtol, atol=atol, linear_solver=linear), "least_squares"
    raise ValueError(
        "minimise_inverse: `method` must be 'lbfgs', 'gauss_newton', 'levenberg_marquardt', an optimistix minimiser or "
        f"least-squares solver, or an optax GradientTransformation; got {method!r}."
    )


def _iterate(solver, fn, y0, args, max_steps: int, record):
    """optimistix's init/step/terminate loop as a scan of `max_steps` (skipping once done), recording `record(y)`."""
    f_struct, aux_struct = jax.eval_shape(lambda: fn(y0, args))
    options, tags = {}, frozenset()
    state = solver.init(fn, y0, args, options, f_struct, aux_struct, tags)
    done, result = solver.terminate(fn, y0, args, options, state, tags)
    dynamic, static = eqx.partition(state, eqx.is_array)

    def body(carry, _):
        def advance(carry):
            y, dynamic, done, result, steps = carry
            state = eqx.combine(dynamic, static)
            y, state, _ = solver.step(fn, y, args, options, state, tags)
            done, result = solver.terminate(fn, y, args, options, state, tags)
            return y, eqx.filter(state, eqx.is_array), done, result, steps + 1

        finished = carry[2] | (carry[3] != optx.RESULTS.successful)
        carry = jax.lax.cond(finished, lambda c: c, advance, carry)
        return carry, record(carry[0])

    carry = (y0, dynamic, done, result, jnp.array(0))
    (y, _, done, result, steps), history = jax.lax.scan(body, carry, None, length=max_steps)
    result = optx.RESULTS.where(done | (result != optx.RESULTS.successful), result, optx.RESULTS.nonlinear_max_steps_reached)
    return y, steps, result, history


def minimise_inverse(
    problem: InverseProblem,
    theta0: PyTree[ArrayLike],
    method: str | optx.AbstractMinimiser | optx.AbstractLeastSquaresSolver | optax.GradientTransformation = "lbfgs",
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    max_steps: int = 200,
    record: bool = False,
    throw: bool = True,
) -> InverseSolution:
    r"""Minimise ``J(θ) = Φ(θ) + R(θ)`` of `problem` from `theta0`.

    **Arguments:**

    - `problem`: an `InverseProblem`.
    - `theta0`: the starting parameter (e.g. the prior mean); its shape is checked against the
      data through the forward model before any solve.
    - `method`: ``"lbfgs"`` (default; `optimistix.LBFGS`), ``"gauss_newton"`` /
      ``"levenberg_marquardt"`` (on `InverseProblem.residuals`, steps by matrix-free
      normal-equations CG; the regulariser must be a sum of squares, e.g. `Tikhonov`), any
      optimistix minimiser or least-squares solver, or an optax optimiser.
    - `rtol`, `atol`: optimistix's Cauchy test (change of ``θ`` and of ``J`` between iterates).
    - `max_steps`: the iteration cap. Not converged within it: an error with ``throw=True``,
      else ``result`` says so.
    - `record`: also return the objective and misfit after every iteration (costs one extra
      forward solve per iteration); the loop then always runs `max_steps` scan steps (skipping
      the work once converged).

    **Returns:** an `InverseSolution`.
    """
    if not isinstance(problem, InverseProblem):
        raise TypeError(f"minimise_inverse: `problem` must be an InverseProblem, got {type(problem).__name__}.")
    if not (isinstance(max_steps, int) and max_steps >= 1):
        raise ValueError(f"minimise_inverse: `max_steps` must be a positive integer, got {max_steps!r}.")
    theta0 = jtu.tree_map(jnp.asarray, theta0)
    problem.check(theta0)
    solver, kind = _solver(method, rtol, atol)
    return _minimise(problem, theta0, solver, kind, max_steps, record, throw)


@eqx.filter_jit
def _minimise(problem, theta0, solver, kind, max_steps, record, throw):
    if kind == "least_squares":
        fn = lambda theta, p: (p.residuals(theta), None)  # noqa: E731
    else:
        fn = lambda theta, p: (p.objective(theta), None)  # noqa: E731
    if record:
        values = lambda theta: {"objective": problem.objective(theta), "misfit": problem.misfit(theta)}  # noqa: E731
        theta, steps, result, history = _iterate(solver, fn, theta0, problem, max_steps, values)
        history = jtu.tree_map(lambda first, rest: jnp.concatenate([first[None], rest]), values(theta0), history)
    else:
        solution = (optx.least_squares if kind == "least_squares" else optx.minimise)(
            fn, solver, theta0, args=problem, has_aux=True, max_steps=max_steps, throw=False
        )
        theta, steps, result, history = solution.value, solution.stats["num_steps"], solution.result, None
    if throw:
        theta = result.error_if(theta, result != optx.RESULTS.successful)
    return InverseSolution(theta, problem.objective(theta), problem.misfit(theta), steps, result, history)


# ----------------------------------------------------------------------------------------------
# Forward models
# ----------------------------------------------------------------------------------------------


class DarcyForward(eqx.Module):
    r"""``θ ↦ u``: the pressure of ``−∇·(e^θ ∇u) = f``, ``u = 0`` on ``∂Ω``, by `Darcy.solve`.

    ``θ = log a`` on the grid's nodes keeps the coefficient positive for every ``θ`` (the
    parametrisation of the Bayesian inverse-problem literature, e.g. Stuart, Acta Numerica 19,
    2010). The gradient of any function of ``u`` is one adjoint CG solve (lineax). The operator
    and CG are `Darcy.operator` and `jaxpde.pdes.elliptic.default_solver`, as in `Darcy.solve`;
    a solve that fails returns NaN (a line search then backtracks), ``θ`` is clipped to
    ``[−30, 30]``. `source` is a scalar or a field.

    **Arguments:** `grid` (a Dirichlet `Grid`), `source` (``f``, default 1), `rtol` (CG, default
    the solver's), `preconditioner` (as `Darcy.solve`'s, e.g.
    `jaxpde.preconditioners.GeometricMultigrid()`; default Jacobi).
    """

    grid: Grid = eqx.field(static=True)
    source: Any = 1.0
    rtol: float | None = eqx.field(static=True, default=None)
    preconditioner: Any = None

    def __call__(self, theta):
        if tuple(theta.shape) != tuple(self.grid.shape):
            raise ValueError(f"DarcyForward: `theta` (log a) must have the grid's shape {self.grid.shape}, got {theta.shape}.")
        # A line search may try a wild step (L-BFGS's first is the raw gradient): keep a > 0 in
        # floating point, and answer a failed solve with NaN — which the line search rejects —
        # instead of raising out of the optimiser.
        darcy = Darcy()
        coefficient = jnp.exp(jnp.clip(theta, -_LOG_RANGE, _LOG_RANGE))
        operator = darcy.operator(self.grid, coefficient)
        rhs = jnp.broadcast_to(jnp.asarray(self.source, theta.dtype), self.grid.shape)
        preconditioner = Jacobi() if self.preconditioner is None else self.preconditioner
        solution = lx.linear_solve(operator, rhs, default_solver(theta.dtype, self.rtol, preconditioner=preconditioner), throw=False)
        return jnp.where(solution.result == lx.RESULTS.successful, solution.value, jnp.nan)


_LOG_RANGE = 30.0


class HeatForward(eqx.Module):
    r"""``u₀ ↦ u(t₁)`` of a time-dependent PDE, by `jaxpde.numerics.time_integration.solve`.

    Any PDE and diffrax solver that `time_integration.solve` takes (default ETDRK4, exact for the
    periodic `Heat`). Reverse mode (L-BFGS, optax) and forward-over-reverse Hessian-vector
    products (the bilevel tools) go through diffrax's default `RecursiveCheckpointAdjoint` at
    bounded memory; Gauss–Newton needs Jacobian-vector products of the solve itself, which that
    adjoint (a custom VJP) refuses: pass ``adjoint=diffrax.DirectAdjoint()`` for it.

    With ``lean=True`` the same ETDRK steps run through `time_integration.rollout` (a
    `jax.lax.scan`, no diffrax loop): it compiles in a fraction of the time, and differentiates
    in every mode (the scan stores every step for reverse mode).

    **Arguments:** `pde`, `t1`, `dt`, `solver` (default ETDRK4), `adjoint` (diffrax's; default
    recursive checkpointing), `lean`.
    """

    pde: Any
    t1: float = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    solver: Any = None
    adjoint: Any = None
    lean: bool = eqx.field(static=True, default=False)

    def __call__(self, u0):
        if self.lean:
            steps = max(1, round(self.t1 / self.dt))
            return time_integration.rollout(self.pde, u0, self.t1 / steps, steps, self.solver)
        return time_integration.solve(self.pde, u0, self.t1, self.dt, self.solver, adjoint=self.adjoint).ys[-1]


class DirichletControlPoisson(eqx.Module):
    r"""Boundary control ``g ↦ u``: ``−Δ_h u = f`` inside, ``u = g`` on the boundary of a 2D box.

    The 5-point Laplacian couples an interior node next to the wall to its boundary value, so the
    non-homogeneous problem is the homogeneous one with the lifted source ``f + B g``: ``B`` adds
    ``g/h²`` at the interior neighbour of each boundary node. The box's corners couple to
    nothing, and each interior corner node sees two boundary values and only their sum; so the
    control ``g`` holds the edges ``x₀ = 0`` and ``x₀ = L₀`` (``n₁`` values each) and the edges
    ``x₁ = 0`` and ``x₁ = L₁`` without their two end nodes (``n₀ − 2`` values each; those ends
    are held at 0), ``2(n₀ + n₁) − 4`` values. Then ``g ↦ u`` is injective, and a target
    ``u(g†)`` has the unique optimal control ``g†`` (a manufactured optimum).

    **Arguments:** `grid` (a 2D Dirichlet `Grid`, interior nodes), `source` (``f``, default 0),
    `rtol` (CG, default the solver's).
    """

    grid: Grid = eqx.field(static=True)
    source: Any = 0.0
    rtol: float | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self.grid.ndim != 2 or self.grid.boundary != "dirichlet" or min(self.grid.shape) < 3:
            raise ValueError(f"DirichletControlPoisson: `grid` must be a 2D Dirichlet Grid of at least 3×3 nodes, got {self.grid!r}.")

    @property
    def control_size(self) -> int:
        n0, n1 = self.grid.shape
        return 2 * (n0 + n1) - 4

    def lift(self, g):
        """``B g``: the boundary values moved into the right-hand side."""
        n0, n1 = self.grid.shape
        if tuple(g.shape) != (self.control_size,):
            raise ValueError(f"DirichletControlPoisson: the control `g` must have shape ({self.control_size},), got {g.shape}.")
        h0, h1 = self.grid.spacing
        left, right, bottom, top = jnp.split(g, np.cumsum([n1, n1, n0 - 2]))
        b = jnp.zeros(self.grid.shape, g.dtype)
        b = b.at[0, :].add(left / h0**2).at[-1, :].add(right / h0**2)
        return b.at[1:-1, 0].add(bottom / h1**2).at[1:-1, -1].add(top / h1**2)

    def __call__(self, g):
        f = jnp.broadcast_to(jnp.asarray(self.source, g.dtype), self.grid.shape)
        return Poisson().solve(self.grid, f + self.lift(g), rtol=self.rtol)
