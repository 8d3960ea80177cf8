r"""A neural network on the grid as a (nonlinear) preconditioner: ``M r = ‖r‖ · f(r/‖r‖, coefficient channels)``.

Any equinox Module ``f`` that maps one field with channels, ``(channels, *grid) → (1, *grid)``
(or ``→ grid``), becomes a preconditioner: a Fourier neural operator (Li et al., ICLR 2021), a
U-Net, DCDM's CNN (`jaxpde.preconditioners._dcdm`). Its input is the residual, normalised to unit
norm (the map is then homogeneous of degree one, ``M(c r) = c M(r)`` for ``c > 0``, which a
network by itself is not), followed by the *coefficient channels* when asked for: the log face
coefficients of a `jaxpde.numerics.DiffusionOperator` (`jaxpde.preconditioners._spectral.face_features`,
``2d`` channels). A network that takes a bare field (no channel axis, e.g.
`jaxpde.neural_operators.FourierMultiplier` on 1-d fields) is used with ``channels=False``.

A network is not a linear map, and not symmetric: `is_linear` and `is_positive_definite` are
``False``, so only the flexible Krylov methods (flexible CG with A-orthogonalisation against the
last few directions, Notay 2000; FGMRES, Saad 1993) accept it — exactly how DCDM (Kaneda et
al., ICML 2023) uses its CNN.

`shape`, when given, is the grid the network was trained for; an operator on another grid is
refused with an error naming both (a model with resolution-specific weights — an FNO whose modes
need ``n//2 + 1 ≥ modes``, a CNN trained at one scale — fails clearly rather than silently).
"""

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array

from ..numerics.preconditioning import AbstractPreconditioner
from ..numerics.sparse import register_structure_queries
from ..numerics.stencils import DiffusionOperator
from ._spectral import face_features

__all__ = ["NetworkOperator", "NeuralOperatorPreconditioner", "network_operator"]


class NetworkOperator(lx.AbstractLinearOperator):
    """``r ↦ ‖r‖ f(r/‖r‖, channels)`` as a lineax operator (nonlinear: for flexible Krylov methods
    only; no tags, and no matrix)."""

    network: eqx.Module
    features: Array | None
    structure: jax.ShapeDtypeStruct = eqx.field(static=True)
    channels: bool = eqx.field(static=True)
    tags: frozenset = eqx.field(static=True, default=frozenset())

    def mv(self, vector):
        norm = jnp.sqrt(jnp.sum(vector * vector))
        safe = jnp.where(norm > 0, norm, 1)
        x = vector / safe
        if self.channels:
            x = x[None] if self.features is None else jnp.concatenate([x[None], self.features.astype(x.dtype)])
        out = jnp.reshape(self.network(x), self.structure.shape).astype(vector.dtype)
        return jnp.where(norm > 0, norm, 0) * out

    def as_matrix(self):
        raise NotImplementedError("NetworkOperator: a network preconditioner is nonlinear and has no matrix.")

    def transpose(self):
        raise NotImplementedError("NetworkOperator: a network preconditioner is nonlinear and has no transpose.")

    def in_structure(self):
        return self.structure

    def out_structure(self):
        return self.structure

    def diagonal(self):
        raise NotImplementedError("NetworkOperator: a network preconditioner is nonlinear and has no diagonal.")

    def tridiagonal(self):
        raise NotImplementedError("NetworkOperator: a network preconditioner is nonlinear and has no tridiagonal.")

    def conj(self):
        return self


register_structure_queries(NetworkOperator)


