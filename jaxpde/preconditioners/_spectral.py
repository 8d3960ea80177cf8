r"""A learned spectral preconditioner: a linear, SPD Fourier-layer ``M = S Φ C Φ S`` for diffusion operators.

For ``A = −∇·(a∇·)`` on a Dirichlet grid, the constant-coefficient operator ``ā L`` (``L`` the
5-point ``−Δ``, ``ā`` a mean of ``a``) is *spectrally equivalent* to ``A``:
``a_min L ≤ A ≤ a_max L``, so ``κ(L⁻¹ A) ≤ a_max / a_min`` **whatever the resolution** — 4 for
the FNO Darcy ``12/3`` coefficients, hence a CG iteration count that does not grow with the
grid (15–17 iterations to ``1e-6`` at 62²–254², against Jacobi's 200–820; measured). ``L⁻¹`` is
diagonal in the type-I sine basis ``Φ`` (`jaxpde.numerics.spectral.sine_transform`, orthonormal,
``Φ = Φᵀ = Φ⁻¹``), so it costs two FFTs: ``O(n log n)``, no sequential sweep, no setup.

This module learns what the spectral equivalence leaves on the table, with the two ingredients
of a Fourier neural operator layer (Li et al., ICLR 2021) kept *linear and symmetric*:

.. math::

    M = S\, Φ\, C\, Φ\, S, \qquad
    C = \operatorname{diag}_k \frac{e^{g(\sin^2(θ_k/2))}}{λ_k}, \qquad
    S = \operatorname{diag}_i\, \bar a^{-1/2} e^{q(\log a_{faces(i)} - \log \bar a)},

with ``λ_k = Σ_axes (4/h²) sin²(θ/2) + σ/ā`` the eigenvalues of ``L`` (plus the operator's shift),
``θ = πk/(n+1)`` per axis; ``g`` a small MLP of the normalised frequencies (a learned spectral
multiplier — a function of the frequency, not of the mode index, so it transfers across
resolutions, like the FNO's weights); ``q`` a pointwise MLP of the local face coefficients
(read from the operator's face weights) relative to their geometric mean ``ā``. Both MLPs start
at zero, so the untrained model is exactly the spectrally equivalent ``(ā L)⁻¹``. ``C > 0`` and
``S > 0`` for any weights, so ``M`` is symmetric positive definite (`is_positive_definite`) and
goes to plain CG.

**Scope**: `jaxpde.numerics.DiffusionOperator` on a Dirichlet grid (any dimension); other
operators are refused with an error that says so. **Cost caveat**: the sine transform is an FFT
of length ``2(n + 1)`` per axis, fast when ``n + 1`` has small prime factors — the Darcy grids
with ``2^k + 1`` nodes (interior ``n = 2^k − 1``) give powers of two — and several times slower
for ``n = 256`` (``2·257``, a prime factor: measured 70 ms per 256² transform on this machine
under load, against 1.6 ms for a stencil mat-vec).

**Measured** (trained at 64² on 12/3 Darcy, held-out coefficients, float64 CG to ``1e-6``):
13 iterations at 64², 16–17 at 128², 17–18 at 256² (untrained: 14–15, 16, 16; Jacobi 196–200,
398–411, 829–832; IC(0) 60–61, 121–126, 251–252). Most of the gain is the spectral equivalence;
training adds a little at the training size and nothing beyond it.

**Training recipe** (`train_spectral`)::

    model = train_spectral(DarcySystems(size=32, batch=4), steps=200, key=jax.random.key(0))
    solver = ConjugateGradient(rtol=1e-6, preconditioner=model(A))
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, PRNGKeyArray

from ..numerics.preconditioning import AbstractPreconditioner
from ..numerics.spectral import sine_transform
from ..numerics.stencils import DiffusionOperator
from ._learned import DarcySystems, FlatSymmetricOperator, train_preconditioner, unrolled_pcg_loss

__all__ = ["SpectralPreconditioner", "face_features", "train_spectral"]

_LIMIT = 8.0


def _check_operator(operator, owner: str) -> DiffusionOperator:
    inner = operator.operator if isinstance(operator, lx.TaggedLinearOperator) else operator
    if not isinstance(inner, DiffusionOperator):
        raise TypeError(
            f"{owner}: needs a jaxpde.numerics.DiffusionOperator (its face coefficients and grid), got "
            f"{type(inner).__name__}."
        )
    if inner.grid.boundary != "dirichlet":
        raise ValueError(f"{owner}: needs a Dirichlet grid (the sine basis diagonalises its Laplacian), got {inner.grid.boundary!r}.")
    return inner


def face_features(operator: DiffusionOperator) -> tuple[Array, Array]:
    r"""``(log face coefficients per node, log ā)``: channel ``2·axis`` is ``log a`` on the face
    below node ``i`` along `axis`, ``2·axis + 1`` the face above (``a_face = w h²`` from the
    operator's face weights ``w``), shape ``(2d, *grid)``; ``ā`` the geometric mean of the
    nodes' mean face coefficients. Dirichlet grids only (``n + 1`` faces per axis)."""
    grid = operator.grid
    channels = []
    for axis, (w, h) in enumerate(zip(operator.weights, grid.spacing)):
        face = jnp.log(w * (h * h))
        n = grid.shape[axis]
        channels.append(jax.lax.slice_in_dim(face, 0, n, axis=axis))
        channels.append(jax.lax.slice_in_dim(face, 1, n + 1, axis=axis))
    logs = jnp.stack(channels)
    node = jnp.log(jnp.mean(jnp.exp(logs), axis=0))
    return logs, jnp.mean(node)


def _spectral_apply(arrays, x: Array) -> Array:
    """``s ⊙ Φ(c ⊙ Φ(s ⊙ x))`` on a flat `x`, ``Φ`` the orthonormal type-I sine transform."""
    scale, multiplier = arrays
    v = sine_transform(scale * x.reshape(scale.shape), norm="ortho")
    return (scale * sine_transform(multiplier * v, norm="ortho")).reshape(-1)


def _zero_last(mlp: eqx.nn.MLP) -> eqx.nn.MLP:
    last = mlp.layers[-1]
    return eqx.tree_at(lambda m: (m.layers[-1].weight, m.layers[-1].bias), mlp, (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)))


