"""The implicit solves never call a non-finite answer converged.

Each of `linear_solve`, `root_find`, `fixed_point` and `steady_state` meets NaN and Inf in its
input (the initial guess, the parameters, the right-hand side, the operator). With
``throw=False`` the solution must come back flagged (``converged`` false, ``result`` not
successful), never as a successful NaN; with ``throw=True`` the call raises (every poisoned entry reaches the
solution), in the solve's own words.
"""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from jaxpde.implicit import fixed_point, linear_solve, root_find, steady_state

N = 4
# Inf takes the same paths as NaN through the convergence checks: -m slow (the suite's budget).
BAD = [pytest.param(np.nan, id="nan"), pytest.param(np.inf, id="inf", marks=pytest.mark.slow)]


def _spd(bad=None):
    matrix = 3.0 * np.eye(N) + 0.5 * np.eye(N, k=1) + 0.5 * np.eye(N, k=-1)
    if bad is not None:
        matrix[1, 2] = matrix[2, 1] = bad
    return lx.MatrixLinearOperator(jnp.asarray(matrix, jnp.float32), lx.positive_semidefinite_tag)


def _poisoned(bad, index=1):
    return jnp.ones(N, jnp.float32).at[index].set(bad)


def _contraction(z, theta):
    return 0.5 * jnp.tanh(z) + theta


def _root(y, theta):
    return y**3 + y - theta


def _decay(t, y, theta):
    return theta - y


def _solves(bad):
    """(name, solve with throw=...) for every input of every solve that can be poisoned."""
    ones = jnp.ones(N, jnp.float32)
    return {
        "linear_solve/vector": lambda throw: linear_solve(_spd(), _poisoned(bad), throw=throw),
        "linear_solve/operator": lambda throw: linear_solve(_spd(bad), ones, throw=throw),
        "root_find/y0": lambda throw: root_find(_root, _poisoned(bad), ones, throw=throw),
        "root_find/args": lambda throw: root_find(_root, ones, _poisoned(bad), throw=throw),
        "fixed_point/z0": lambda throw: fixed_point(_contraction, _poisoned(bad), ones, throw=throw),
        "fixed_point/args": lambda throw: fixed_point(_contraction, ones, _poisoned(bad), throw=throw),
        "steady_state/y0": lambda throw: steady_state(_decay, _poisoned(bad), ones, throw=throw),
        "steady_state/args": lambda throw: steady_state(_decay, ones, _poisoned(bad), throw=throw),
    }


@pytest.mark.parametrize("bad", BAD)
def test_non_finite_input_is_never_converged(bad):
    wrong = []
    for name, solve in _solves(bad).items():
        solution = solve(False)
        finite = bool(jnp.all(jnp.isfinite(solution.value)))
        if bool(solution.converged) and not finite:
            wrong.append(f"{name}: converged with a non-finite value")
    assert not wrong, wrong


@pytest.mark.parametrize("bad", BAD)
def test_non_finite_input_raises_with_throw(bad):
    # Every poisoned entry reaches the solution, so each solve must refuse, in its own words.
    for name, solve in _solves(bad).items():
        with pytest.raises(Exception, match=rf"(?i){name.split('/')[0]}|converge"):
            jax.block_until_ready(solve(True).value)
