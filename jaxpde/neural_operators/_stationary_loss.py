r"""A physics-informed loss for operators of stationary problems: the discrete PDE residual of the prediction.

For a stationary PDE of the catalogue (`jaxpde.pdes.AbstractStationaryPDE`: Darcy, Poisson,
Helmholtz), ``𝓛_h(a) u = f_h`` on a grid, with ``𝓛_h(a)`` the PDE's own discrete operator
(``pde.operator(grid, a)``, the matrix-free lineax operator its solver inverts) and ``a`` the
operator's input (Darcy's coefficient), the residual of a predicted solution ``û`` is

$$r = 𝓛_h(a)\,û − f_h, \qquad \rho(û; a) = \frac{\lVert r\rVert_2}{\lVert f_h\rVert_2},$$

zero exactly when ``û`` is the discrete solution the data were generated with. It is the
physics term of the physics-informed neural operator on Darcy flow (Li, Zheng, Kovachki et al.,
"Physics-Informed Neural Operator for Learning Partial Differential Equations", 2021, which
takes the residual by finite differences): here it is the same finite-volume operator as the
solver's, so data and physics agree to the solver's tolerance. `stationary_physics_loss` adds it
to the relative L2 data loss; with ``data_weight = 0`` it trains from coefficients alone, no
solutions needed.
"""

import inspect
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..grids import Grid
from ..pdes import AbstractStationaryPDE
from ._losses import relative_l2_loss

__all__ = ["stationary_residual", "stationary_physics_loss"]


def _check_pde(pde, grid, owner: str) -> None:
    if not isinstance(pde, AbstractStationaryPDE):
        raise TypeError(f"{owner}: `pde` must be a stationary jaxpde PDE (Darcy, Poisson, Helmholtz, …), got {type(pde).__name__}.")
    if not isinstance(grid, Grid):
        raise TypeError(f"{owner}: `grid` must be a jaxpde Grid, got {type(grid).__name__}.")


def stationary_residual(
    pde: AbstractStationaryPDE,
    grid: Grid,
    prediction: Float[ArrayLike, "*shape"],
    *operator_args,
) -> Float[Array, "*shape"]:
    """``𝓛_h(*operator_args) û − f_h`` on `grid` (see the module docstring).

    `prediction` is one field of shape ``grid.shape`` (or ``(1, *grid.shape)``, one channel
    first, as a neural operator returns it; the result then has the same shape).
    `operator_args` go to ``pde.operator(grid, …)``: Darcy's coefficient field.
    """
    owner = "stationary_residual"
    _check_pde(pde, grid, owner)
    prediction = jnp.asarray(prediction)
    channel = prediction.shape == (1, *grid.shape)
    if not channel and prediction.shape != tuple(grid.shape):
        raise ValueError(
            f"{owner}: `prediction` must have the grid's shape {tuple(grid.shape)} (or one channel first, "
            f"{(1, *grid.shape)}), got {prediction.shape}."
        )
    field = prediction[0] if channel else prediction
    operator = pde.operator(grid, *operator_args)
    dtype = operator.out_structure().dtype
    residual = (operator.mv(field.astype(dtype)) - pde.source_on_grid(grid, dtype)).astype(prediction.dtype)
    return residual[None] if channel else residual


def stationary_physics_loss(
    pde: AbstractStationaryPDE,
    grid: Grid,
    *,
    coefficient: Callable[[Array], Array] | None = None,
    decode: Callable[[Array], Array] | None = None,
    residual_weight: float = 1.0,
    data_weight: float = 1.0,
) -> Callable:
    r"""``loss_fn(model, (inputs, targets), key)`` for `jaxpde.training.fit`: data plus physics.

    ``data_weight ·`` the batch mean relative L2 error of ``decode(vmap(model)(inputs))``
    against `targets` ``+ residual_weight ·`` the batch mean relative residual ``ρ(û; a)`` of
    the module docstring. Both terms are logged (``"data"``, ``"residual"``; ``"residual"`` alone
    when ``data_weight = 0``).

    **Arguments:**

    - `pde`, `grid`: the stationary PDE and the grid of the fields.
    - `coefficient`: ``inputs ↦ a``, the operator's argument of each sample, batched (default:
      channel 0 of `inputs`; give e.g. ``lambda x: normaliser.decode(x)[:, 0]`` when the inputs
      are standardised). Ignored by PDEs whose operator takes none (Poisson, Helmholtz).
    - `decode`: applied to the batched prediction first (the solution's normaliser).
    - `residual_weight`, `data_weight`: ``≥ 0``. With ``data_weight = 0`` `targets` are unused.
    """
    owner = "stationary_physics_loss"
    _check_pde(pde, grid, owner)
    for name, value in (("residual_weight", residual_weight), ("data_weight", data_weight)):
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 and np.isfinite(value)):
            raise ValueError(f"{owner}: `{name}` must be a finite number >= 0, got {value!r}.")
    takes_coefficient = "coefficient" in inspect.signature(pde.operator).parameters  # Darcy's, not Poisson's
    coefficient = (lambda inputs: inputs[:, 0]) if coefficient is None else coefficient
    # ‖f_h‖ is the same for every sample and step: once, here.
    source_norm = float(jnp.linalg.norm(jnp.broadcast_to(pde.source_on_grid(grid), grid.shape).ravel()))

    def relative_residual(prediction, a):
        args = (a,) if takes_coefficient else ()
        return jnp.linalg.norm(stationary_residual(pde, grid, prediction, *args).ravel()) / source_norm

    def loss_fn(model, batch, key):
        inputs, targets = batch
        prediction = jax.vmap(model)(inputs)
        if decode is not None:
            prediction = decode(prediction)
        residual = jnp.mean(jax.vmap(relative_residual)(prediction, coefficient(inputs)))
        if data_weight == 0:  # physics alone: the targets may be placeholders (zeros: an infinite relative error)
            return residual_weight * residual, {"residual": residual}
        data = jnp.mean(jax.vmap(relative_l2_loss)(prediction, targets))
        return data_weight * data + residual_weight * residual, {"data": data, "residual": residual}

    return loss_fn