class SpectralPreconditioner(AbstractPreconditioner):
    r"""``M = S Φ C Φ S``: a learned multiplier on the sine spectrum of the Laplacian and a learned
    pointwise scaling from the coefficient field (module docstring). SPD, linear, ``O(n log n)``
    per application, no setup beyond two small MLPs; resolution independent.

    **Arguments:**

    - `ndim`: the grid's dimension (the multiplier MLP reads one frequency per axis).
    - `width`: hidden width of both MLPs (two hidden layers).
    - `key`: initialisation (last layers zero: the untrained model is ``(ā L)⁻¹``).
    """

    multiplier: eqx.nn.MLP
    pointwise: eqx.nn.MLP
    ndim: int = eqx.field(static=True)

    is_positive_definite: ClassVar[bool] = True
    is_linear: ClassVar[bool] = True

    def __init__(self, ndim: int = 2, width: int = 16, *, key: PRNGKeyArray):
        for name, value in (("ndim", ndim), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SpectralPreconditioner: `{name}` must be a positive integer, got {value!r}.")
        k1, k2 = jax.random.split(key)
        self.ndim = ndim
        self.multiplier = _zero_last(eqx.nn.MLP(ndim, "scalar", width, 2, activation=jax.nn.gelu, key=k1))
        self.pointwise = _zero_last(eqx.nn.MLP(2 * ndim, "scalar", width, 2, activation=jax.nn.gelu, key=k2))

    def build(self, operator: lx.AbstractLinearOperator) -> lx.AbstractLinearOperator:
        owner = type(self).__name__
        op = _check_operator(operator, owner)
        grid = op.grid
        if grid.ndim != self.ndim:
            raise ValueError(f"{owner}: the model was built for {self.ndim}-d grids, got a {grid.ndim}-d grid {grid.shape}.")
        dtype = op.dtype
        logs, log_mean = face_features(op)
        points = jnp.moveaxis(logs - log_mean, 0, -1).reshape(-1, 2 * self.ndim)
        q = jax.vmap(self.pointwise)(points).reshape(grid.shape)
        scale = jnp.exp(-0.5 * log_mean + jnp.clip(q, -_LIMIT, _LIMIT)).astype(dtype)
        # Frequencies θ = πk/(n+1), k = 1..n, per axis; features sin²(θ/2) ∈ (0, 1).
        halves = [jnp.sin(jnp.pi * jnp.arange(1, n + 1, dtype=dtype) / (2 * (n + 1))) ** 2 for n in grid.shape]
        mesh = jnp.stack(jnp.meshgrid(*halves, indexing="ij"), axis=-1)
        eigenvalues = sum(4 / (h * h) * mesh[..., axis] for axis, h in enumerate(grid.spacing)) + op.shift / jnp.exp(log_mean)
        g = jax.vmap(self.multiplier)(mesh.reshape(-1, self.ndim)).reshape(grid.shape)
        multiplier = (jnp.exp(jnp.clip(g, -_LIMIT, _LIMIT)) / eigenvalues).astype(dtype)
        return FlatSymmetricOperator((scale, multiplier), _spectral_apply, operator.in_structure())


def train_spectral(
    systems: DarcySystems,
    steps: int,
    key: PRNGKeyArray,
    *,
    width: int = 16,
    iterations: int = 8,
    learning_rate: float = 3e-3,
    **fit_options,
) -> SpectralPreconditioner:
    """A `SpectralPreconditioner` trained with `jaxpde.training.fit` on the unrolled PCG residual
    after `iterations` steps over the systems `systems` draws. `fit_options` go to `fit`."""
    init_key, train_key = jax.random.split(key)
    model = SpectralPreconditioner(systems.grid.ndim, width, key=init_key)
    objective = lambda m, a, k: unrolled_pcg_loss(m, a, k, iterations=iterations)  # noqa: E731
    return train_preconditioner(model, objective, systems, steps, train_key, learning_rate, **fit_options)
