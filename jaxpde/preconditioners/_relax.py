r"""Learning to Relax: a bandit that picks SSOR's ``ω`` across a sequence of related systems.

Khodak, Chow, Balcan & Talwalkar, *Learning to Relax: Setting Solver Parameters Across a
Sequence of Linear System Instances* (ICLR 2024). A solver meets systems ``A_1 x = b_1, A_2 x =
b_2, …`` one after the other (a time-stepping loop, a parameter sweep, a dataset of Darcy
coefficients); for each it picks an SSOR relaxation factor ``ω_t`` from a grid
``ω_1 < … < ω_K``, pays the cost ``c_t(ω_t)`` (CG iterations to the tolerance) and sees only
that one number — bandit feedback. Its **regret** against the best fixed ``ω`` in hindsight,

.. math::

    R_T = \sum_{t \le T} c_t(\omega_t) - \min_k \sum_{t \le T} c_t(\omega_k),

grows like ``√(K T)``, so the average regret ``R_T / T → 0``: the sequence is solved almost as
fast as with the best ``ω``, found without ever solving one system twice.

The bandit is Tsallis-INF (Zimmert & Seldin, JMLR 2021; the algorithm Khodak et al. use), with
the ``1/2``-Tsallis entropy: at round ``t`` it plays arm ``k`` with probability

.. math::

    w_{t,k} = 4\,\big(\eta_t (\hat L_{t-1,k} - x_t)\big)^{-2}, \qquad \eta_t = 2/\sqrt{t},

``x_t`` the normaliser (``Σ_k w_{t,k} = 1``, found by Newton's method), ``L̂`` the cumulative
importance-weighted loss estimates ``ℓ̂_{t,k} = 1[k = k_t]\, ℓ_t / w_{t,k}``, and
``ℓ_t = \mathrm{clip}((c_t - c_{\min}) / (c_{\max} - c_{\min}), 0, 1)`` the cost normalised to a
known range (at most ``[0, \text{the CG iteration cap}]``). The regret bound is
``O(\sqrt{KT})`` in these normalised units, so a tight range learns faster: costs of 12–18
iterations normalised by a cap of 60 differ by 0.1 at most, and separating arms that close
takes ``~1/Δ²`` rounds. Host-side NumPy, seeded: same seed and costs, same choices.
"""

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence

import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array, Int, PyTree

from ..numerics.krylov import ConjugateGradient
from ._ssor import SSOR

__all__ = ["RelaxResult", "TsallisINF", "cumulative_regret", "learn_to_relax", "ssor_cg_iterations"]

DEFAULT_OMEGAS = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9)


class TsallisINF:
    r"""The ``1/2``-Tsallis-INF bandit over `num_arms` arms with losses in ``[0, 1]`` (see the
    module docstring). `probabilities()` gives ``w_t``, `sample(rng)` draws an arm from it,
    `update(arm, loss)` feeds back the loss of the arm played."""

    def __init__(self, num_arms: int):
        if isinstance(num_arms, bool) or not isinstance(num_arms, numbers.Integral) or num_arms < 1:
            raise ValueError(f"TsallisINF: `num_arms` must be a positive integer, got {num_arms!r}.")
        self.num_arms = int(num_arms)
        self.cumulative = np.zeros(self.num_arms)  # L̂_{t-1}
        self.round = 1

    def probabilities(self) -> np.ndarray:
        eta = 2 / math.sqrt(self.round)
        losses = self.cumulative
        # Σ_k 4/(η(L_k - x))² is increasing and convex in x < min L; at x = min L - 2/η the
        # smallest term alone is 1, so Newton's method from there decreases monotonically to the
        # root (Zimmert & Seldin 2021, §4).
        x = losses.min() - 2 / eta
        for _ in range(50):
            w = 4 / (eta * (losses - x)) ** 2
            excess = w.sum() - 1
            if excess <= 1e-12:
                break
            x -= excess / (eta * np.sum(w**1.5))
        w = 4 / (eta * (losses - x)) ** 2
        return w / w.sum()

    def sample(self, rng: np.random.Generator) -> int:
        self._last = self.probabilities()
        return int(rng.choice(self.num_arms, p=self._last))

    def update(self, arm: int, loss: float) -> None:
        if not 0 <= loss <= 1:
            raise ValueError(f"TsallisINF: `loss` must lie in [0, 1], got {loss!r}.")
        probabilities = getattr(self, "_last", None)
        if probabilities is None:
            probabilities = self.probabilities()
        self.cumulative[arm] += loss / probabilities[arm]
        self.round += 1
        self._last = None


