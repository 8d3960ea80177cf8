r"""A PINN problem as the maths: an equation on a domain, its conditions, optional data.

.. code-block:: python

    pde = Burgers(Grid(256, lengths=2.0, origin=-1.0), viscosity=0.01 / jnp.pi)
    problem = Problem(
        pde,                                        # or residual(u_fn, x, t, params)
        SpaceTime(Interval(-1.0, 1.0), (0.0, 1.0)),
        conditions=(
            Initial(lambda x: -jnp.sin(jnp.pi * x[0])),
            Dirichlet(0.0, on=("left", "right")),
        ),
        num_points=2540,
    )
    points = problem.sample(key)              # {"residual": Points, "initial": …, "boundary/left": …}
    problem.loss_terms(net, points)           # {"residual": mean r², "initial": …, …}

The loss of a PINN (Raissi, Perdikaris & Karniadakis, J. Comput. Phys. 378, 2019; Lagaris et
al. 1998) is a sum of named terms, each the mean square of a pointwise residual: the equation's
residual $r = \partial_t u - F[u]$ (or $\mathcal L u - f$) at interior points, each condition's
residual at points of its side (`jaxpde.pinns._conditions`), and $u - d$ at the observations.
`Problem` gives them in the contract the training methods use:

- ``sample(key) -> {term: Points}`` — fresh uniform points for every term (observations fixed);
  ``sample_term(name, key, n)`` — one term, ``n`` points (resampling);
- ``residuals(model, points) -> {term: (n, ...)}`` — for the terms present in ``points``;
- ``loss_terms(model, points) -> {term: scalar}`` — the means of squares;
- ``u_fn(model)`` — the unknown as a function of one point (``u(x, t)`` or ``u(x)``).

The equation is a PDE of the catalogue (its ``residual(u_fn, x, t, args)``, the one residual
contract of `jaxpde.pdes`) or the user's own function ``residual(u_fn, x, t, params)``
(``t = None`` for a stationary problem) returning a scalar or ``(c,)`` — the maths as written,
with `jaxpde.autodiff` for the derivatives.

**Inverse problems.** The trained `model` is then an `InverseModel(network, parameters)`: the
network and a dict of unknowns — numbers (a viscosity; `Positive` keeps one positive by learning
its logarithm) or networks (a coefficient field $a(x)$). A catalogue PDE gets each parameter in
place of its field of the same name (``{"viscosity": Positive(0.05)}`` for `Burgers`,
``{"coefficient": a_net}`` for `Darcy`); a user residual gets them as ``params``. Observations
``Points(x, t, values)`` add the term ``"data"``, $u(x_k, t_k) - d_k$.
"""

from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ._conditions import AbstractCondition, Neumann, Robin, evaluate, periodic_sides, vmap_residual
from ._domains import WHOLE, AbstractDomain, Points, SpaceTime, check_count

__all__ = ["InverseModel", "Positive", "Problem"]

RESIDUAL, DATA = "residual", "data"


class Positive(eqx.Module):
    r"""A positive unknown $p = e^{\theta}$, trained through $\theta = \log p$ (never negative)."""

    log: Float[Array, "..."]

    def __init__(self, value):
        value = jnp.asarray(value)
        if not jnp.issubdtype(value.dtype, jnp.floating):
            value = value.astype(jnp.result_type(float))
        if not bool(jnp.all(value > 0)):
            raise ValueError(f"Positive: `value` must be positive, got {value!r}.")
        self.log = jnp.log(value)

    @property
    def value(self) -> Float[Array, "..."]:
        return jnp.exp(self.log)


def _resolve(value):
    return value.value if isinstance(value, Positive) else value


