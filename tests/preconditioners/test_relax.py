"""Learning to Relax: Tsallis-INF over SSOR's ω on a sequence of 12/3 Darcy systems — average regret
against the best fixed ω in hindsight falls, the play concentrates near that ω, and runs are reproducible."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde import Grid
from jaxpde.pdes import Darcy
from jaxpde.preconditioners._relax import TsallisINF, cumulative_regret, learn_to_relax, ssor_cg_iterations
from tests.pdes.test_elliptic import thresholded_field

OMEGAS = np.array([1.0, 1.2, 1.4, 1.6, 1.8])
MAX_STEPS = 60


@pytest.fixture(scope="module")
def cost_table():
    """CG iterations (rtol 1e-5, float32) for 8 Darcy 12/3 coefficient draws at 14² × 5 values of ω —
    for evaluating the regret only; the bandit sees one entry per round."""
    grid = Grid((14, 14), boundary="dirichlet")
    coefficients = jnp.asarray(np.stack([thresholded_field(14, seed=s) for s in range(8)]), jnp.float32)
    pairs = (jnp.repeat(coefficients, len(OMEGAS), axis=0), jnp.tile(jnp.asarray(OMEGAS, jnp.float32), 8))

    def iterations(pair):
        a, omega = pair
        return ssor_cg_iterations(Darcy().operator(grid, a), jnp.ones(grid.shape), omega, rtol=1e-5, max_steps=MAX_STEPS)

    return np.asarray(jax.jit(lambda pairs: jax.lax.map(iterations, pairs))(pairs)).reshape(8, len(OMEGAS))


def test_ssor_pcg_converges_in_float32_for_every_omega(cost_table):
    # Below the cap: every solve converged (a breakdown or a stall would cost MAX_STEPS).
    assert cost_table.max() < MAX_STEPS
    # Over-relaxation helps here: ω = 1 (symmetric Gauss–Seidel) is not the best fixed ω.
    assert cost_table.mean(axis=0).argmin() > 0


def test_regret_per_round_falls_and_play_concentrates_near_the_best_omega(cost_table):
    rounds = 1500
    sequence = np.random.default_rng(1).integers(0, len(cost_table), rounds)  # related systems, in random order
    costs = cost_table[sequence].astype(np.float64)
    arm = {w: k for k, w in enumerate(OMEGAS)}
    # Costs lie in 12–18 iterations: normalising to [10, 20] rather than [0, MAX_STEPS] makes the
    # arms' losses differ by up to 0.5 instead of 0.1 (see the module docstring).
    learn = lambda: learn_to_relax(  # noqa: E731
        lambda t, omega: costs[t, arm[omega]], rounds, max_cost=20, min_cost=10, omegas=OMEGAS, seed=0
    )
    result = learn()
    np.testing.assert_array_equal(costs[np.arange(rounds), result.choices], result.costs)
    regret = cumulative_regret(costs, result.choices)
    per_round = regret[[99, 499, 1499]] / np.array([100, 500, 1500])
    assert per_round[0] > per_round[1] > per_round[2]
    best = costs.sum(axis=0).argmin()
    late = np.bincount(result.choices[-500:], minlength=len(OMEGAS))
    assert abs(late.argmax() - best) <= 1 and late[max(best - 1, 0) : best + 2].sum() >= 0.8 * 500
    # Against always playing ω = 1: the bandit's total cost is lower.
    assert result.costs.sum() < costs[:, 0].sum()
    assert costs.min() >= 10 and costs.max() <= 20
    np.testing.assert_array_equal(learn().choices, result.choices)


def test_tsallis_inf_probabilities_are_a_distribution_that_favours_low_loss():
    bandit = TsallisINF(4)
    np.testing.assert_allclose(bandit.probabilities(), 0.25)
    bandit.cumulative[:] = [10.0, 2.0, 5.0, 30.0]
    bandit.round = 40
    p = bandit.probabilities()
    assert abs(p.sum() - 1) < 1e-9 and np.all(np.diff(p[[1, 2, 0, 3]]) < 0)


def test_cumulative_regret_by_hand():
    costs = np.array([[3.0, 1.0], [1.0, 4.0], [2.0, 2.0]])
    # Paid 1, 1, 2; best fixed arm after 1, 2, 3 rounds: 1, 4 (arm 0), 6 (arm 0).
    np.testing.assert_allclose(cumulative_regret(costs, np.array([1, 0, 0])), [0.0, -2.0, -2.0])


def test_relax_bad_input_is_named():
    with pytest.raises(ValueError, match=r"learn_to_relax: `omegas` must be a non-empty sequence of numbers in \(0, 2\)"):
        learn_to_relax(lambda t, w: 1.0, 3, max_cost=10, omegas=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"learn_to_relax: `max_cost` must exceed `min_cost` >= 0, got max_cost=0"):
        learn_to_relax(lambda t, w: 1.0, 3, max_cost=0)
    with pytest.raises(ValueError, match=r"learn_to_relax: `max_cost` must be a finite real number, got nan"):
        learn_to_relax(lambda t, w: 1.0, 3, max_cost=float("nan"))
    with pytest.raises(ValueError, match=r"learn_to_relax: `num_rounds` must be a positive integer, got 0"):
        learn_to_relax(lambda t, w: 1.0, 0, max_cost=10)
    with pytest.raises(ValueError, match=r"TsallisINF: `num_arms` must be a positive integer, got 0"):
        TsallisINF(0)
