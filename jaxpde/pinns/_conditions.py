r"""Initial and boundary conditions of PINN problems; each names the side it applies to.

A condition is an `equinox.Module` that turns into one loss term per side it covers, with the
pointwise residual (zero where the condition holds) at points sampled on that side:

| condition | residual at a boundary point | term name |
|---|---|---|
| ``Dirichlet(g, on=side)`` | $u - g$ | ``"boundary/<side>"`` |
| ``Neumann(g, on=side)`` | $\partial_n u - g = \nabla u\cdot n - g$ | ``"boundary/<side>"`` |
| ``Robin(a, b, g, on=side)`` | $a u + b\,\partial_n u - g$ | ``"boundary/<side>"`` |
| ``Periodic(on=(lower, upper))`` | $u(x) - u(x + L e_i)$ (and $\nabla u$, ``derivatives=1``) | ``"periodic/<lower>-<upper>"`` |
| ``Initial(g)`` | $u(x, t_0) - g(x)$ | ``"initial"`` |

``on="boundary"`` (the default) is the whole boundary, term ``"boundary"``; ``on=("left",
"right")`` makes one term per side. $g$ (and Robin's $a$, $b$) is a number, or a function of one
point with the unknown's signature — ``g(x)`` for a stationary problem, ``g(x, t)`` for a
time-dependent one, ``g(x)`` always for `Initial` — returning a scalar or ``(c,)`` like the
unknown. $n$ is the domain's outward unit normal. ``n`` (the field) is the number of points per
side in each sample; ``name`` overrides the term name.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import autodiff
from ._domains import WHOLE, Points, check_count

__all__ = ["AbstractCondition", "Dirichlet", "Initial", "Neumann", "Periodic", "Robin"]

Data = float | Callable[..., Float[Array, "..."]]


def evaluate(u_fn, x, t):
    """``u_fn(x)`` (stationary, ``t is None``) or ``u_fn(x, t)``, as an array."""
    return jnp.asarray(u_fn(x) if t is None else u_fn(x, t))


def spatial_gradient(u_fn, x, t):
    r"""$\nabla_x u$ at one point, shape ``(*out, d)``."""
    return autodiff.gradient(u_fn)(x) if t is None else autodiff.gradient(u_fn)(x, t)


def _data(value: Data, x, t, dtype):
    return jnp.asarray(evaluate(value, x, t) if callable(value) else value, dtype)


def _check_data(owner: str, name: str, value: Data) -> Data:
    """A constant must be finite (a NaN would only surface as a non-finite loss, steps later); a
    function is checked where it is evaluated, by the training engine's finiteness checks."""
    if callable(value) or isinstance(value, jax.core.Tracer):  # a traced value is checked by the engine
        return value
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: `{name}` must be a number, an array or a function of the point, got {value!r}.") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{owner}: `{name}` must be finite, got {value!r}.")
    return value


def _sides(owner: str, on) -> tuple[str, ...]:
    sides = (on,) if isinstance(on, str) else tuple(on)
    if not sides or not all(isinstance(side, str) for side in sides):
        raise TypeError(f"{owner}: `on` must be a side name or a tuple of side names, got {on!r}.")
    return sides


class AbstractCondition(eqx.Module):
    """One condition on one or more sides; the loss terms it contributes are `terms`."""

    n: eqx.AbstractVar[int]
    name: eqx.AbstractVar[str | None]

    @property
    def sides(self) -> tuple[str, ...]:
        raise NotImplementedError

    def term_name(self, side: str) -> str:
        raise NotImplementedError

    def terms(self) -> dict[str, str]:
        """``{term name: side}``."""
        if self.name is not None:
            if len(self.sides) != 1:
                raise ValueError(f"{type(self).__name__}: `name` needs a single side, got on={self.sides}.")
            return {self.name: self.sides[0]}
        return {self.term_name(side): side for side in self.sides}

    def check(self, domain, owner: str) -> None:
        """Raise if the condition cannot apply to `domain` (a missing side, a wrong kind of domain)."""
        for side in self.sides:
            if side not in domain.sides:
                raise ValueError(
                    f"{owner}: {type(self).__name__} applies to side {side!r}, but {_domain_name(domain)} has sides "
                    f"{domain.sides}."
                )

    def sample(self, domain, key, side: str, n: int) -> Points:
        return domain.sample_boundary(key, n, side)

    def residual(self, u_fn, domain, side: str, x, t) -> Float[Array, "..."]:
        """The residual at one point ``x`` (time ``t`` or ``None``) of `side`."""
        raise NotImplementedError


