"""`FrozenPreconditioner`: M built once from a reference operator gives, inside a diffrax implicit
solve, the solution of the rebuilt-every-iteration path (M changes the iterations, not the
solution), equals the rebuilt M on its reference, and rejects what CG cannot take."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
import pytest

from jaxpde.grids import Grid
from jaxpde.numerics.multigrid import GeometricMultigrid
from jaxpde.numerics.preconditioning import Jacobi
from jaxpde.numerics.stencils import DiffusionOperator
from jaxpde.preconditioners._frozen import FrozenPreconditioner
from jaxpde.preconditioners._solver import Preconditioned

N, DT = 15, 2e-3


def _implicit_solve(preconditioner):
    """u_t = Δu - u³ + 20 on (0, 1)², u = 0 on the wall; Kvaerno5, Newton + PCG (float64)."""
    laplacian = DiffusionOperator(Grid((N, N), boundary="dirichlet"), 1.0, dtype=jnp.float64)
    rhs = lambda t, u, args: -laplacian.mv(u) - u**3 + 20.0  # noqa: E731
    linear = Preconditioned(preconditioner, rtol=1e-10, structure="spd")
    solver = diffrax.Kvaerno5(root_finder=optx.Newton(rtol=1e-8, atol=1e-10, linear_solver=linear))
    return diffrax.diffeqsolve(
        diffrax.ODETerm(rhs), solver, t0=0.0, t1=0.02, dt0=DT, y0=jnp.zeros((N, N), jnp.float64),
        stepsize_controller=diffrax.PIDController(rtol=1e-7, atol=1e-9), max_steps=64,
    )


@pytest.mark.slow  # two Kvaerno5 + multigrid compilations: about 20 s of CPU time
def test_frozen_multigrid_gives_the_rebuilt_paths_solution(x64):
    grid = Grid((N, N), boundary="dirichlet")
    gamma = float(diffrax.Kvaerno5.tableau.a_diagonal[1])
    reference = DiffusionOperator(grid, gamma * DT, shift=1.0, dtype=jnp.float64)  # I + γ h (-Δ_h)
    frozen = eqx.filter_jit(FrozenPreconditioner)(GeometricMultigrid(), reference)
    rebuilt = eqx.filter_jit(_implicit_solve)(GeometricMultigrid(boundary="dirichlet"))
    held = eqx.filter_jit(_implicit_solve)(frozen)
    assert rebuilt.result == held.result == diffrax.RESULTS.successful
    scale = float(jnp.max(jnp.abs(rebuilt.ys[-1])))
    assert scale > 0.05  # the source has moved the state well away from zero
    # Newton stops at rtol 1e-8 in both; the linear solves (rtol 1e-10) differ only in M.
    assert float(jnp.max(jnp.abs(held.ys[-1] - rebuilt.ys[-1]))) < 1e-8 * scale
    # On its reference operator the frozen M is the rebuilt one.
    v = jax.random.normal(jax.random.key(0), (N, N), jnp.float64)
    expected = GeometricMultigrid()(reference).mv(v)
    assert float(jnp.max(jnp.abs(frozen(reference).mv(v) - expected))) < 1e-12 * float(jnp.max(jnp.abs(expected)))


def test_frozen_multigrid_in_newton_gives_the_rebuilt_solution_with_one_build(x64):
    """-Δu + u³ = 20 by optimistix Newton + PCG: the frozen M (from -Δ_h) gives the rebuilt path's
    solution, and its build runs once, not once per Newton iteration."""
    n = 7  # two multigrid levels: the compilations stay short
    grid = Grid((n, n), boundary="dirichlet")
    laplacian = DiffusionOperator(grid, 1.0, dtype=jnp.float64)
    builds = []

    class Counting(GeometricMultigrid):
        def build(self, operator):
            builds.append(1)  # counts traces: each Newton iteration's linear_solve traces init
            return super().build(operator)

    frozen = eqx.filter_jit(FrozenPreconditioner)(Counting(), laplacian)  # one compiled build
    assert len(builds) == 1

    @eqx.filter_jit
    def newton(preconditioner):
        linear = Preconditioned(preconditioner, rtol=1e-12, structure="spd")
        solver = optx.Newton(rtol=1e-10, atol=1e-12, linear_solver=linear)
        return optx.root_find(lambda u, _: laplacian.mv(u) + u**3 - 20.0, solver, jnp.zeros((n, n)), max_steps=20)

    held = newton(frozen)
    assert len(builds) == 1  # not rebuilt inside the solve
    rebuilt = newton(GeometricMultigrid(boundary="dirichlet"))
    assert held.result == rebuilt.result == optx.RESULTS.successful
    residual = laplacian.mv(held.value) + held.value**3 - 20.0
    assert float(jnp.max(jnp.abs(residual))) < 1e-8 * 20.0
    np.testing.assert_allclose(held.value, rebuilt.value, rtol=0, atol=1e-10 * float(jnp.max(rebuilt.value)))


class _NotDefinite(GeometricMultigrid):
    is_positive_definite = False


def test_bad_arguments_are_rejected():
    reference = DiffusionOperator(Grid((7, 7), boundary="dirichlet"), 1.0)
    with pytest.raises(TypeError, match="`preconditioner` must be an AbstractPreconditioner"):
        FrozenPreconditioner(reference, reference)
    with pytest.raises(ValueError, match="must be linear and positive definite"):
        FrozenPreconditioner(_NotDefinite(), reference)
    with pytest.raises(TypeError, match="`reference` must be a lineax.AbstractLinearOperator"):
        FrozenPreconditioner(Jacobi(), jnp.eye(49))
    frozen = FrozenPreconditioner(Jacobi(), reference)
    other = DiffusionOperator(Grid((8, 8), boundary="dirichlet"), 1.0)
    with pytest.raises(ValueError, match="input structure"):
        lx.linear_solve(other, jnp.ones((8, 8)), Preconditioned(frozen))
