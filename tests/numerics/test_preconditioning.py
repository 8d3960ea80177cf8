"""The preconditioner extension point: diagonals in the operator's structure, exact probing,
Jacobi's tags, and the errors for bad input (non-square operator, wrong structure, non-SPD M in CG)."""

from typing import ClassVar

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from jaxpde import Grid
from jaxpde.numerics.krylov import ConjugateGradient
from jaxpde.numerics.preconditioning import AbstractPreconditioner, Jacobi, diagonal
from jaxpde.numerics.stencils import DiffusionOperator


def _nonlinear_stencil(shape, reach, periodic):
    """A matrix-free operator coupling points up to `reach` apart: the Jacobian of a nonlinear
    stencil map, u ↦ Σ_shifts w_s(x) u(x + s) + u³, as lineax.JacobianLinearOperator; shifts wrap
    around (periodic) or bring in zeros."""
    key = jax.random.key(len(shape) * 10 + reach)
    shifts = [s for s in np.ndindex(*([2 * reach + 1] * len(shape)))]
    weights = jax.random.uniform(key, (len(shifts), *shape))

    def fn(u, args):
        out = u**3
        for w, shift in zip(weights, shifts):
            shifted = u
            for axis, offset in enumerate(shift):
                shifted = jnp.roll(shifted, offset - reach, axis=axis)
                if not periodic:  # zero what wrapped around
                    index = jnp.arange(shape[axis]) - (offset - reach)
                    inside = (index >= 0) & (index < shape[axis])
                    shifted = shifted * inside.reshape([-1 if a == axis else 1 for a in range(len(shape))])
            out = out + w * shifted
        return out

    u0 = jax.random.normal(jax.random.key(1), shape)
    return lx.JacobianLinearOperator(fn, u0)


# (7, 8) periodic: 7 = 2·3 + 1, so the period-3 colouring would give points 0 and 6 — coupled
# across the wrap — one colour; the period becomes 4 on that axis.
# (11,) periodic, reach 2: 11 = 2·5 + 1, the same trap in 1-D (the default-suite regression case).
_SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    "shape, reach, periodic",
    [
        ((11,), 2, False),
        ((11,), 2, True),
        pytest.param((7, 8), 1, True, marks=_SLOW),
        pytest.param((7, 8), 1, False, marks=_SLOW),
        pytest.param((5, 5, 6), 1, True, marks=_SLOW),
    ],
)
def test_probed_diagonal_is_exact(shape, reach, periodic):
    operator = _nonlinear_stencil(shape, reach, periodic)
    dense = jnp.diagonal(operator.as_matrix()).reshape(shape)
    probed = diagonal(operator, stencil_reach=reach)
    assert probed.shape == shape
    np.testing.assert_allclose(probed, dense, rtol=1e-5, atol=1e-6)


@_SLOW
def test_diagonal_keeps_the_operator_structure():
    grid = Grid((6, 5), boundary="dirichlet")
    operator = DiffusionOperator(grid, jnp.linspace(1.0, 2.0, 30).reshape(grid.shape))
    d = diagonal(operator)
    assert d.shape == grid.shape  # DiffusionOperator.diagonal() is flat; diagonal() is not
    np.testing.assert_allclose(d.ravel(), jnp.diagonal(operator.as_matrix()), rtol=1e-6)
    structure = {"a": jax.ShapeDtypeStruct((2,), jnp.float32), "b": jax.ShapeDtypeStruct((3,), jnp.float32)}
    matrix = jnp.diag(jnp.arange(1.0, 6.0))
    pytree = lx.FunctionLinearOperator(
        lambda v: {"a": (matrix @ jnp.concatenate([v["a"], v["b"]]))[:2], "b": (matrix @ jnp.concatenate([v["a"], v["b"]]))[2:]},
        structure,
    )
    d = diagonal(pytree)
    np.testing.assert_allclose(d["a"], [1.0, 2.0])
    np.testing.assert_allclose(d["b"], [3.0, 4.0, 5.0])


@_SLOW
def test_jacobi_is_tagged_spd_and_inverts_the_diagonal():
    grid = Grid((6, 6), boundary="dirichlet")
    operator = DiffusionOperator(grid, jnp.linspace(1.0, 4.0, 36).reshape(grid.shape))
    m = Jacobi()(operator)
    assert lx.is_positive_semidefinite(m) and lx.is_symmetric(m)
    dense = m.as_matrix()
    np.testing.assert_allclose(dense, jnp.diag(1 / jnp.diagonal(operator.as_matrix())), rtol=1e-6)
    assert float(jnp.min(jnp.linalg.eigvalsh(dense))) > 0
    with pytest.raises(ValueError, match=r"Jacobi: `stencil_reach` must be a non-negative integer or None, got -1"):
        Jacobi(stencil_reach=-1)