class InverseModel(eqx.Module):
    """What an inverse problem trains: the `network` (the unknown $u$) and the `parameters`
    (a dict of numbers, `Positive` numbers or networks), learned jointly."""

    network: eqx.Module
    parameters: dict

    def __init__(self, network: eqx.Module, parameters: Mapping[str, PyTree]):
        if not isinstance(parameters, Mapping) or not parameters:
            raise TypeError(f"InverseModel: `parameters` must be a non-empty dict of unknowns, got {parameters!r}.")
        self.network = network
        self.parameters = dict(parameters)

    def __call__(self, *args):
        return self.network(*args)

    def values(self) -> dict:
        """The parameters as the equation sees them (`Positive` ones as their value)."""
        return {name: _resolve(value) for name, value in self.parameters.items()}


class Problem(eqx.Module):
    r"""An equation on a domain with conditions and optional observations (see the module docstring).

    **Arguments:**

    - `equation`: a catalogue PDE (`jaxpde.pdes`: ``pde.residual(u_fn, x, t, args)``) or a
      function ``residual(u_fn, x, t, params)`` of one point returning ``()`` or ``(c,)``.
    - `domain`: a spatial domain (`Interval`, `Rectangle`, `Box`, `Disk`, `LShape`) for a
      stationary problem, a `SpaceTime` cylinder for a time-dependent one.
    - `conditions`: `Dirichlet`, `Neumann`, `Robin`, `Periodic`, `Initial`, each naming its sides.
    - `observations`: ``Points(x, t, values)`` (``t = None`` if stationary), the term ``"data"``.
    - `num_points`: interior (residual) points per sample.
    - `args`: what the equation gets when the model is a plain network: the catalogue PDE's
      ``args`` (Darcy's coefficient function), or the user residual's ``params``.
    """

    equation: PyTree
    domain: AbstractDomain | SpaceTime
    conditions: tuple[AbstractCondition, ...]
    observations: Points | None
    args: PyTree
    num_points: int = eqx.field(static=True)
    catalogue: bool = eqx.field(static=True)
    time_dependent: bool = eqx.field(static=True)
    term_sides: tuple[tuple[str, int, str], ...] = eqx.field(static=True)

    def __init__(
        self,
        equation,
        domain: AbstractDomain | SpaceTime,
        conditions: Sequence[AbstractCondition] = (),
        observations: Points | None = None,
        *,
        num_points: int = 1000,
        args: PyTree = None,
    ):
        owner = "Problem"
        if not isinstance(domain, (AbstractDomain, SpaceTime)):
            raise TypeError(f"{owner}: `domain` must be a jaxpde.pinns domain (Interval, …, SpaceTime), got {type(domain).__name__}.")
        self.time_dependent = isinstance(domain, SpaceTime)
        self.catalogue = callable(getattr(equation, "residual", None))
        if not self.catalogue and not callable(equation):
            raise TypeError(
                f"{owner}: `equation` must be a catalogue PDE (with a `residual` method) or a function "
                f"residual(u_fn, x, t, params), got {type(equation).__name__}."
            )
        if self.catalogue:
            self._check_catalogue(owner, equation, domain)
        self.num_points = check_count(owner, "num_points", num_points)
        conditions = tuple(conditions)
        self._check_conditions(owner, conditions, domain)
        if observations is not None:
            observations = self._check_observations(owner, observations, domain)
        self.equation, self.domain, self.conditions, self.observations, self.args = (
            equation, domain, conditions, observations, args,
        )
        self.term_sides = tuple(
            (name, index, side) for index, condition in enumerate(conditions) for name, side in condition.terms().items()
        )

    # ---- checks --------------------------------------------------------------------------------

    def _check_catalogue(self, owner, pde, domain):
        pde_time = bool(getattr(pde, "time_dependent", True))
        if pde_time != self.time_dependent:
            wanted = "a SpaceTime domain" if pde_time else "a spatial domain (not SpaceTime)"
            raise ValueError(f"{owner}: {type(pde).__name__} is {'time-dependent' if pde_time else 'stationary'}, so `domain` must be {wanted}, got {type(domain).__name__}.")
        grid = getattr(pde, "grid", None)
        if grid is not None and grid.ndim != domain.ndim:
            raise ValueError(f"{owner}: {type(pde).__name__} is {grid.ndim}-dimensional, but `domain` is {domain.ndim}-dimensional.")

    def _check_conditions(self, owner, conditions, domain):
        names = {RESIDUAL, DATA}
        periodic = periodic_sides(conditions)
        for index, condition in enumerate(conditions):
            where = f"{owner}: `conditions[{index}]`"
            if not isinstance(condition, AbstractCondition):
                raise TypeError(f"{where} must be a condition (Dirichlet, Neumann, Robin, Periodic, Initial), got {type(condition).__name__}.")
            condition.check(domain, where)
            if isinstance(condition, (Neumann, Robin)) and periodic:
                clash = sorted(periodic & set(condition.sides)) or ([WHOLE] if WHOLE in condition.sides else [])
                if clash:
                    raise ValueError(
                        f"{where}: a {type(condition).__name__} condition on side {clash[0]!r}, which a Periodic condition "
                        f"makes periodic (a periodic side has no boundary normal); drop one of them."
                    )
            for name in condition.terms():
                if name in names:
                    raise ValueError(f"{where}: the term name {name!r} is taken; give the condition a `name=`.")
                names.add(name)

    def _check_observations(self, owner, observations, domain):
        if not isinstance(observations, Points) or observations.values is None:
            raise TypeError(f"{owner}: `observations` must be Points(x, t, values) with values, got {observations!r}.")
        x = jnp.asarray(observations.x)
        if x.ndim != 2 or x.shape[1] != domain.ndim or x.shape[0] < 1:
            raise ValueError(f"{owner}: `observations.x` must have shape (n >= 1, {domain.ndim}), got {x.shape}.")
        if (observations.t is None) == self.time_dependent:
            raise ValueError(f"{owner}: `observations.t` must be {'a time per point' if self.time_dependent else 'None'} for this domain.")
        if jnp.shape(observations.values)[0] != x.shape[0]:
            raise ValueError(f"{owner}: `observations.values` must have one entry per point ({x.shape[0]}), got shape {jnp.shape(observations.values)}.")
        for name in ("x", "t", "values"):
            field = getattr(observations, name)
            # Concrete arrays only (a Problem built under jit has traced ones: the engine checks those).
            if field is None or isinstance(field, jax.core.Tracer):
                continue
            bad = int(jnp.sum(~jnp.isfinite(jnp.asarray(field))))
            if bad:
                raise ValueError(f"{owner}: `observations.{name}` must be finite, got {bad} NaN/Inf entries.")
        return observations

    # ---- the contract --------------------------------------------------------------------------

    @property
    def terms(self) -> tuple[str, ...]:
        """The loss terms, in order: ``"residual"``, the conditions' terms, ``"data"``."""
        return (RESIDUAL, *(name for name, _, _ in self.term_sides), *((DATA,) if self.observations is not None else ()))

    def sample_term(self, name: str, key: PRNGKeyArray, n: int) -> Points:
        """`n` uniform points of term `name` (observations are fixed: ``"data"`` returns them all)."""
        if name == DATA and self.observations is not None:
            return self.observations
        if name != RESIDUAL:
            self._condition(name, "Problem.sample_term")  # an unknown name fails here, not in the trace
        # Compiled (once per term and size): op-by-op sampling costs seconds of dispatch.
        return _compiled_sample_term(self, name, key, check_count("Problem.sample_term", "n", n))

    def _sample_term(self, name, key, n):
        if name == RESIDUAL:
            return self.domain.sample_interior(key, check_count("Problem.sample_term", "n", n))
        if name == DATA and self.observations is not None:
            return self.observations
        condition, side = self._condition(name, "Problem.sample_term")
        return condition.sample(self.domain, key, side, check_count("Problem.sample_term", "n", n))

    def sample(self, key: PRNGKeyArray) -> dict[str, Points]:
        """Fresh points for every term: `num_points` interior ones, each condition's ``n`` per side."""
        return _compiled_sample(self, key)

    def _sample(self, key):
        points = {RESIDUAL: self._sample_term(RESIDUAL, jax.random.fold_in(key, 0), self.num_points)}
        for index, (name, condition_index, _) in enumerate(self.term_sides):
            points[name] = self._sample_term(name, jax.random.fold_in(key, index + 1), self.conditions[condition_index].n)
        if self.observations is not None:
            points[DATA] = self.observations
        return points

    def u_fn(self, model) -> Callable:
        """The unknown as a function of one point: the network (of an `InverseModel`, its `network`)."""
        return model.network if isinstance(model, InverseModel) else model

    def equation_for(self, model):
        """``(equation, params)``: the catalogue PDE with the model's unknowns in place, or the user residual."""
        params = model.values() if isinstance(model, InverseModel) else self.args
        if not (self.catalogue and isinstance(model, InverseModel)):
            return self.equation, params
        pde, args = self.equation, self.args
        for name, value in params.items():
            if name == "args":
                args = value
            elif hasattr(pde, name):
                pde = eqx.tree_at(lambda p: getattr(p, name), pde, value, is_leaf=lambda leaf: leaf is None)
            else:
                raise ValueError(f"Problem: the unknown {name!r} is not a field of {type(pde).__name__} (nor 'args').")
        return pde, args

    def residuals(self, model, points: Mapping[str, Points]) -> dict[str, Float[Array, "n ..."]]:
        """The pointwise residual of every term in `points`, each of shape ``(n,)`` or ``(n, c)``."""
        u_fn = self.u_fn(model)
        out = {}
        for name, term_points in points.items():
            if name == RESIDUAL:
                out[name] = self._equation_residual(model, u_fn, term_points)
            elif name == DATA:
                u = jax.vmap(lambda x, t: evaluate(u_fn, x, t))(term_points.x, term_points.t) if self.time_dependent else jax.vmap(u_fn)(term_points.x)
                out[name] = u - jnp.asarray(term_points.values, u.dtype)
            else:
                condition, side = self._condition(name, "Problem.residuals")
                out[name] = vmap_residual(condition, u_fn, self.domain, side, term_points)
        return out

    def loss_terms(self, model, points: Mapping[str, Points]) -> dict[str, Float[Array, ""]]:
        """``{term: mean of the squared residual}`` over points and components."""
        return {name: jnp.mean(jnp.square(r)) for name, r in self.residuals(model, points).items()}

    # ---- helpers -------------------------------------------------------------------------------

    def _condition(self, name: str, owner: str) -> tuple[AbstractCondition, str]:
        for term, index, side in self.term_sides:
            if term == name:
                return self.conditions[index], side
        raise ValueError(f"{owner}: `name` must be one of the problem's terms {self.terms}, got {name!r}.")

    def _equation_residual(self, model, u_fn, points: Points):
        equation, params = self.equation_for(model)
        if self.catalogue:
            pointwise = lambda x, t: equation.residual(u_fn, x, t, params)  # noqa: E731
        else:
            pointwise = lambda x, t: equation(u_fn, x, t, params)  # noqa: E731
        if self.time_dependent:
            if points.t is None:
                raise ValueError("Problem.residuals: the residual points of a time-dependent problem need times `t`, got None.")
            r = jax.vmap(pointwise)(points.x, points.t)
        else:
            r = jax.vmap(lambda x: pointwise(x, None))(points.x)
        if r.ndim not in (1, 2):
            raise ValueError(
                f"Problem: the equation's residual must be a scalar or a vector (c,) at one point, got shape "
                f"{r.shape[1:]} per point; return the residual of one point (the problem vmaps over points)."
            )
        return r


@eqx.filter_jit
def _compiled_sample(problem: Problem, key):
    return problem._sample(key)


@eqx.filter_jit
def _compiled_sample_term(problem: Problem, name: str, key, n: int):
    return problem._sample_term(name, key, n)