@dataclasses.dataclass(frozen=True)
class RelaxResult:
    """What `learn_to_relax` did: `omegas` (the grid), per round `choices` (arm indices),
    `costs` (the cost paid) and `probabilities` (``(T, K)``, the bandit's distribution)."""

    omegas: np.ndarray
    choices: np.ndarray
    costs: np.ndarray
    probabilities: np.ndarray

    @property
    def chosen_omegas(self) -> np.ndarray:
        return self.omegas[self.choices]


def learn_to_relax(
    cost: Callable[[int, float], float],
    num_rounds: int,
    max_cost: float,
    omegas: Sequence[float] = DEFAULT_OMEGAS,
    seed: int = 0,
    min_cost: float = 0.0,
) -> RelaxResult:
    r"""Run Tsallis-INF over the ``ω`` grid for `num_rounds` systems.

    **Arguments:**

    - `cost`: ``cost(t, ω)``, the cost of solving system ``t`` with SSOR(``ω``) — typically the
      CG iterations to a tolerance, from `ssor_cg_iterations` under `jax.jit` (called once per
      round, with the chosen ``ω`` only).
    - `num_rounds`: the number of systems ``T ≥ 1``.
    - `max_cost`, `min_cost`: the range ``c_min < c_max`` of the costs (at most ``[0, the CG
      iteration cap]``); losses are ``clip((c - c_min) / (c_max - c_min), 0, 1)``.
    - `omegas`: the grid, each in ``(0, 2)``.
    - `seed`: the seed of the bandit's draws.
    """
    owner = "learn_to_relax"
    if isinstance(num_rounds, bool) or not isinstance(num_rounds, numbers.Integral) or num_rounds < 1:
        raise ValueError(f"{owner}: `num_rounds` must be a positive integer, got {num_rounds!r}.")
    for name, value in (("max_cost", max_cost), ("min_cost", min_cost)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{owner}: `{name}` must be a finite real number, got {value!r}.")
    if not 0 <= min_cost < max_cost:
        raise ValueError(f"{owner}: `max_cost` must exceed `min_cost` >= 0, got max_cost={max_cost!r}, min_cost={min_cost!r}.")
    grid = np.asarray(omegas, dtype=np.float64)
    if grid.ndim != 1 or grid.size < 1 or not np.all((grid > 0) & (grid < 2)):
        raise ValueError(f"{owner}: `omegas` must be a non-empty sequence of numbers in (0, 2), got {omegas!r}.")
    bandit = TsallisINF(grid.size)
    rng = np.random.default_rng(seed)
    choices = np.empty(num_rounds, np.int64)
    costs = np.empty(num_rounds)
    probabilities = np.empty((num_rounds, grid.size))
    for t in range(num_rounds):
        probabilities[t] = bandit.probabilities()
        arm = bandit.sample(rng)
        paid = float(cost(t, float(grid[arm])))
        bandit.update(arm, min(max((paid - min_cost) / (max_cost - min_cost), 0.0), 1.0))
        choices[t], costs[t] = arm, paid
    return RelaxResult(grid, choices, costs, probabilities)


def cumulative_regret(costs: np.ndarray, choices: np.ndarray) -> np.ndarray:
    r"""``R_t = Σ_{s≤t} C[s, k_s] - min_k Σ_{s≤t} C[s, k]`` for ``t = 1, …, T``, from the full cost
    matrix `costs` ``(T, K)`` (every system with every ``ω`` — for evaluation only; the bandit
    never sees it) and the arms played, `choices` ``(T,)``."""
    costs = np.asarray(costs, np.float64)
    choices = np.asarray(choices)
    if costs.ndim != 2 or choices.shape != costs.shape[:1]:
        raise ValueError(
            f"cumulative_regret: `costs` must be (T, K) and `choices` (T,), got {costs.shape} and {choices.shape}."
        )
    paid = np.cumsum(costs[np.arange(costs.shape[0]), choices])
    return paid - np.cumsum(costs, axis=0).min(axis=1)


def ssor_cg_iterations(
    operator: lx.AbstractLinearOperator,
    rhs: PyTree[Array],
    omega,
    rtol: float = 1e-6,
    max_steps: int | None = None,
) -> Int[Array, ""]:
    """CG iterations to ``‖b - Ax‖ ≤ rtol ‖b‖`` with SSOR(``ω``) — ``max_steps`` (the cap) if
    it does not converge in time or breaks down, so a cost is always bounded. jit/vmap-able in
    the operator's values and in ``ω``."""
    solver = ConjugateGradient(rtol=rtol, max_steps=max_steps, preconditioner=SSOR(omega))
    solution = lx.linear_solve(operator, rhs, solver, throw=False)
    steps = solution.stats["num_steps"]
    cap = jnp.asarray(solution.stats["max_steps"], steps.dtype)
    return jnp.where(solution.result == lx.RESULTS.successful, steps, cap)

