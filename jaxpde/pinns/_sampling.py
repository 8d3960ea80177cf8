r"""Collocation resampling: where the residual is evaluated, step after step.

A PINN minimises the residual at a finite set of collocation points; a fixed set lets the
network fit those points and fail between them, and uniform points spend as much effort where
the solution is smooth as where it is sharp. Three fixed-size schemes, each a population of
`n` points of one term (the PDE residual by default) kept in `fit`'s ``extra`` — so a resumed
run continues with the very population it stopped with — and renewed every `every` steps:

- `UniformResampling`: a fresh uniform sample (``problem.sample_term``) every time.
- `RAR`, residual-based adaptive refinement (Lu, Meng, Mao & Karniadakis, "DeepXDE: a deep
  learning library for solving differential equations", SIAM Review 2021): draw `candidates`
  uniform points, keep the `replace` with the largest residual $|r|$. Lu et al. *add* them to
  the set; a compiled step needs a fixed shape, so here they replace the `replace` points of the
  population with the smallest residual — the population's size stays `n` and it moves toward
  the high-residual regions.
- `R3`, retain–resample–release (Daw, Bu, Wang, Perdikaris & Karpatne, "Mitigating propagation
  failures in physics-informed neural networks using retain-resample-release (R3) sampling",
  ICML 2023): retain the points whose residual is at least the population's mean $|r|$,
  release the others and replace them by fresh uniform points. The retained set accumulates
  in the high-residual regions; the fresh points keep the rest of the domain covered.

The residual at a point is $|r(p)|$ (the Euclidean norm of a vector residual's components),
evaluated on the model under `stop_gradient`.

The contract needs of the problem ``sample_term(name, key, n) -> Points`` and
``residuals(model, {name: points}) -> {name: (n, ...)}``.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp

__all__ = ["AbstractResampling", "UniformResampling", "RAR", "R3", "residual_size"]


def residual_size(problem, model, term: str, points) -> jax.Array:
    """$|r(p)|$ at each of `points` (shape ``(n,)``): the norm of the term's residual per point."""
    residual = problem.residuals(model, {term: points})[term]
    return jnp.sqrt(jnp.sum(jnp.square(residual).reshape(residual.shape[0], -1), axis=1))


def _count(owner: str, name: str, value, minimum: int = 1) -> int:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
        raise ValueError(f"{owner}: `{name}` must be an integer >= {minimum}, got {value!r}.")
    return value


def _select(mask, a, b):
    """Per point: ``a`` where `mask`, else ``b`` (the leading axis of every leaf is the point)."""
    def pick(x, y):
        return jnp.where(mask.reshape(mask.shape + (1,) * (x.ndim - 1)), x, y)

    return jax.tree.map(pick, a, b)


class AbstractResampling(eqx.Module):
    """A population of `n` points of the term `term`, renewed every `every` steps.

    - ``init(problem, key) -> points``: the first population (uniform).
    - ``resample(points, problem, model, key) -> points``: the next one, of the same size.
    """

    n: eqx.AbstractVar[int]
    term: eqx.AbstractVar[str]
    every: eqx.AbstractVar[int]

    def init(self, problem, key):
        return problem.sample_term(self.term, key, self.n)

    @abc.abstractmethod
    def resample(self, points, problem, model, key):
        """The population after one renewal."""


class UniformResampling(AbstractResampling):
    """A fresh uniform sample of `n` points every `every` steps."""

    n: int = eqx.field(static=True)
    term: str = eqx.field(static=True, default="residual")
    every: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        _count("UniformResampling", "n", self.n)
        _count("UniformResampling", "every", self.every)

    def resample(self, points, problem, model, key):
        return problem.sample_term(self.term, key, self.n)


class RAR(AbstractResampling):
    """Residual-based adaptive refinement at a fixed size: of `candidates` fresh uniform points,
    the `replace` with the largest residual take the places of the `replace` population points
    with the smallest."""

    n: int = eqx.field(static=True)
    candidates: int = eqx.field(static=True, default=1000)
    replace: int = eqx.field(static=True, default=10)
    term: str = eqx.field(static=True, default="residual")
    every: int = eqx.field(static=True, default=100)

    def __check_init__(self):
        _count("RAR", "n", self.n)
        _count("RAR", "candidates", self.candidates)
        _count("RAR", "every", self.every)
        _count("RAR", "replace", self.replace)
        if self.replace > min(self.n, self.candidates):
            raise ValueError(
                f"RAR: `replace` must be at most min(n, candidates) = {min(self.n, self.candidates)}, got {self.replace}."
            )

    def resample(self, points, problem, model, key):
        fresh = problem.sample_term(self.term, key, self.candidates)
        _, best = jax.lax.top_k(residual_size(problem, model, self.term, fresh), self.replace)
        _, worst = jax.lax.top_k(-residual_size(problem, model, self.term, points), self.replace)
        return jax.tree.map(lambda p, f: p.at[worst].set(f[best]), points, fresh)


class R3(AbstractResampling):
    """Retain–resample–release: keep the points with $|r| \\ge \\operatorname{mean}|r|$, replace
    the others by fresh uniform points."""

    n: int = eqx.field(static=True)
    term: str = eqx.field(static=True, default="residual")
    every: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        _count("R3", "n", self.n)
        _count("R3", "every", self.every)

    def resample(self, points, problem, model, key):
        size = residual_size(problem, model, self.term, points)
        fresh = problem.sample_term(self.term, key, self.n)
        return _select(size >= jnp.mean(size), points, fresh)