class _WrongSize(AbstractPreconditioner):
    is_positive_definite: ClassVar[bool] = True
    is_linear: ClassVar[bool] = True

    def build(self, operator):
        return lx.IdentityLinearOperator(jax.ShapeDtypeStruct((3,), jnp.float32))


class _Indefinite(AbstractPreconditioner):
    is_positive_definite: ClassVar[bool] = False
    is_linear: ClassVar[bool] = True

    def build(self, operator):
        return lx.IdentityLinearOperator(operator.in_structure())


def test_bad_input_errors_clearly():
    psd = lx.MatrixLinearOperator(2.0 * jnp.eye(4), lx.positive_semidefinite_tag)
    b = jnp.ones(4)
    with pytest.raises(ValueError, match=r"Jacobi: a preconditioner needs a square operator"):
        Jacobi()(lx.MatrixLinearOperator(jnp.ones((3, 4))))
    with pytest.raises(ValueError, match=r"_WrongSize: the preconditioner's input structure must be the operator's input structure"):
        lx.linear_solve(psd, b, ConjugateGradient(rtol=1e-6, preconditioner=_WrongSize()))
    wrong = lx.TaggedLinearOperator(lx.DiagonalLinearOperator(jnp.ones(3)), lx.positive_semidefinite_tag)
    with pytest.raises(ValueError, match=r"ConjugateGradient: the preconditioner's input structure must be the operator's"):
        lx.linear_solve(psd, b, ConjugateGradient(rtol=1e-6, preconditioner=wrong))
    with pytest.raises(ValueError, match=r"ConjugateGradient: the preconditioner's input structure must be the operator's"):
        lx.linear_solve(psd, b, ConjugateGradient(rtol=1e-6), options={"preconditioner": wrong})
    with pytest.raises(ValueError, match=r"ConjugateGradient: the preconditioner _Indefinite is not symmetric positive definite.*FlexibleCG"):
        ConjugateGradient(rtol=1e-6, preconditioner=_Indefinite())
    with pytest.raises(ValueError, match=r"must be tagged positive semidefinite"):
        ConjugateGradient(rtol=1e-6, preconditioner=lx.DiagonalLinearOperator(jnp.ones(4)))


class _Scaled(AbstractPreconditioner):
    """M = diag(exp(θ)) / diag(A): a learnable preconditioner with one parameter array."""

    theta: jax.Array
    is_positive_definite: ClassVar[bool] = True
    is_linear: ClassVar[bool] = True

    def build(self, operator):
        return lx.DiagonalLinearOperator(jnp.exp(self.theta) / diagonal(operator))


@_SLOW
def test_stop_gradient_preconditioner_is_a_choice(x64):
    # A truncated solve (3 steps) depends on M; the default holds M under stop_gradient, False
    # lets forward-mode derivatives reach its parameter (checked against central differences).
    matrix = jnp.diag(jnp.arange(1.0, 9.0)) + 0.3 * jnp.ones((8, 8))
    operator = lx.MatrixLinearOperator(matrix, lx.positive_semidefinite_tag)
    b = jnp.arange(1.0, 9.0)
    direction = jnp.cos(jnp.arange(8.0))

    def truncated(theta, stop):
        solver = ConjugateGradient(rtol=0.0, max_steps=3, preconditioner=_Scaled(theta), stop_gradient_preconditioner=stop)
        return jnp.sum(solver.compute(solver.init(operator, {}), b, {})[0])

    theta = 0.2 * jnp.sin(jnp.arange(8.0))
    eps = 1e-6
    fd = (truncated(theta + eps * direction, False) - truncated(theta - eps * direction, False)) / (2 * eps)
    _, tangent = jax.jvp(lambda t: truncated(t, False), (theta,), (direction,))
    np.testing.assert_allclose(tangent, fd, rtol=1e-6)
    assert abs(float(fd)) > 1e-3
    _, stopped = jax.jvp(lambda t: truncated(t, True), (theta,), (direction,))
    assert float(stopped) == 0.0
    # Through lineax.linear_solve (whose solution does not depend on M), the default lets a
    # traced, learned preconditioner pass: its gradient is zero, the solve's is that of A⁻¹b.
    loss = lambda t: jnp.sum(lx.linear_solve(operator, b, ConjugateGradient(rtol=1e-12, preconditioner=_Scaled(t))).value)  # noqa: E731
    np.testing.assert_allclose(jax.grad(loss)(theta), 0.0)
    np.testing.assert_allclose(loss(theta), jnp.sum(jnp.linalg.solve(matrix, b)), rtol=1e-10)
