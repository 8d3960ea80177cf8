r"""Deep equilibrium layers: the output is the fixed point of a learned map, differentiated implicitly.

A deep equilibrium model (DEQ; Bai, Kolter & Koltun, "Deep Equilibrium Models", NeurIPS 2019)
replaces ``L`` weight-tied layers ``z_{k+1} = f_θ(z_k, x)`` by their limit: the output is

$$z^\star(x, θ) \quad\text{with}\quad z^\star = f_θ(z^\star, x),$$

found by a fixed-point solver (forward) — the number of iterations adapts to the input and to
the tolerance — and differentiated by the implicit function theorem (backward): with
``g(z) = f_θ(z, x) − z``, a cotangent ``\bar z`` of the output becomes

$$\bar θ = \Big(\frac{∂f}{∂θ}\Big)^{\!\top} w, \qquad
\Big(I - \frac{∂f}{∂z}\Big)^{\!\top} w = \bar z,$$

one linear solve with the transposed Jacobian at ``z^\star``, matrix-free (a Krylov method on
vector–Jacobian products of ``f``). Nothing of the forward iterations is stored, so the
gradient's memory does not grow with their number — the DEQ paper measures up to 88% less
training memory than the explicit network of the same quality.

- `AbstractEquilibriumCell`: the learned map ``f_θ(z, x)`` and its starting state ``z_0(x)``.
  The contractive cells of `jaxpde.implicit` guarantee a unique fixed point
  (``‖f(z, x) − f(z', x)‖ ≤ γ ‖z − z'‖`` with ``γ < 1``: Banach's theorem, as in Convergent
  Graph Solvers, Park et al., ICLR 2022).
- `DeepEquilibrium`: ``x ↦ z^\star(x)`` for one sample, with the solver, its tolerance and the
  adjoint (implicit, or unrolled through the solver's iterations for comparison) as options.
- `WeightTied`: the explicit network of the same cell and the same parameters, ``L`` applications
  of ``f_θ`` from ``z_0`` backpropagated layer by layer — the baseline a DEQ is measured against.
- `EquilibriumOperator`: lifting, an equilibrium (or weight-tied) core and a projection — a
  neural operator whose hidden layers are one equilibrium.
"""

import abc
from typing import Literal

import equinox as eqx
import jax
import lineax as lx
import optimistix as optx
from jaxtyping import Array, PyTree

from ._anderson import AndersonAcceleration
from ._fixed_point import fixed_point
from ._solution import ImplicitSolution

__all__ = ["AbstractEquilibriumCell", "DeepEquilibrium", "EquilibriumOperator", "WeightTied"]


class AbstractEquilibriumCell(eqx.Module):
    r"""The learned map of an equilibrium layer, for one sample.

    Subclasses implement:

    - ``__call__(z, x) -> z``: one application ``f_θ(z, x)``; the output has the structure,
      shape and dtype of ``z``.
    - ``init(x) -> z``: the starting state ``z_0(x)`` (its structure is the state's).
    - ``lipschitz()``: an upper bound of the Lipschitz constant of ``z ↦ f_θ(z, x)`` in the
      Euclidean norm, valid for every ``x`` — a number below one means a unique fixed point
      that fixed-point iteration reaches from any start — or ``None`` when the cell does not
      bound it.
    """

    @abc.abstractmethod
    def __call__(self, z: PyTree[Array], x: PyTree[Array]) -> PyTree[Array]:
        """``f_θ(z, x)``."""

    @abc.abstractmethod
    def init(self, x: PyTree[Array]) -> PyTree[Array]:
        """The starting state ``z_0(x)``."""

    @abc.abstractmethod
    def lipschitz(self) -> Array | None:
        """An upper bound of ``Lip(z ↦ f_θ(z, x))`` over all ``x``, or ``None``."""


def _apply(z, args):
    cell, x = args
    return cell(z, x)


def _check_cell(cell, owner: str):
    if not isinstance(cell, AbstractEquilibriumCell):
        raise TypeError(f"{owner}: `cell` must be an AbstractEquilibriumCell, got {type(cell).__name__}.")