def _domain_name(domain) -> str:
    space = getattr(domain, "space", None)
    return f"SpaceTime over {type(space).__name__}" if space is not None else type(domain).__name__


class _AbstractSideCondition(AbstractCondition):
    on: eqx.AbstractVar[tuple[str, ...]]

    @property
    def sides(self):
        return self.on

    def term_name(self, side):
        return WHOLE if side == WHOLE else f"boundary/{side}"

    def check(self, domain, owner):
        super().check(domain, owner)
        if "initial" in self.on:
            raise ValueError(f"{owner}: {type(self).__name__} on the side 'initial'; use Initial(...) for the initial condition.")


def _init_side(self, owner, on, n, name):
    self.on = _sides(owner, on)
    self.n = check_count(owner, "n", n)
    self.name = name


class Dirichlet(_AbstractSideCondition):
    r"""$u = g$ on `on`."""

    value: Data
    on: tuple[str, ...] = eqx.field(static=True)
    n: int = eqx.field(static=True)
    name: str | None = eqx.field(static=True)

    def __init__(self, value: Data = 0.0, on: str | tuple[str, ...] = WHOLE, *, n: int = 100, name: str | None = None):
        self.value = _check_data("Dirichlet", "value", value)
        _init_side(self, "Dirichlet", on, n, name)

    def residual(self, u_fn, domain, side, x, t):
        u = evaluate(u_fn, x, t)
        return u - _data(self.value, x, t, u.dtype)


class Neumann(_AbstractSideCondition):
    r"""$\partial_n u = \nabla u\cdot n = g$ on `on` ($n$ the outward unit normal)."""

    value: Data
    on: tuple[str, ...] = eqx.field(static=True)
    n: int = eqx.field(static=True)
    name: str | None = eqx.field(static=True)

    def __init__(self, value: Data = 0.0, on: str | tuple[str, ...] = WHOLE, *, n: int = 100, name: str | None = None):
        self.value = _check_data("Neumann", "value", value)
        _init_side(self, "Neumann", on, n, name)

    def residual(self, u_fn, domain, side, x, t):
        du = spatial_gradient(u_fn, x, t) @ domain.normal(x, side).astype(x.dtype)
        return du - _data(self.value, x, t, du.dtype)


class Robin(_AbstractSideCondition):
    r"""$a u + b\,\partial_n u = g$ on `on`."""

    a: Data
    b: Data
    value: Data
    on: tuple[str, ...] = eqx.field(static=True)
    n: int = eqx.field(static=True)
    name: str | None = eqx.field(static=True)

    def __init__(
        self, a: Data, b: Data, value: Data = 0.0, on: str | tuple[str, ...] = WHOLE, *, n: int = 100, name: str | None = None
    ):
        self.a, self.b, self.value = (_check_data("Robin", k, v) for k, v in (("a", a), ("b", b), ("value", value)))
        _init_side(self, "Robin", on, n, name)

    def residual(self, u_fn, domain, side, x, t):
        u = evaluate(u_fn, x, t)
        du = spatial_gradient(u_fn, x, t) @ domain.normal(x, side).astype(x.dtype)
        a, b, g = (_data(v, x, t, u.dtype) for v in (self.a, self.b, self.value))
        return a * u + b * du - g


