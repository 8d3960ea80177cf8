r"""Domains of PINN problems: where the residual is sampled, and the named sides of the boundary.

A domain is an `equinox.Module` that draws uniform points (``sample_interior(key, n)``,
``sample_boundary(key, n, side)``), names the parts of its boundary (``sides``: ``"left"``,
``"right"``, … for boxes; ``"boundary"`` is always the whole boundary), gives the outward unit
normal at a boundary point (``normal(x, side)``) and a signed distance (negative inside, zero on
the boundary) for distance-function constraints. Points come back as `Points` — ``x`` of shape
``(n, d)`` and ``t`` of shape ``(n,)`` or ``None`` — the pytree every term of a `Problem` uses.

- `Interval`, `Rectangle`, `Box`: axis-aligned boxes; the sides of axis 0 are ``"left"`` /
  ``"right"`` (lower / upper end), of axis 1 ``"bottom"`` / ``"top"``, of axis 2 ``"back"`` /
  ``"front"``, of axis ``i > 2`` ``"lower{i}"`` / ``"upper{i}"``.
- `Disk`: a ball given by its signed distance $|x - c| - r$ (any dimension).
- `LShape`: $[-1, 1]^2 \setminus (0, 1]^2$, the classic re-entrant corner (singular solutions
  of Poisson's equation), as a union of three unit squares.
- `SpaceTime`: a spatial domain $\Omega$ times $[t_0, t_1]$, the cylinder of a time-dependent
  problem; its sides are those of $\Omega$ (times $[t_0, t_1]$) and ``"initial"``
  ($\Omega \times \{t_0\}$).

Sampling is uniform in the measure of each part: the whole boundary picks a side with
probability proportional to its measure (length, area; the two end points of an interval
equally).
"""

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["AbstractDomain", "Box", "Disk", "Interval", "LShape", "Points", "Rectangle", "SpaceTime"]

WHOLE = "boundary"
_AXIS_SIDES = (("left", "right"), ("bottom", "top"), ("back", "front"))


class Points(eqx.Module):
    """Points of one loss term: ``x`` ``(n, d)``, ``t`` ``(n,)`` or ``None``, ``values`` ``(n, ...)`` or ``None``."""

    x: Float[Array, "n d"]
    t: Float[Array, " n"] | None = None
    values: Float[Array, "n ..."] | None = None

    def __len__(self) -> int:
        return self.x.shape[0]


