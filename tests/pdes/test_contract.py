"""The PDE contract: abstract fields enforced, abstract/final, one residual for the whole catalogue."""

import inspect
import math
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpde.pdes as pdes
from jaxpde import Grid
from jaxpde.pdes import (
    AbstractPDE,
    AbstractSemiLinearPDE,
    AbstractStationaryPDE,
    Advection,
    AllenCahn,
    Burgers,
    Darcy,
    DirichletHeat,
    GrayScott,
    Heat,
    Helmholtz,
    KdV,
    KuramotoSivashinsky,
    NavierStokes2D,
    Poisson,
)

# -- abstract fields and methods -----------------------------------------------------------------


def test_a_subclass_missing_an_abstract_field_cannot_be_instantiated():
    class NoGrid(AbstractSemiLinearPDE):
        def linear_symbol(self):
            return jnp.zeros(3)

        def nonlinear(self, t, u_hat, args=None):
            return u_hat

    class NoSource(AbstractStationaryPDE):
        solution: None = None

        def operator(self, grid):
            raise AssertionError

        def solve(self, grid):
            raise AssertionError

    class WithFields(NoGrid):
        grid: Grid = Grid(8)

    for cls, field in ((NoGrid, "grid"), (NoSource, "source")):
        with pytest.raises(TypeError, match=f"abstract attributes {{'{field}'}}"):
            cls()
    assert WithFields().state_shape == (8,)


def test_optional_methods_say_not_provided():
    class Decay(AbstractPDE):
        grid: Grid = Grid(4)

        @property
        def state_shape(self):
            return self.grid.shape

        def rhs(self, t, u, args=None):
            return -u

    with pytest.raises(NotImplementedError, match="Decay does not provide `residual`"):
        Decay().residual(lambda x, t: x[0], jnp.zeros(1), 0.0)
    with pytest.raises(NotImplementedError, match="Decay does not provide `exact_solution`"):
        Decay().exact_solution(jnp.zeros(1), 0.0)


_OPTIONAL = {"residual", "exact_solution", "pointwise_operator"}


def _catalogue_classes():
    return [getattr(pdes, name) for name in pdes.__all__ if inspect.isclass(getattr(pdes, name))]


def test_no_concrete_base_method_is_overridden():
    # diffrax's abstract/final rule: a concrete method of a base is final; only the optional
    # "not provided" defaults are replaced.
    offences = []
    for cls in _catalogue_classes():
        for base in cls.__mro__[1:]:
            if not issubclass(base, eqx.Module) or base is eqx.Module:
                continue
            for attr, value in vars(base).items():
                if attr.startswith("__") or attr in _OPTIONAL or not (callable(value) or isinstance(value, property)):
                    continue
                fn = value.fget if isinstance(value, property) else value
                if getattr(fn, "__isabstractmethod__", False):
                    continue
                owner = next(c for c in cls.__mro__ if attr in vars(c))
                if owner is not base and issubclass(owner, base):
                    offences.append(f"{cls.__name__}.{attr} (from {owner.__name__}, over {base.__name__})")
    assert not offences


def test_heat_on_a_dirichlet_grid_points_to_dirichlet_heat():
    with pytest.raises(ValueError, match=re.escape("Heat: needs a periodic grid, got boundary='dirichlet'; for u = 0 on the boundary use DirichletHeat")):
        Heat(Grid(8, boundary="dirichlet"))
    with pytest.raises(ValueError, match="on a periodic grid use Heat"):
        DirichletHeat(Grid(8))
    assert not isinstance(DirichletHeat(Grid(8, boundary="dirichlet")), AbstractSemiLinearPDE)


# -- one residual contract for the whole catalogue -------------------------------------------------


def _ks_front(c):
    # Kudryashov's travelling front of u_t + u u_x + u_xx + u_xxxx = 0 (Phys. Lett. A 1988).
    k, amplitude = 0.5 * math.sqrt(11 / 19), 15 / 19 * math.sqrt(11 / 19)

    def u(x, t):
        z = jnp.tanh(k * (x[0] - c * t))
        return c + amplitude * (-9 * z + 11 * z**3)

    return u


def _ks_similarity(alpha, d):
    # u_t + |∇u|²/2 + Δu + Δ²u = 0 by u = α(t)|x|² + β(t): α' = -2α², β' = -2dα.
    def u(x, t):
        s = 1 + 2 * alpha * t
        return alpha * jnp.sum(x**2) / s - d * jnp.log(s)

    return u


def _dirichlet_u(x):
    return jnp.prod(jnp.sin(jnp.pi * x)) * (1 + 0.5 * x[0])


