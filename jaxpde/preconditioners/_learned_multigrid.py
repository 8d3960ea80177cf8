r"""Learned multigrid: a network predicts the prolongation of the V-cycle from the local stencil.

Greenfeld, Galun, Kimmel, Yavneh & Basri, *Learning to optimize multigrid PDE solvers*, ICML 2019,
and Luz, Galun, Maron, Basri & Yavneh, *Learning algebraic multigrid using graph neural
networks*, ICML 2020: keep the multigrid cycle (smoother, Galerkin coarse operators
``A_c = Pᵀ A P``, coarsest solve) and learn ``P``, the part that decides how well the coarse
grid corrects the smooth error of a heterogeneous operator. Here ``P`` has the geometry of
`jaxpde.numerics.multigrid.Transfer` (each coarse point interpolates into the fine
points one step around it), and its weights are

.. math::

    W_{o}(c) = W^{\mathrm{lin}}_{o}\, \exp\big(\mathrm{MLP}_\theta(\phi(c))_o\big),
    \qquad \text{rows rescaled so that } P\mathbf{1} = P^{\mathrm{lin}}\mathbf{1},

with ``φ(c)`` the stencils of ``A_l`` at the ``3^d`` fine points around coarse point ``c``,
each divided by its diagonal (so the input is scale-free and the same network serves every
level and every grid size). The row rescaling keeps linear interpolation's row sums — the
constants, the near-null space of a diffusion operator, are interpolated exactly as by `GeometricMultigrid` —
and keeps the coarse points injected. The last layer starts at zero, so an untrained
`LearnedMultigrid` *is* `GeometricMultigrid`. The cycle stays a symmetric positive definite map
(the smoothers and ``Pᵀ`` restriction are those of the V-cycle), so CG accepts it.

**Training** (`two_grid_loss`, with `jaxpde.training.fit`): the mean over random errors ``e`` of
``log(‖(I − M A)^k e‖ / ‖e‖) / k`` — the log of the average contraction of ``k`` cycles, a
stochastic estimate of the cycle's convergence rate (Greenfeld et al. use the Frobenius norm
of the two-grid error operator; this is its matrix-free stand-in). Gradients flow through the
Galerkin products, the coarsest Cholesky solve and the smoothers.
"""

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..numerics.multigrid import AbstractMultigrid, Transfer

__all__ = ["LearnedMultigrid", "two_grid_loss"]


class LearnedMultigrid(AbstractMultigrid):
    r"""A V-cycle whose prolongation weights come from an MLP on the local stencils (module docstring).

    **Arguments:**

    - `ndim`: the grid's dimension (1–3); fixes the network's input ``9^d`` → output ``3^d``.
    - `key`: initialisation key.
    - `width`, `depth`: the MLP's hidden width and number of hidden layers (default 32, 2).
    - the cycle options of `GeometricMultigrid` (`smoother`, `coarse_smoother`,
      `smoothing_steps`, `jacobi_weight`, `max_coarse`, `max_levels`, `boundary`, `singular`).
    """

    network: eqx.nn.MLP
    smoother: str = eqx.field(static=True)
    coarse_smoother: str | None = eqx.field(static=True)
    smoothing_steps: int = eqx.field(static=True)
    jacobi_weight: float = eqx.field(static=True)
    max_coarse: int = eqx.field(static=True)
    max_levels: int | None = eqx.field(static=True)
    boundary: str | None = eqx.field(static=True)
    singular: bool | None = eqx.field(static=True)

    needs_fine_stencil: ClassVar[bool] = True

    def __init__(
        self,
        ndim: int,
        key: PRNGKeyArray,
        width: int = 32,
        depth: int = 2,
        *,
        smoother: str = "symmetric_gauss_seidel",
        coarse_smoother: str | None = None,
        smoothing_steps: int = 1,
        jacobi_weight: float = 0.8,
        max_coarse: int = 64,
        max_levels: int | None = None,
        boundary: str | None = None,
        singular: bool | None = None,
    ):
        if ndim not in (1, 2, 3):
            raise ValueError(f"LearnedMultigrid: `ndim` must be 1, 2 or 3, got {ndim!r}.")
        stencil_size = 3**ndim
        network = eqx.nn.MLP(stencil_size * stencil_size, stencil_size, width, depth, activation=jax.nn.gelu, key=key)
        last = network.layers[-1]
        # Zero output layer: the untrained cycle is exactly GeometricMultigrid's.
        last = eqx.tree_at(lambda layer: (layer.weight, layer.bias), last, (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)))
        self.network = eqx.tree_at(lambda n: n.layers[-1], network, last)
        self.smoother = smoother
        self.coarse_smoother = coarse_smoother
        self.smoothing_steps = smoothing_steps
        self.jacobi_weight = jacobi_weight
        self.max_coarse = max_coarse
        self.max_levels = max_levels
        self.boundary = boundary
        self.singular = singular

    def __check_init__(self):
        self._check_options()

    def prolongation(self, level: int, stencil: Array | None, transfer: Transfer) -> Array:
        dtype = stencil.dtype
        k = len(transfer.offsets)
        if self.network.in_size != k * k:
            raise ValueError(
                f"LearnedMultigrid: the network was built for {round(math.log(self.network.in_size, 9))}-D grids, "
                f"got a {transfer.ndim}-D operator."
            )
        centre = stencil[k // 2]
        normalised = stencil / centre
        # φ(c): the normalised stencils of the 3^d fine points around each coarse point.
        features = jnp.concatenate([transfer.gather_fine(component) for component in normalised])  # (k·k, *coarse)
        flat = features.reshape(k * k, -1).T
        log_multiplier = jax.vmap(self.network)(flat).T.reshape(k, *transfer.coarse)
        linear = jnp.asarray(transfer.bilinear(np.float64), dtype)
        weights = linear * jnp.exp(log_multiplier.astype(dtype))
        ones = jnp.ones(transfer.coarse, dtype)
        target, current = transfer.prolong(linear, ones), transfer.prolong(weights, ones)
        ratio = jnp.where(current > 0, target / jnp.where(current > 0, current, 1), 0)
        return weights * transfer.gather_fine(ratio)


def two_grid_loss(
    preconditioner: AbstractMultigrid,
    operator: lx.AbstractLinearOperator,
    key: PRNGKeyArray,
    cycles: int = 3,
    samples: int = 4,
) -> Float[Array, ""]:
    r"""``mean_e log(‖(I − M A)^k e‖ / ‖e‖) / k`` over `samples` random normal errors ``e``
    (``k`` = `cycles`): the log of the average contraction per cycle of the preconditioner's
    V-cycle ``M`` on `operator`, differentiable in the preconditioner's parameters."""
    structure = operator.in_structure()
    hierarchy = preconditioner.hierarchy(operator)
    errors = jax.random.normal(key, (samples, *structure.shape), structure.dtype)

    def contraction(e):
        x = e
        for _ in range(cycles):
            x = x - hierarchy.vcycle(operator.mv(x))
        return jnp.log(jnp.linalg.norm(x) / jnp.linalg.norm(e)) / cycles

    return jnp.mean(jax.vmap(contraction)(errors))