class DeepEquilibrium(eqx.Module):
    r"""``x ↦ z^\star`` with ``z^\star = f_θ(z^\star, x)``: an equilibrium layer (see the module docstring).

    **Arguments:**

    - `cell`: the map ``f_θ`` (an `AbstractEquilibriumCell`); its parameters are the layer's.
    - `rtol`, `atol`: the forward solver's tolerance, converged when
      ``max_i |f(z)_i − z_i| / (atol + rtol |f(z)_i|) < 1``. For a ``γ``-contraction the
      returned state is then within ``1/(1 − γ)`` times that residual of the fixed point.
    - `max_steps`: the iteration cap. A solve that reaches it without converging raises
      (inside `jax.jit` too) rather than returning an unconverged state and a wrong gradient.
    - `solver`: ``"anderson"`` (`AndersonAcceleration` with `memory` past iterates, the DEQ
      paper's choice) or ``"picard"`` (plain iteration ``z ← f(z, x)``: enough for a strong
      contraction, and the forward pass `WeightTied` truncates).
    - `memory`: Anderson's history length ``m``.
    - `adjoint`: ``"implicit"`` — the implicit-function-theorem gradient above, the transposed
      system solved by checked, matrix-free GMRES; memory independent of the number of
      iterations — or ``"unrolled"`` — backpropagation through every solver iteration, the
      reference it must agree with, whose memory grows with the iteration count.
    - `adjoint_rtol`: the adjoint GMRES's tolerance relative to the cotangent (default `rtol`).
    - `adjoint_restart`: the adjoint GMRES's restart length, the Krylov vectors it keeps — the
      implicit gradient's one memory cost beyond a single application of the cell. A
      ``γ``-contraction needs few: the residual falls by at least ``γ`` per iteration.

    ```python
    deq = DeepEquilibrium(ContractiveLinearCell(8, 3, gamma=0.8, key=key))
    z = jax.vmap(deq)(x)                                      # (batch, 3) -> (batch, 8)
    grads = jax.grad(lambda d: jnp.sum(jax.vmap(d)(x) ** 2))(deq)   # implicit, constant memory
    ```
    """

    cell: AbstractEquilibriumCell
    rtol: float = eqx.field(static=True, default=1e-5)
    atol: float = eqx.field(static=True, default=1e-5)
    max_steps: int = eqx.field(static=True, default=100)
    solver: Literal["anderson", "picard"] = eqx.field(static=True, default="anderson")
    memory: int = eqx.field(static=True, default=5)
    adjoint: Literal["implicit", "unrolled"] = eqx.field(static=True, default="implicit")
    adjoint_rtol: float | None = eqx.field(static=True, default=None)
    adjoint_restart: int = eqx.field(static=True, default=10)

    def __check_init__(self):
        _check_cell(self.cell, "DeepEquilibrium")
        for name in ("rtol", "atol", "adjoint_rtol"):
            value = getattr(self, name)
            if value is None and name == "adjoint_rtol":
                continue
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"DeepEquilibrium: `{name}` must be a positive number, got {value!r}.")
        for name in ("max_steps", "memory", "adjoint_restart"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, int) and value >= 1):
                raise ValueError(f"DeepEquilibrium: `{name}` must be a positive integer, got {value!r}.")
        if self.solver not in ("anderson", "picard"):
            raise ValueError(f"DeepEquilibrium: `solver` must be 'anderson' or 'picard', got {self.solver!r}.")
        if self.adjoint not in ("implicit", "unrolled"):
            raise ValueError(f"DeepEquilibrium: `adjoint` must be 'implicit' or 'unrolled', got {self.adjoint!r}.")

    def solve(self, x: PyTree[Array], z0: PyTree[Array] | None = None) -> ImplicitSolution:
        """The `ImplicitSolution` (``.value`` the fixed point, ``.num_steps`` the iterations), from
        ``z0`` (default: the cell's ``init(x)``)."""
        z0 = self.cell.init(x) if z0 is None else z0
        if self.solver == "picard":
            solver = optx.FixedPointIteration(rtol=self.rtol, atol=self.atol)
        else:
            solver = AndersonAcceleration(rtol=self.rtol, atol=self.atol, memory=self.memory)
        adjoint = self.adjoint
        if adjoint == "implicit":
            # fixed_point checks this solve and scales its right-hand side (the tolerance is
            # relative to the cotangent); a short restart bounds the Krylov basis kept.
            tol = self.adjoint_rtol or self.rtol
            adjoint = optx.ImplicitAdjoint(linear_solver=lx.GMRES(rtol=tol, atol=tol, restart=self.adjoint_restart,
                                                                  max_steps=10 * self.max_steps))
        return fixed_point(_apply, z0, (self.cell, x), solver=solver, max_steps=self.max_steps, adjoint=adjoint)

    def __call__(self, x: PyTree[Array]) -> PyTree[Array]:
        return self.solve(x).value


class WeightTied(eqx.Module):
    r"""``x ↦ f_θ^{(L)}(z_0(x), x)``: `depth` applications of one cell, backpropagated layer by layer.

    The explicit counterpart of `DeepEquilibrium` with the same cell (so exactly the same
    parameters): a fixed number of layers instead of the limit, its gradient stores every
    layer's activations (memory ∝ `depth`).
    """

    cell: AbstractEquilibriumCell
    depth: int = eqx.field(static=True)

    def __check_init__(self):
        _check_cell(self.cell, "WeightTied")
        if isinstance(self.depth, bool) or not (isinstance(self.depth, int) and self.depth >= 1):
            raise ValueError(f"WeightTied: `depth` must be a positive integer, got {self.depth!r}.")

    def __call__(self, x: PyTree[Array]) -> PyTree[Array]:
        def layer(z, _):
            return self.cell(z, x), None

        z, _ = jax.lax.scan(layer, self.cell.init(x), None, length=self.depth)
        return z


class EquilibriumOperator(eqx.Module):
    r"""``u = Q(z^\star)``, ``z^\star = f_θ(z^\star, P(a))``: lift, equilibrium, project, for one sample.

    - `lift`: ``P``, the input ``a`` to the cell's injected features ``x`` (for a Fourier cell:
      a pointwise map of the coefficient and the coordinates to `width` channels).
    - `core`: a `DeepEquilibrium` or a `WeightTied` network on those features.
    - `project`: ``Q``, the state to the output.

    The FNO's architecture (lift, Fourier layers, project; Li et al., ICLR 2021) with its
    hidden layers replaced by one equilibrium — a DEQ neural operator (Marwah, Pokle, Kolter &
    Lipton, "Deep Equilibrium Based Neural Operators for Steady-State PDEs", NeurIPS 2023).
    """

    lift: eqx.Module
    core: DeepEquilibrium | WeightTied
    project: eqx.Module

    def __call__(self, a: PyTree[Array]) -> PyTree[Array]:
        return self.project(self.core(self.lift(a)))