def _a(x):
    return 1.0 + 0.5 * jnp.prod(jnp.cos(jnp.pi * x))


def _darcy_with_args():
    # Coefficient passed as `args` rather than as a field (the PINN inverse-problem form).
    manufactured = Darcy.from_solution(_dirichlet_u, coefficient=_a)
    return Darcy(source=manufactured.source), _dirichlet_u, _a


def _cases():
    """(pde, u_fn, args) with u_fn an exact or manufactured solution, for every catalogue PDE."""
    ns = NavierStokes2D(Grid((8, 8), lengths=(1.0, 2.0)), 1e-2, drag=0.1, forcing="fno")
    cases = {
        "heat": (Heat(Grid((8, 8), lengths=(1.0, 2.0)), 0.3), None, None),
        "dirichlet_heat": (DirichletHeat(Grid(8, boundary="dirichlet", lengths=2.0, origin=-1.0), 0.2), None, None),
        "advection": (Advection(Grid((8, 8)), (0.5, -1.5)), None, None),
        "burgers": (Burgers(Grid(16, lengths=2 * np.pi), 0.1), None, None),
        "kdv": (KdV(Grid(64, lengths=30.0)), None, None),
        "ks_convective": (KuramotoSivashinsky(Grid(64, lengths=60.0)), _ks_front(0.7), None),
        "ks_gradient": (KuramotoSivashinsky(Grid((8, 8))), _ks_similarity(0.4, 2), None),
        "ks_separable": (KuramotoSivashinsky(Grid((8, 8)), hyperdiffusion="separable"), _ks_similarity(0.3, 2), None),
        "allen_cahn": (AllenCahn(Grid(8)), None, None),
        "gray_scott": (GrayScott(Grid((8, 8)), (2e-2, 1e-2)), None, None),
        "navier_stokes": (ns, ns.exact_stream_function, None),
        "poisson": (Poisson.from_solution(_dirichlet_u), _dirichlet_u, None),
        "darcy_field": (Darcy.from_solution(_dirichlet_u, coefficient=_a), _dirichlet_u, None),
        "darcy_args": _darcy_with_args(),
        "helmholtz": (Helmholtz.from_solution(_dirichlet_u, wavenumber=4.0), _dirichlet_u, None),
    }
    return cases


def test_the_cases_cover_the_catalogue():
    covered = {type(pde) for pde, _, _ in _cases().values()}
    concrete = {cls for cls in _catalogue_classes() if not inspect.isabstract(cls) and issubclass(cls, eqx.Module)}
    concrete -= {AbstractPDE, AbstractSemiLinearPDE, AbstractStationaryPDE}
    assert concrete <= covered, concrete - covered


@pytest.mark.parametrize("name", list(_cases()))
def test_every_residual_vanishes_on_an_exact_solution(x64, name):
    pde, u_fn, args = _cases()[name]
    if u_fn is None:
        u_fn = pde.exact_solution
    rng = np.random.default_rng(len(name))
    ndim = pde.grid.ndim if hasattr(pde, "grid") else 2
    origin = np.asarray(pde.grid.origin) if hasattr(pde, "grid") else np.zeros(ndim)
    lengths = np.asarray(pde.grid.lengths) if hasattr(pde, "grid") else np.ones(ndim)
    points = jnp.asarray(origin + rng.uniform(0.1, 0.9, (6, ndim)) * lengths)
    times = jnp.asarray(rng.uniform(0.0, 1.0, 6))
    # The one contract: residual(u_fn, x, t, args); stationary PDEs ignore t, and u_fn(x).
    residual = jax.jit(jax.vmap(lambda x, t: pde.residual(u_fn, x, t, args)))
    values = residual(points, times)
    if pde.time_dependent:
        scale = jax.vmap(u_fn)(points, times)
    else:
        scale = jax.vmap(u_fn)(points)
    assert values.shape == (6, *jnp.shape(scale)[1:])
    assert float(jnp.max(jnp.abs(scale))) > 1e-3  # not a trivially small solution
    assert float(jnp.max(jnp.abs(values))) < 1e-11, values


def test_the_contract_needs_t_for_time_dependent_and_a_for_darcy():
    with pytest.raises(ValueError, match="Burgers.residual: `t` is required"):
        Burgers(Grid(8)).residual(lambda x, t: x[0], jnp.zeros(1))
    with pytest.raises(ValueError, match="Darcy.residual: no coefficient `a`"):
        Darcy().residual(_dirichlet_u, jnp.zeros(2))
    with pytest.raises(ValueError, match="Poisson.residual: `x` must be one point"):
        Poisson().residual(_dirichlet_u, jnp.zeros((2, 2)), 0.0)