def network_operator(
    network: eqx.Module,
    operator: lx.AbstractLinearOperator,
    *,
    coefficients: bool,
    channels: bool,
    shape: tuple[int, ...] | None,
    owner: str,
) -> NetworkOperator:
    """The `NetworkOperator` of `network` for `operator`, after checking the grid (see the module
    docstring); shared by `NeuralOperatorPreconditioner` and `DCDM`."""
    structure = operator.in_structure()
    if not isinstance(structure, jax.ShapeDtypeStruct):
        raise ValueError(f"{owner}: needs an operator on one grid-shaped array, got input structure {structure}.")
    if shape is not None and tuple(structure.shape) != tuple(shape):
        raise ValueError(
            f"{owner}: the network was trained on grids of shape {tuple(shape)}, got an operator on shape "
            f"{tuple(structure.shape)}."
        )
    if coefficients and not channels:
        raise ValueError(f"{owner}: coefficient channels need a network with a channel axis (channels=True).")
    features = None
    if coefficients:
        inner = operator.operator if isinstance(operator, lx.TaggedLinearOperator) else operator
        if not isinstance(inner, DiffusionOperator) or inner.grid.boundary != "dirichlet":
            raise TypeError(
                f"{owner}: coefficient channels come from a jaxpde.numerics.DiffusionOperator on a Dirichlet grid, "
                f"got {type(inner).__name__}; pass coefficients=False for other operators."
            )
        logs, log_mean = face_features(inner)
        features = logs - log_mean
    result = NetworkOperator(network, features, structure, channels)
    # Trace one application: a network whose input or output does not fit the grid fails here,
    # with the owner and both shapes, not deep inside the Krylov loop.
    try:
        got = jax.eval_shape(network, _network_input(result)).shape
    except Exception as error:  # noqa: BLE001 — re-raised with context
        raise ValueError(
            f"{owner}: the network cannot take the input of shape {_network_input(result).shape} that this operator "
            f"gives it ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})."
        ) from error
    size = math.prod(structure.shape)
    if math.prod(got) != size or (len(got) not in (len(structure.shape), len(structure.shape) + 1)):
        raise ValueError(f"{owner}: the network must return a field of shape {structure.shape} (or (1, ...)), got {got}.")
    return result


def _network_input(op: NetworkOperator) -> jax.ShapeDtypeStruct:
    shape = op.structure.shape
    if not op.channels:
        return jax.ShapeDtypeStruct(shape, op.structure.dtype)
    c = 1 if op.features is None else 1 + op.features.shape[0]
    return jax.ShapeDtypeStruct((c, *shape), op.structure.dtype)


class NeuralOperatorPreconditioner(AbstractPreconditioner):
    r"""Any grid network ``f`` as a nonlinear preconditioner ``M r = ‖r‖ f(r/‖r‖, channels)``
    (module docstring), for `FlexibleCG` / `FGMRES`.

    **Arguments:**

    - `network`: an equinox Module mapping one sample ``(1 + c, *grid)`` to ``(1, *grid)`` or
      ``grid`` (``c = 2d`` with `coefficients`, else ``0``); with ``channels=False``, ``grid → grid``.
    - `coefficients`: feed the log face coefficients of a `DiffusionOperator` (default ``True``).
    - `channels`: whether `network` takes a leading channel axis (default ``True``).
    - `shape`: the grid shape the network was trained for, or ``None`` (any grid).

    Training: `jaxpde.preconditioners._dcdm.dcdm_loss` (DCDM's scale-free ``‖r − α A M r‖``) with
    `jaxpde.preconditioners._learned.train_preconditioner`; see `train_dcdm` for a recipe.
    """

    network: eqx.Module
    coefficients: bool = eqx.field(static=True, default=True)
    channels: bool = eqx.field(static=True, default=True)
    shape: tuple[int, ...] | None = eqx.field(static=True, default=None)

    is_positive_definite: ClassVar[bool] = False
    is_linear: ClassVar[bool] = False

    def __check_init__(self):
        if not isinstance(self.network, eqx.Module):
            raise TypeError(f"NeuralOperatorPreconditioner: `network` must be an equinox.Module, got {type(self.network).__name__}.")
        if self.coefficients and not self.channels:
            raise ValueError("NeuralOperatorPreconditioner: `coefficients=True` needs `channels=True` (a channel axis to put them on).")

    def build(self, operator: lx.AbstractLinearOperator) -> lx.AbstractLinearOperator:
        return network_operator(
            self.network, operator, coefficients=self.coefficients, channels=self.channels, shape=self.shape,
            owner=type(self).__name__,
        )