def check_count(owner: str, name: str, n) -> int:
    """``n`` as an integer >= 1 (a term without points has no loss), or an error naming `name`."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{owner}: `{name}` must be an integer >= 1 (the number of points), got {n!r}.")
    return int(n)


class AbstractDomain(eqx.Module):
    """A spatial domain in $\\mathbb R^d$ (see the module docstring)."""

    @property
    def ndim(self) -> int:
        raise NotImplementedError

    @property
    def sides(self) -> tuple[str, ...]:
        """The named parts of the boundary, ``"boundary"`` (the whole of it) last."""
        raise NotImplementedError

    def sample_interior(self, key: PRNGKeyArray, n: int) -> Points:
        raise NotImplementedError

    def sample_boundary(self, key: PRNGKeyArray, n: int, side: str = WHOLE) -> Points:
        raise NotImplementedError

    def normal(self, x: Float[Array, " d"], side: str = WHOLE) -> Float[Array, " d"]:
        """The outward unit normal at a boundary point ``x`` of `side`."""
        raise NotImplementedError

    def signed_distance(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """Negative inside, zero on the boundary, positive outside (the distance to the boundary
        for `Box` and `Disk` inside; a signed approximate distance for `LShape`)."""
        raise NotImplementedError

    def check_side(self, owner: str, side: str) -> str:
        if side not in self.sides:
            raise ValueError(f"{owner}: `side` must be one of {self.sides} ({type(self).__name__}), got {side!r}.")
        return side


def _pick(key, n: int, measures) -> Array:
    """`n` indices drawn with probabilities proportional to `measures` (inverse CDF of a uniform)."""
    cumulative = np.cumsum(measures) / np.sum(measures)
    u = jax.random.uniform(key, (n,))
    return jnp.sum(u[:, None] >= jnp.asarray(cumulative[:-1])[None, :], axis=1)


def _float_vector(owner: str, name: str, value) -> np.ndarray:
    array = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if array.ndim != 1 or not np.isfinite(array).all():
        raise ValueError(f"{owner}: `{name}` must be a finite number or vector, got {value!r}.")
    return array


def _axis_side_names(ndim: int) -> tuple[str, ...]:
    names = []
    for axis in range(ndim):
        lower, upper = _AXIS_SIDES[axis] if axis < len(_AXIS_SIDES) else (f"lower{axis}", f"upper{axis}")
        names += [lower, upper]
    return tuple(names)


class _AbstractBox(AbstractDomain):
    r"""$\prod_i [a_i, b_i]$; side ``2i`` is $x_i = a_i$, side ``2i + 1`` is $x_i = b_i$."""

    lower: tuple[float, ...] = eqx.field(static=True)
    upper: tuple[float, ...] = eqx.field(static=True)

    def _init(self, owner: str, lower, upper):
        lower, upper = _float_vector(owner, "lower", lower), _float_vector(owner, "upper", upper)
        if lower.shape != upper.shape or not (lower < upper).all():
            raise ValueError(f"{owner}: needs `lower` < `upper` on every axis, got lower={lower.tolist()}, upper={upper.tolist()}.")
        self.lower, self.upper = tuple(lower.tolist()), tuple(upper.tolist())

    @property
    def ndim(self) -> int:
        return len(self.lower)

    @property
    def sides(self) -> tuple[str, ...]:
        return (*_axis_side_names(self.ndim), WHOLE)

    def side_axis(self, side: str) -> tuple[int, int]:
        """``(axis, end)`` of a named side: ``end`` 0 for the lower face $x_i = a_i$, 1 for the upper."""
        index = _axis_side_names(self.ndim).index(side)
        return index // 2, index % 2

    def _side_measures(self) -> np.ndarray:
        lengths = np.subtract(self.upper, self.lower)
        faces = [np.prod(np.delete(lengths, axis)) for axis in range(self.ndim)]
        return np.repeat(faces, 2)

    def sample_interior(self, key, n):
        n = check_count(type(self).__name__, "n", n)
        lower, upper = jnp.asarray(self.lower), jnp.asarray(self.upper)
        return Points(jax.random.uniform(key, (n, self.ndim), minval=lower, maxval=upper))

    def sample_boundary(self, key, n, side=WHOLE):
        n = check_count(type(self).__name__, "n", n)
        self.check_side(type(self).__name__ + ".sample_boundary", side)
        x = self.sample_interior(jax.random.fold_in(key, 1), n).x
        bounds = jnp.stack([jnp.asarray(self.lower), jnp.asarray(self.upper)])  # (2, d)
        if side == WHOLE:
            index = _pick(key, n, self._side_measures())
            axis, end = index // 2, index % 2
            on_face = jnp.arange(self.ndim)[None, :] == axis[:, None]
            return Points(jnp.where(on_face, bounds[end], x))
        axis, end = self.side_axis(side)
        return Points(x.at[:, axis].set(bounds[end, axis]))

    def normal(self, x, side=WHOLE):
        if side == WHOLE:
            # The nearest face: on the boundary that is the face the point lies on.
            x = jnp.asarray(x)
            gaps = jnp.stack([x - jnp.asarray(self.lower), jnp.asarray(self.upper) - x], axis=-1).reshape(-1)
            index = jnp.argmin(gaps)
            axis, end = index // 2, index % 2
        else:
            self.check_side(type(self).__name__ + ".normal", side)
            axis, end = self.side_axis(side)
        return jnp.where(jnp.arange(self.ndim) == axis, 2.0 * end - 1.0, 0.0).astype(jnp.result_type(float))

    def signed_distance(self, x):
        x = jnp.asarray(x)
        lower, upper = jnp.asarray(self.lower, x.dtype), jnp.asarray(self.upper, x.dtype)
        centre, half = (lower + upper) / 2, (upper - lower) / 2
        q = jnp.abs(x - centre) - half
        outside = jnp.sqrt(jnp.sum(jnp.square(jnp.maximum(q, 0))) + jnp.finfo(x.dtype).tiny)
        return jnp.where(jnp.max(q) > 0, outside, jnp.max(q))


class Interval(_AbstractBox):
    """$[a, b]$, sides ``"left"`` ($x = a$, normal $-1$) and ``"right"`` ($x = b$, normal $+1$)."""

    def __init__(self, lower: float, upper: float):
        self._init("Interval", lower, upper)
        if len(self.lower) != 1:
            raise ValueError(f"Interval: `lower` and `upper` must be numbers, got {lower!r}, {upper!r}.")


class Rectangle(_AbstractBox):
    """$[a_0, b_0] \\times [a_1, b_1]$, sides ``"left"``, ``"right"`` ($x_0 = a_0, b_0$), ``"bottom"``, ``"top"``."""

    def __init__(self, lower: Sequence[float] = (0.0, 0.0), upper: Sequence[float] = (1.0, 1.0)):
        self._init("Rectangle", lower, upper)
        if len(self.lower) != 2:
            raise ValueError(f"Rectangle: `lower` and `upper` must have 2 entries, got {len(self.lower)}.")


class Box(_AbstractBox):
    """$\\prod_i [a_i, b_i]$ in any dimension (sides named in the module docstring)."""

    def __init__(self, lower: Sequence[float], upper: Sequence[float]):
        self._init("Box", lower, upper)


class Disk(AbstractDomain):
    r"""The ball $|x - c| \le r$ (a disk for $d = 2$), by its signed distance $|x - c| - r$."""

    centre: tuple[float, ...] = eqx.field(static=True)
    radius: float = eqx.field(static=True)

    def __init__(self, centre: Sequence[float] = (0.0, 0.0), radius: float = 1.0):
        centre = _float_vector("Disk", "centre", centre)
        if not (isinstance(radius, (int, float)) and math.isfinite(radius) and radius > 0):
            raise ValueError(f"Disk: `radius` must be a positive number, got {radius!r}.")
        self.centre, self.radius = tuple(centre.tolist()), float(radius)

    @property
    def ndim(self) -> int:
        return len(self.centre)

    @property
    def sides(self) -> tuple[str, ...]:
        return (WHOLE,)

    def _directions(self, key, n):
        v = jax.random.normal(key, (n, self.ndim))
        return v / jnp.linalg.norm(v, axis=1, keepdims=True)

    def sample_interior(self, key, n):
        n = check_count("Disk", "n", n)
        direction_key, radius_key = jax.random.split(key)
        # |x - c| = r U^{1/d} is uniform in volume.
        r = self.radius * jax.random.uniform(radius_key, (n, 1)) ** (1 / self.ndim)
        return Points(jnp.asarray(self.centre) + r * self._directions(direction_key, n))

    def sample_boundary(self, key, n, side=WHOLE):
        n = check_count("Disk", "n", n)
        self.check_side("Disk.sample_boundary", side)
        return Points(jnp.asarray(self.centre) + self.radius * self._directions(key, n))

    def normal(self, x, side=WHOLE):
        self.check_side("Disk.normal", side)
        offset = jnp.asarray(x) - jnp.asarray(self.centre)
        return offset / jnp.linalg.norm(offset)

    def signed_distance(self, x):
        x = jnp.asarray(x)
        return jnp.linalg.norm(x - jnp.asarray(self.centre, x.dtype)) - self.radius


# The L-shape's boundary, counter-clockwise: start, end and outward normal of each edge.
_L_EDGES = np.array(
    [
        [[-1, -1], [1, -1], [0, -1]],
        [[1, -1], [1, 0], [1, 0]],
        [[1, 0], [0, 0], [0, 1]],
        [[0, 0], [0, 1], [1, 0]],
        [[0, 1], [-1, 1], [0, 1]],
        [[-1, 1], [-1, -1], [-1, 0]],
    ],
    dtype=np.float64,
)


class LShape(AbstractDomain):
    r"""$[-1, 1]^2 \setminus (0, 1]^2$: three unit squares around a re-entrant corner at the origin.

    Signed distance $\max(d_{[-1,1]^2}, -d_{(0,1]^2})$ (exact sign, zero exactly on the boundary);
    the whole boundary is the one side ``"boundary"``.
    """

    @property
    def ndim(self) -> int:
        return 2

    @property
    def sides(self) -> tuple[str, ...]:
        return (WHOLE,)

    def sample_interior(self, key, n):
        n = check_count("LShape", "n", n)
        square_key, point_key = jax.random.split(key)
        corners = jnp.asarray([[-1.0, -1.0], [0.0, -1.0], [-1.0, 0.0]])
        which = jax.random.randint(square_key, (n,), 0, 3)
        return Points(corners[which] + jax.random.uniform(point_key, (n, 2)))

    def sample_boundary(self, key, n, side=WHOLE):
        n = check_count("LShape", "n", n)
        self.check_side("LShape.sample_boundary", side)
        edges = jnp.asarray(_L_EDGES)
        lengths = np.linalg.norm(_L_EDGES[:, 1] - _L_EDGES[:, 0], axis=1)
        edge_key, point_key = jax.random.split(key)
        which = _pick(edge_key, n, lengths)
        s = jax.random.uniform(point_key, (n, 1))
        return Points(edges[which, 0] + s * (edges[which, 1] - edges[which, 0]))

    def normal(self, x, side=WHOLE):
        self.check_side("LShape.normal", side)
        x = jnp.asarray(x)
        edges = jnp.asarray(_L_EDGES, x.dtype)
        start, end, normals = edges[:, 0], edges[:, 1], edges[:, 2]
        s = jnp.clip(jnp.sum((x - start) * (end - start), 1) / jnp.sum(jnp.square(end - start), 1), 0, 1)
        distances = jnp.linalg.norm(x - (start + s[:, None] * (end - start)), axis=1)
        return normals[jnp.argmin(distances)]

    def signed_distance(self, x):
        x = jnp.asarray(x)
        square = Box((-1.0, -1.0), (1.0, 1.0)).signed_distance(x)
        cut = Box((0.0, 0.0), (1.0, 1.0)).signed_distance(x)
        return jnp.maximum(square, -cut)


class SpaceTime(eqx.Module):
    r"""The cylinder $\Omega \times [t_0, t_1]$ of a time-dependent problem.

    Sides: every side of $\Omega$ (times $[t_0, t_1]$) and ``"initial"`` ($\Omega \times \{t_0\}$).
    """

    space: AbstractDomain
    t0: float = eqx.field(static=True)
    t1: float = eqx.field(static=True)

    def __init__(self, space: AbstractDomain, time: tuple[float, float] = (0.0, 1.0)):
        if not isinstance(space, AbstractDomain):
            raise TypeError(f"SpaceTime: `space` must be a spatial domain (Interval, Rectangle, …), got {type(space).__name__}.")
        try:
            t0, t1 = (float(v) for v in time)
        except (TypeError, ValueError):
            raise ValueError(f"SpaceTime: `time` must be a pair (t0, t1), got {time!r}.") from None
        if not (math.isfinite(t0) and math.isfinite(t1) and t0 < t1):
            raise ValueError(f"SpaceTime: `time` must be (t0, t1) with t0 < t1, got {time!r}.")
        self.space, self.t0, self.t1 = space, t0, t1

    @property
    def ndim(self) -> int:
        """The spatial dimension $d$ (points have ``x`` of shape ``(d,)`` and a time ``t``)."""
        return self.space.ndim

    @property
    def sides(self) -> tuple[str, ...]:
        return (*self.space.sides, "initial")

    def check_side(self, owner: str, side: str) -> str:
        if side not in self.sides:
            raise ValueError(f"{owner}: `side` must be one of {self.sides} (SpaceTime over {type(self.space).__name__}), got {side!r}.")
        return side

    def _times(self, key, n):
        return jax.random.uniform(key, (n,), minval=self.t0, maxval=self.t1)

    def sample_interior(self, key, n):
        space_key, time_key = jax.random.split(key)
        return Points(self.space.sample_interior(space_key, n).x, self._times(time_key, n))

    def sample_boundary(self, key, n, side=WHOLE):
        self.check_side("SpaceTime.sample_boundary", side)
        space_key, time_key = jax.random.split(key)
        if side == "initial":
            x = self.space.sample_interior(space_key, n).x
            return Points(x, jnp.full((x.shape[0],), self.t0, x.dtype))
        return Points(self.space.sample_boundary(space_key, n, side).x, self._times(time_key, n))

    def normal(self, x, side=WHOLE):
        """The outward spatial normal (shape ``(d,)``) of a lateral side."""
        return self.space.normal(x, side)

    def signed_distance(self, x):
        return self.space.signed_distance(x)