class Periodic(AbstractCondition):
    r"""$u(x) = u(x + L e_i)$ between the two opposite sides `on` = ``(lower, upper)`` of axis $i$
    of a box ($L$ its length); with ``derivatives=1`` also $\nabla u$ (what a second-order PDE needs).

    Points are drawn on the lower side and mapped to the upper one; the residual stacks the
    differences of $u$ (and of the gradient), shape ``(k,)`` per point.
    """

    on: tuple[str, str] = eqx.field(static=True)
    derivatives: int = eqx.field(static=True)
    n: int = eqx.field(static=True)
    name: str | None = eqx.field(static=True)

    def __init__(self, on: tuple[str, str] = ("left", "right"), *, derivatives: int = 1, n: int = 100, name: str | None = None):
        on = _sides("Periodic", on)
        if len(on) != 2:
            raise ValueError(f"Periodic: `on` must be two opposite sides (lower, upper), got {on!r}.")
        if derivatives not in (0, 1):
            raise ValueError(f"Periodic: `derivatives` must be 0 or 1, got {derivatives!r}.")
        self.on, self.derivatives = on, derivatives
        self.n = check_count("Periodic", "n", n)
        self.name = name

    @property
    def sides(self):
        return (self.on[0],)

    def term_name(self, side):
        return f"periodic/{self.on[0]}-{self.on[1]}"

    def check(self, domain, owner):
        space = getattr(domain, "space", domain)
        for side in self.on:
            if side not in domain.sides or side in (WHOLE, "initial"):
                raise ValueError(f"{owner}: Periodic applies to side {side!r}, but {_domain_name(domain)} has sides {domain.sides}.")
        side_axis = getattr(space, "side_axis", None)
        if side_axis is None:
            raise ValueError(f"{owner}: Periodic needs a box (Interval, Rectangle, Box), got {_domain_name(domain)}.")
        (axis0, end0), (axis1, end1) = side_axis(self.on[0]), side_axis(self.on[1])
        if axis0 != axis1 or (end0, end1) != (0, 1):
            raise ValueError(f"{owner}: Periodic `on` must be the (lower, upper) sides of one axis, got {self.on}.")

    def _partner(self, domain, x):
        space = getattr(domain, "space", domain)
        axis, _ = space.side_axis(self.on[1])
        return x.at[axis].set(jnp.asarray(space.upper[axis], x.dtype))

    def residual(self, u_fn, domain, side, x, t):
        y = self._partner(domain, x)
        parts = [jnp.ravel(evaluate(u_fn, x, t) - evaluate(u_fn, y, t))]
        if self.derivatives:
            parts.append(jnp.ravel(spatial_gradient(u_fn, x, t) - spatial_gradient(u_fn, y, t)))
        return jnp.concatenate(parts)


class Initial(AbstractCondition):
    r"""$u(x, t_0) = g(x)$ on the spatial domain (needs a `SpaceTime` domain)."""

    value: Data
    n: int = eqx.field(static=True)
    name: str | None = eqx.field(static=True)

    def __init__(self, value: Data, *, n: int = 100, name: str | None = None):
        self.value = _check_data("Initial", "value", value)
        self.n = check_count("Initial", "n", n)
        self.name = name

    @property
    def sides(self):
        return ("initial",)

    def term_name(self, side):
        return "initial"

    def check(self, domain, owner):
        if "initial" not in domain.sides:
            raise ValueError(f"{owner}: Initial needs a time-dependent domain (SpaceTime), got {_domain_name(domain)}.")

    def residual(self, u_fn, domain, side, x, t):
        u = evaluate(u_fn, x, t)
        g = jnp.asarray(self.value(x) if callable(self.value) else self.value, u.dtype)
        return u - g


def periodic_sides(conditions) -> set[str]:
    """The sides made periodic by the `Periodic` conditions among `conditions`."""
    return {side for condition in conditions if isinstance(condition, Periodic) for side in condition.on}


def vmap_residual(condition: AbstractCondition, u_fn, domain, side: str, points: Points):
    """The condition's residual at every point, shape ``(n, ...)``."""
    if points.t is None:
        return jax.vmap(lambda x: condition.residual(u_fn, domain, side, x, None))(points.x)
    return jax.vmap(lambda x, t: condition.residual(u_fn, domain, side, x, t))(points.x, points.t)
