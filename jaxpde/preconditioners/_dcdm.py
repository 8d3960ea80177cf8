r"""Deep Conjugate Direction Method (DCDM): a CNN approximating ``A⁻¹ r`` up to scale, inside flexible CG.

Kaneda, Akar, Chen, Kala, Hyde & Teran, "A deep conjugate direction method for iteratively
solving linear systems", ICML 2023. A convolutional network ``f`` maps the current residual (and
here the coefficient field) to a search direction ``d = f(r) ≈ c A⁻¹ r``; the solver
A-orthogonalises ``d`` against the last few directions and steps along it — a flexible CG, since
``f`` is not a fixed linear map. The scale ``c`` is irrelevant (the step length absorbs it), so
the network is trained on the scale-invariant loss

.. math::

    \ell(r) = \frac{\| r - α^* A f(r) \|^2}{\|r\|^2}, \qquad α^* = \frac{⟨r, A f(r)⟩}{\|A f(r)\|^2}
    \quad(\text{the optimal scale}),

i.e. ``1 − cos²∠(r, A f(r))``: zero exactly when ``f(r) ∝ A⁻¹ r``. DCDM trains on vectors that
look like CG residuals — dominated by ``A``'s *low* eigenmodes, which are what a preconditioner
must resolve (high modes are damped by any smoother); `residual_like` draws them by smoothing
white noise with a random number (``0``–``2^{sweeps}``) of damped-Jacobi sweeps
``r ← r − ω D⁻¹ A r``, which removes the high modes first.

`DCDMNetwork` is a small residual CNN with dilated 3×3 convolutions (receptive field
``1 + 2 Σ dilations`` grid points, 31 with the default ``(1, 2, 4, 8)``) and an identity skip
(the untrained network returns ``r``: flexible CG then starts as plain CG). `DCDM` wraps it as a
nonlinear preconditioner (``is_linear = False``) for `FlexibleCG`.

**Training recipe** (`train_dcdm`)::

    model = train_dcdm(DarcySystems(size=32, batch=4), steps=300, key=jax.random.key(0))
    # inside a flexible Krylov method: FlexibleCG(rtol=1e-6, preconditioner=model)
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float, PRNGKeyArray

from ..numerics.preconditioning import AbstractPreconditioner, diagonal
from ._learned import DarcySystems, train_preconditioner
from ._neural_operator_preconditioner import network_operator

__all__ = ["DCDM", "DCDMNetwork", "dcdm_loss", "residual_like", "train_dcdm"]


class DCDMNetwork(eqx.Module):
    r"""``f(x) = x_0 + W_out ∘ σ ∘ W_L ∘ … ∘ σ ∘ W_1 (x)``: dilated 3×3 convolutions with GELU and an
    identity skip on the residual channel ``x_0`` (the output layer starts at zero).

    **Arguments:** `in_channels` (``1`` + coefficient channels), `width`, `dilations` (one
    convolution per entry), `ndim` (grid dimension), `key`.
    """

    layers: tuple[eqx.nn.Conv, ...]
    output: eqx.nn.Conv

    def __init__(self, in_channels: int = 5, width: int = 16, dilations: tuple[int, ...] = (1, 2, 4, 8), ndim: int = 2, *, key: PRNGKeyArray):
        keys = jax.random.split(key, len(dilations) + 1)
        channels = [in_channels, *[width] * len(dilations)]
        self.layers = tuple(
            eqx.nn.Conv(ndim, channels[i], channels[i + 1], 3, padding=d, dilation=d, key=keys[i])
            for i, d in enumerate(dilations)
        )
        out = eqx.nn.Conv(ndim, channels[-1], 1, 3, padding=1, key=keys[-1])
        self.output = eqx.tree_at(lambda c: (c.weight, c.bias), out, (jnp.zeros_like(out.weight), jnp.zeros_like(out.bias)))

    def __call__(self, x: Float[Array, "channels *grid"]) -> Float[Array, "1 *grid"]:
        h = x
        for layer in self.layers:
            h = jax.nn.gelu(layer(h))
        return x[:1] + self.output(h)


class DCDM(AbstractPreconditioner):
    r"""DCDM's CNN as a nonlinear preconditioner (module docstring): ``M r = ‖r‖ f(r/‖r‖, log a)``.

    For flexible Krylov methods only (`is_linear` is ``False``). Any grid size works (the CNN is
    local); `shape` pins the one it was trained for, if wanted.

    **Arguments:**

    - `width`, `dilations`: of `DCDMNetwork`.
    - `ndim`: grid dimension (default 2).
    - `coefficients`: feed the log face coefficients of the `DiffusionOperator` (default ``True``).
    - `shape`: ``None`` or the required grid shape.
    - `key`: initialisation.
    """

    network: DCDMNetwork
    coefficients: bool = eqx.field(static=True)
    shape: tuple[int, ...] | None = eqx.field(static=True)

    is_positive_definite: ClassVar[bool] = False
    is_linear: ClassVar[bool] = False

    def __init__(
        self,
        width: int = 16,
        dilations: tuple[int, ...] = (1, 2, 4, 8),
        ndim: int = 2,
        coefficients: bool = True,
        shape: tuple[int, ...] | None = None,
        *,
        key: PRNGKeyArray,
    ):
        in_channels = 1 + (2 * ndim if coefficients else 0)
        self.network = DCDMNetwork(in_channels, width, tuple(dilations), ndim, key=key)
        self.coefficients = bool(coefficients)
        self.shape = None if shape is None else tuple(shape)

    def build(self, operator: lx.AbstractLinearOperator) -> lx.AbstractLinearOperator:
        return network_operator(
            self.network, operator, coefficients=self.coefficients, channels=True, shape=self.shape, owner="DCDM"
        )


def residual_like(operator: lx.AbstractLinearOperator, key: PRNGKeyArray, probes: int = 4, sweeps: int = 6) -> Array:
    r"""`probes` unit-norm vectors dominated by ``A``'s low modes: white noise after ``m`` damped
    Jacobi sweeps (``ω = 2/3``), ``m`` drawn from ``{0, 1, 2, 4, …, 2^sweeps}`` per probe."""
    structure = operator.in_structure()
    k1, k2 = jax.random.split(key)
    z = jax.random.normal(k1, (probes, *structure.shape), structure.dtype)
    counts = jnp.concatenate([jnp.zeros(1, jnp.int32), 2 ** jnp.arange(sweeps + 1, dtype=jnp.int32)])
    m = jax.random.choice(k2, counts, (probes,))
    inverse_diagonal = 1 / diagonal(operator)

    def sweep(i, z):
        smoothed = z - (2 / 3) * inverse_diagonal * jax.vmap(operator.mv)(z)
        keep = (i < m).reshape((probes,) + (1,) * len(structure.shape))
        smoothed = jnp.where(keep, smoothed, z)
        return smoothed / jnp.sqrt(jnp.sum(smoothed**2, axis=tuple(range(1, z.ndim)), keepdims=True))

    return jax.lax.fori_loop(0, 2**sweeps, sweep, z)


def dcdm_loss(
    model: AbstractPreconditioner, operator: lx.AbstractLinearOperator, key: PRNGKeyArray, probes: int = 4, sweeps: int = 6
) -> Float[Array, ""]:
    r"""DCDM's loss ``‖r − α* A f(r)‖² / ‖r‖²`` with the optimal scale ``α*``, on `residual_like` ``r``."""
    m = model(operator)
    r = residual_like(operator, key, probes, sweeps)

    def one(r):
        ad = operator.mv(m.mv(r))
        alpha = jnp.sum(r * ad) / jnp.maximum(jnp.sum(ad * ad), jnp.finfo(ad.dtype).tiny)
        return jnp.sum((r - alpha * ad) ** 2) / jnp.sum(r * r)

    return jnp.mean(jax.vmap(one)(r))


def train_dcdm(
    systems: DarcySystems,
    steps: int,
    key: PRNGKeyArray,
    *,
    width: int = 16,
    dilations: tuple[int, ...] = (1, 2, 4, 8),
    probes: int = 4,
    learning_rate: float = 1e-3,
    **fit_options,
) -> DCDM:
    """A `DCDM` trained with `jaxpde.training.fit` on `dcdm_loss` over the systems `systems` draws."""
    init_key, train_key = jax.random.split(key)
    model = DCDM(width, dilations, systems.grid.ndim, key=init_key)
    objective = lambda m, a, k: dcdm_loss(m, a, k, probes=probes)  # noqa: E731
    return train_preconditioner(model, objective, systems, steps, train_key, learning_rate, **fit_options)
