"""Preconditioners on Darcy 12/3: learned ones trained at 64², every one tested held-out at 64²–256² (512² on a GPU), against AMG.

The FNO-paper Darcy problem ``-∇·(a∇u) = 1`` on the unit square, ``a = 12 | 3`` thresholded from
a Gaussian field ``N(0, (−Δ + 9I)^{−2})`` (`jaxpde.data.DarcySystemConfig`), 5-point
harmonic-mean operator, conjugate gradients to ``‖b − Au‖ ≤ 10⁻⁶‖b‖`` in float64 (iteration
counts; float32 reaches 10⁻⁶ only with a good preconditioner and stagnates near its floor
otherwise, see `benchmarks/preconditioners.py`).

1. **Train** every learned preconditioner that jaxpde has — NeuralIF (Häusner, Öktem & Sjölund,
   TMLR 2024; Li et al., ICML 2023), the learned sparse approximate inverse ``G Gᵀ``, the learned
   spectral preconditioner, DCDM (Kaneda et al., ICML 2023), learned multigrid (Greenfeld et al.,
   ICML 2019; Luz et al., ICML 2020) on its two-grid loss, and a small Fourier neural operator
   (`FourierNetwork`, Li et al., ICLR 2021) in `NeuralOperatorPreconditioner` on DCDM's loss — at
   64² on random 12/3 coefficients, with `jaxpde.training.fit` (checkpoints under
   ``OUT/models/NAME``, so ``jaxpde resume`` continues exactly).
2. **Test** on held-out coefficients (the test split of `DarcySystemConfig`, keys the training
   never draws) at 64², 128², 256² — 512² only on an accelerator — *without retraining*, next to
   no preconditioner, Jacobi, SSOR, IC(0), Chebyshev, geometric multigrid and pyamg's smoothed
   aggregation AMG (scipy CG, host). Per system: CG iterations, setup time (building ``M``,
   compiled, median), solve time (total − setup), both after compilation; medians over the test
   systems.
3. **Table and plot** (``precond_darcy.png``): iterations and total time against the grid size.

The paper figures this is measured against (on this 2-core CPU, 256², rtol 10⁻⁶): Jacobi
818–832 iterations, IC(0) 253, SSOR 173, pyamg AMG 8–9 iterations in 0.16 s. Targets: GMG ≤ 15
iterations and total time ≤ AMG's; the best learned preconditioner trained at 64² at or below
IC(0)'s iterations and ≤ 0.35× Jacobi's.

``scale=full`` trains 2000 steps per model and tests 8 systems per size (and 512² on a GPU). A
preconditioner whose solve takes longer than `slow_s` (20 s) at one size is not run at the
larger ones, and the table says so; DCDM is tested at its training size only (its CNN refuses
other grids; one flexible-CG solve takes ~35 s at 64² on a CPU). Nonlinear preconditioners
(DCDM, a neural operator) run inside flexible CG. Measured so far is kept in ``OUT/partial.json``
after each size.

Threads: pyamg runs on the host with the process's BLAS threads and jaxpde with XLA's. For time
against AMG run both single-threaded — ``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
MKL_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"``,
set before Python starts (a multithreaded OpenBLAS on a small shared CPU slowed pyamg's setup
several-fold). The results record these settings and the load average at the start and the end
(``conditions``).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jax.experimental import sparse as jsparse

from jaxpde.data._linear_systems import DarcySystemConfig, LinearSystemConfig
from jaxpde.experiment import check_positive_integers, check_positive_numbers
from jaxpde.numerics.krylov import ConjugateGradient
from jaxpde.numerics.sparse import SparseOperator

# ----------------------------------------------------------------------------------------------
# The preconditioners: classical ones by name, learned ones by their training recipe. Each entry
# names the module it lives in, so a preconditioner that is not in this checkout is skipped and
# reported as such (never silently).
# ----------------------------------------------------------------------------------------------

_PACKAGE = "jaxpde.preconditioners"

# Everything by its public name in `jaxpde.preconditioners`, so moving a module inside the package
# (geometric multigrid now lives in `jaxpde.numerics.multigrid`) does not break the harness.
#: name -> (module, class, keyword arguments)
CLASSICAL = {
    "jacobi": (_PACKAGE, "Jacobi", {}),
    "ssor": (_PACKAGE, "SSOR", {}),
    "ic0": (_PACKAGE, "IncompleteCholesky", {}),
    "chebyshev": (_PACKAGE, "Chebyshev", {"degree": 4, "inner": None}),
    "gmg": (_PACKAGE, "GeometricMultigrid", {}),
}

#: name -> (module, training function): ``train(systems, steps, key, **fit_options) -> model``.
#: Learned multigrid and the neural operator have no recipe in the package; `_RECIPES` builds them.
LEARNED = {
    "neural_if": (_PACKAGE, "train_neural_if"),
    "learned_spai": (_PACKAGE, "train_spai"),
    "learned_spectral": (_PACKAGE, "train_spectral"),
    "dcdm": (_PACKAGE, "train_dcdm"),
    "neural_operator": (_PACKAGE, "train_neural_operator"),
    "learned_multigrid": (_PACKAGE, "train_learned_multigrid"),
}

#: The grid sizes a learned preconditioner can be tested at, when not every size: DCDM's CNN has
#: its training grid's receptive field and refuses other grids, and on a CPU one of its flexible-CG
#: solves takes ~35 s at 64² (hundreds of dilated convolutions), so it runs at its training size only.
ONLY_AT_TRAIN_SIZE = {"dcdm": "DCDM runs at its training grid only (its CNN refuses other grids; ~35 s per solve at 64² on a CPU)"}

def _attribute(module: str, name: str):
    """``module.name``, or None when the module or the name is not in this checkout."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def classical_preconditioners() -> tuple[dict[str, Any], list[str]]:
    """``({name: preconditioner}, [missing names])``; ``"none"`` is ``None`` (plain CG)."""
    found, missing = {"none": None}, []
    for name, (module, cls, kwargs) in CLASSICAL.items():
        factory = _attribute(module, cls)
        if factory is None:
            missing.append(name)
            continue
        try:
            found[name] = factory(**kwargs)
        except TypeError:  # a constructor with other arguments than this checkout expects
            found[name] = factory()
    return found, missing


def _recipe(model: str, loss: str, build, learning_rate: float):
    """A training recipe for a learned preconditioner without one of its own: ``build(cls, systems,
    key)`` makes the model, `jaxpde.preconditioners.train_preconditioner` fits it on `loss` (None
    when this checkout lacks a piece)."""
    cls, objective, fit_recipe = (_attribute(_PACKAGE, n) for n in (model, loss, "train_preconditioner"))
    if cls is None or objective is None or fit_recipe is None:
        return None

    def train(systems, steps, key, learning_rate=learning_rate, **fit_options):
        init_key, train_key = jax.random.split(key)
        return fit_recipe(build(cls, systems, init_key), objective, systems, steps, train_key, learning_rate, **fit_options)

    return train


class FourierNetwork(eqx.Module):
    r"""A small 2-D Fourier neural operator (Li et al., ICLR 2021) for `NeuralOperatorPreconditioner`.

    ``(c, n, n) → (1, n, n)``: a pointwise lift to `width` channels, `layers` Fourier layers
    ``v ← gelu(W v + 𝓕⁻¹(R ⊙ 𝓕v)_{|k| < modes}) `` and a pointwise projection. ``R`` lives on
    wavenumbers, so one network applies on every grid (resolution-independent, as the issue's
    neural-operator interface asks; a grid with ``n < 2·modes`` keeps the modes it resolves). The projection starts at zero, plus a skip of
    the residual channel: untrained, ``f(r) = r`` and flexible CG starts as plain CG.
    """

    lift: eqx.nn.Conv2d
    spectral: tuple  # per layer: (2, width, width, 2·modes, modes) real and imaginary parts
    pointwise: tuple
    project: eqx.nn.Conv2d
    modes: int = eqx.field(static=True)

    def __init__(self, channels: int, width: int = 12, modes: int = 8, layers: int = 3, *, key):
        keys = jax.random.split(key, 2 * layers + 2)
        self.modes = modes
        self.lift = eqx.nn.Conv2d(channels, width, 1, key=keys[0])
        scale = 1.0 / (width * width)
        self.spectral = tuple(scale * jax.random.normal(keys[1 + i], (2, width, width, 2 * modes, modes))
                              for i in range(layers))
        self.pointwise = tuple(eqx.nn.Conv2d(width, width, 1, key=keys[1 + layers + i]) for i in range(layers))
        project = eqx.nn.Conv2d(width, 1, 1, key=keys[-1])
        self.project = eqx.tree_at(lambda c: (c.weight, c.bias), project,
                                   (jnp.zeros_like(project.weight), jnp.zeros_like(project.bias)))

    def _fourier(self, weights, v):
        n1, n2 = v.shape[1:]
        # Mode k means the same wave on every grid; a grid too coarse for all of them keeps those it resolves.
        m = min(self.modes, n1 // 2, n2 // 2 + 1)
        rows = jnp.r_[0:m, 2 * self.modes - m:2 * self.modes]
        coefficients = jnp.fft.rfft2(v)
        kept = jnp.concatenate([coefficients[:, :m, :m], coefficients[:, n1 - m:, :m]], axis=1)
        mixed = jnp.einsum("ixy,ioxy->oxy", kept, (weights[0] + 1j * weights[1])[:, :, rows, :m])
        out = jnp.zeros((v.shape[0], n1, n2 // 2 + 1), coefficients.dtype)
        out = out.at[:, :m, :m].set(mixed[:, :m]).at[:, n1 - m:, :m].set(mixed[:, m:])
        return jnp.fft.irfft2(out, s=(n1, n2))

    def __call__(self, x):
        v = self.lift(x)
        for weights, pointwise in zip(self.spectral, self.pointwise):
            v = jax.nn.gelu(pointwise(v) + self._fourier(weights.astype(v.dtype), v))
        return x[:1] + self.project(v)


#: name -> recipe factory: learned multigrid on its two-grid loss; a `FourierNetwork` (the residual
#: and the 4 log face coefficients as channels) in `NeuralOperatorPreconditioner` on DCDM's loss.
_RECIPES = {
    "learned_multigrid": lambda: _recipe("LearnedMultigrid", "two_grid_loss",
                                         lambda cls, systems, key: cls(systems.grid.ndim, key), 3e-3),
    "neural_operator": lambda: _recipe(
        "NeuralOperatorPreconditioner", "dcdm_loss",
        lambda cls, systems, key: cls(FourierNetwork(1 + 2 * systems.grid.ndim, key=key)), 1e-3),
}


def learned_trainers() -> tuple[dict[str, Any], list[str]]:
    """``({name: train function}, [missing names])`` for the learned preconditioners in this checkout."""
    found, missing = {}, []
    for name, (module, fn) in LEARNED.items():
        train = _attribute(module, fn)
        if train is None and name in _RECIPES:
            train = _RECIPES[name]()
        (missing.append(name) if train is None else found.__setitem__(name, train))
    return found, missing


def darcy_systems(size: int, batch: int):
    """The training sampler of the learned preconditioners (random 12/3 coefficients per step)."""
    from jaxpde.preconditioners import DarcySystems

    return DarcySystems(size=size, batch=batch)


def flexible_solver(rtol: float, max_steps: int, preconditioner):
    """Flexible CG for a nonlinear preconditioner (None if this checkout has none)."""
    cls = _attribute(_PACKAGE, "FlexibleCG")
    if cls is None:
        return None
    return cls(rtol=rtol, atol=0.0, max_steps=max_steps, preconditioner=preconditioner)


def solver_for(preconditioner, rtol: float, max_steps: int):
    """CG for a fixed SPD preconditioner, flexible CG for a nonlinear one (None if unavailable)."""
    if preconditioner is not None and not (type(preconditioner).is_linear and type(preconditioner).is_positive_definite):
        return flexible_solver(rtol, max_steps, preconditioner)
    return ConjugateGradient(rtol=rtol, atol=0.0, max_steps=max_steps, preconditioner=preconditioner)


def as_dtype(tree, dtype):
    """Every floating array of `tree` cast to `dtype` (a float32-trained model on float64 systems)."""
    return jax.tree_util.tree_map(
        lambda x: x.astype(dtype) if eqx.is_array(x) and jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )


# ----------------------------------------------------------------------------------------------
# Measuring one preconditioner on one system.
# ----------------------------------------------------------------------------------------------

_RESULT_NAMES = ("successful", "max_steps_reached", "singular", "breakdown", "stagnation", "nonfinite_input")


def result_name(result) -> str:
    for name in _RESULT_NAMES:
        if hasattr(lx.RESULTS, name) and result == getattr(lx.RESULTS, name):
            return name
    return str(lx.RESULTS[result])


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class _Compiled:
    """The compiled solve and setup of one (preconditioner, problem shape); reused across systems.

    Both take ``(rebuild, argument)`` with ``A = rebuild(argument)``: a stencil operator is passed
    as it is (its pattern follows from its static grid), a `SparseOperator` as its values only,
    rebuilt on a pattern closed over — a traced pattern would hide the static structure that
    IC(0), SSOR and the graph networks plan from.
    """

    def __init__(self, preconditioner, rtol: float, max_steps: int):
        solver = solver_for(preconditioner, rtol, max_steps)
        self.available = solver is not None

        fixed = preconditioner is not None and isinstance(solver, ConjugateGradient)

        @eqx.filter_jit
        def solve(rebuild, argument, b):
            operator = rebuild(argument)
            chosen = solver
            if fixed and isinstance(operator, SparseOperator):
                # lineax traces every leaf of the operator it solves with, the sparse pattern
                # included, so a preconditioner built in the solver's init cannot see it: M is
                # built here, where the pattern is still a constant, and handed to CG as an operator.
                chosen = ConjugateGradient(rtol=rtol, atol=0.0, max_steps=max_steps, preconditioner=preconditioner(operator))
            solution = lx.linear_solve(operator, b, chosen, throw=False)
            return solution.value, solution.result, solution.stats["num_steps"]

        @eqx.filter_jit
        def setup(rebuild, argument):
            return preconditioner(rebuild(argument))

        self.solve = solve
        self.setup = None if preconditioner is None else setup


def _identity(operator):
    return operator


def _split(operators: list) -> tuple:
    """``(rebuild, [arguments])`` for a list of operators of one kind (see `_Compiled`)."""
    first = operators[0]
    if not isinstance(first, SparseOperator):
        return _identity, operators
    indices = np.asarray(first.matrix.indices)
    for op in operators[1:]:
        if not np.array_equal(np.asarray(op.matrix.indices), indices):
            raise ValueError("evaluate: the sparse systems of one family must share one pattern.")
    shape, tags, layout = first.matrix.shape, first.tags, first.layout
    pattern = first.matrix.indices  # a concrete jax array: closed over, it stays a constant under jit

    def rebuild(values):
        return SparseOperator(jsparse.BCOO((values, pattern), shape=shape), tags, layout)

    return rebuild, [op.matrix.data for op in operators]


def measure(compiled: _Compiled, rebuild, argument, b, repeats: int = 3) -> dict:
    """Iterations, result, true relative residual, first-call, setup and solve seconds."""
    start = time.perf_counter()
    value, result, steps = jax.block_until_ready(compiled.solve(rebuild, argument, b))
    first = time.perf_counter() - start
    operator = rebuild(argument)
    residual = jax.tree_util.tree_map(lambda x, y: x - y, b, operator.mv(value))
    relative = float(jnp.linalg.norm(jnp.ravel(residual)) / jnp.linalg.norm(jnp.ravel(b)))
    # A solve that takes seconds is timed once: its noise is small, and the budget is not.
    start = time.perf_counter()
    jax.block_until_ready(compiled.solve(rebuild, argument, b))
    total = time.perf_counter() - start
    if total < 1.0 and repeats > 1:
        total = _median_seconds(lambda: compiled.solve(rebuild, argument, b), repeats)
    setup = 0.0
    if compiled.setup is not None:
        jax.block_until_ready(compiled.setup(rebuild, argument))
        setup = _median_seconds(lambda: compiled.setup(rebuild, argument), repeats)
    return {
        "iterations": int(steps),
        "result": result_name(result),
        "relative_residual": relative,
        "first_call_s": first,
        "setup_s": setup,
        "solve_s": max(total - setup, 0.0),
        "total_s": total,
    }


def measure_amg(operator, b, rtol: float, repeats: int = 3) -> dict | str:
    """pyamg smoothed aggregation as a CG preconditioner on the host (float64): setup and solve."""
    try:
        import pyamg
    except ImportError:
        return "pyamg not installed"
    sparse = operator if isinstance(operator, SparseOperator) else operator.to_sparse()
    matrix = sparse.to_scipy().astype(np.float64)
    rhs = np.asarray(b, np.float64).ravel()
    hierarchy = pyamg.smoothed_aggregation_solver(matrix)
    residuals: list[float] = []
    u = hierarchy.solve(rhs, tol=rtol, accel="cg", residuals=residuals, maxiter=1000)
    setup = _median_seconds(lambda: pyamg.smoothed_aggregation_solver(matrix), repeats)
    solve = _median_seconds(lambda: hierarchy.solve(rhs, tol=rtol, accel="cg", maxiter=1000), repeats)
    return {
        "iterations": len(residuals) - 1,
        "result": "successful" if residuals[-1] <= rtol * residuals[0] * 1.0001 else "max_steps_reached",
        "relative_residual": float(np.linalg.norm(rhs - matrix @ u) / np.linalg.norm(rhs)),
        "setup_s": setup,
        "solve_s": solve,
        "total_s": setup + solve,
    }


def evaluate(preconditioners: dict, config: LinearSystemConfig, keys, rtol: float, dtype, repeats: int = 3,
             max_steps: int | None = None, amg: bool = True, log=print, skip: dict | None = None) -> dict:
    """Every preconditioner on the systems of `config` drawn from `keys`; medians over the systems.

    Returns ``{name: {"iterations": median, "setup_s", "solve_s", "total_s", "per_system": [...]}}``
    (or a string saying why a preconditioner did not run). `skip` maps names to the reason they
    are not run here.
    """
    skip = skip or {}
    samples = [jax.tree_util.tree_map(lambda x: x.astype(dtype), config.sample(k)) for k in keys]
    systems = [config.system(s) for s in samples]
    rebuild, arguments = _split([op for op, _ in systems])
    size = math.prod(systems[0][0].in_structure().shape)
    max_steps = max_steps or min(10 * size, 4000)
    out: dict[str, Any] = {}
    for name, preconditioner in preconditioners.items():
        if name in skip:
            out[name] = skip[name]
            log(f"  {name}: {skip[name]}")
            continue
        compiled = _Compiled(None if preconditioner is None else as_dtype(preconditioner, dtype), rtol, max_steps)
        if not compiled.available:
            out[name] = "skipped: no flexible Krylov solver in this checkout for a nonlinear preconditioner"
            continue
        try:
            rows = [measure(compiled, rebuild, argument, b, repeats) for argument, (_, b) in zip(arguments, systems)]
        except Exception as error:  # a preconditioner that cannot handle this operator: say so
            out[name] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:300]}"
            log(f"  {name}: {out[name]}")
            continue
        out[name] = _medians(rows)
        log(f"  {name}: {out[name]['iterations']} it, setup {out[name]['setup_s']:.3g} s, "
            f"solve {out[name]['solve_s']:.3g} s ({out[name]['results']})")
    if amg:
        rows = [measure_amg(op, b, rtol, repeats) for op, b in systems]
        out["amg"] = rows[0] if isinstance(rows[0], str) else _medians(rows)
        if not isinstance(out["amg"], str):
            log(f"  amg: {out['amg']['iterations']} it, setup {out['amg']['setup_s']:.3g} s, solve {out['amg']['solve_s']:.3g} s")
    return out


def only_at_train_size(size: int, train_size: int) -> dict:
    """``{name: reason}`` for the learned preconditioners tested at their training size only."""
    if size == train_size:
        return {}
    return {name: f"not run: {reason}" for name, reason in ONLY_AT_TRAIN_SIZE.items()}


#: The thread settings that make the comparison with pyamg fair: one thread for BLAS and one for XLA.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")
SINGLE_THREADED_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def conditions() -> dict:
    """Where a timing was taken: the load average (a shared machine), the cores and the thread settings.

    Times in one run compare with each other; across runs only with the load alongside. XLA and
    BLAS read their thread settings when they start, so these are the values the process runs with.
    """
    flags = os.environ.get("XLA_FLAGS") or ""
    return {
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_1_5_15_min": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "environment": {name: os.environ.get(name) for name in THREAD_VARIABLES},
        "xla_single_threaded": "intra_op_parallelism_threads=1" in flags and "xla_cpu_multi_thread_eigen=false" in flags,
        "blas_single_threaded": all(os.environ.get(v) == "1" for v in THREAD_VARIABLES[:3]),
    }


def too_slow(figures: dict, label: str, limit_s: float) -> dict:
    """``{name: reason}`` for the preconditioners whose solve took over `limit_s` here: larger
    problems would take minutes to hours each on a CPU (a CNN preconditioner in flexible CG)."""
    return {
        name: f"skipped: its solve took {f['total_s']:.0f} s at {label} (> {limit_s:g} s), larger sizes exceed the CPU budget"
        for name, f in figures.items()
        if isinstance(f, dict) and name != "amg" and f["total_s"] > limit_s
    }


def _medians(rows: list[dict]) -> dict:
    keys = ("iterations", "setup_s", "solve_s", "total_s", "relative_residual")
    summary = {k: statistics.median([r[k] for r in rows]) for k in keys}
    summary["iterations"] = float(summary["iterations"])
    summary["results"] = sorted({r["result"] for r in rows})
    if "first_call_s" in rows[0]:
        summary["first_call_s"] = rows[0]["first_call_s"]
    summary["per_system"] = rows
    return summary


# ----------------------------------------------------------------------------------------------
# Training and saving the learned preconditioners.
# ----------------------------------------------------------------------------------------------


def train_learned(names_and_trainers: dict, size: int, steps: int, batch: int, seed: int, out_dir: Path | None,
                  learning_rate: float, log=print) -> tuple[dict, dict]:
    """Train each learned preconditioner at `size`² (checkpointed under ``out_dir/NAME`` when given).

    Returns ``({name: model}, {name: {"train_s": ..., or "failed": ...}})``.
    """
    systems = darcy_systems(size, batch)
    models, info = {}, {}
    for index, (name, train) in enumerate(names_and_trainers.items()):
        key = jax.random.fold_in(jax.random.key(seed), index)
        options: dict[str, Any] = {"learning_rate": learning_rate}
        if out_dir is not None:
            options["out_dir"] = out_dir / name
        start = time.perf_counter()
        try:
            model = train(systems, steps, key, **options)
        except Exception as error:
            info[name] = {"failed": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"}
            log(f"  training {name} failed: {info[name]['failed']}")
            continue
        models[name] = model
        info[name] = {"train_s": time.perf_counter() - start, "steps": steps, "train_size": size, "batch": batch}
        log(f"  trained {name}: {steps} steps at {size}² in {info[name]['train_s']:.1f} s")
    return models, info


def save_models(models: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        eqx.tree_serialise_leaves(folder / f"{name}.eqx", model)


#: Saved models trained by another recipe's skeleton: the lognormal-trained learned multigrid.
SKELETON_OF = {"learned_multigrid_lognormal": "learned_multigrid"}


def load_models(trainers: dict, folder: Path, size: int, batch: int) -> dict:
    """Models saved by `save_models` (``NAME.eqx``): a zero-step training gives each one's skeleton."""
    systems = darcy_systems(size, batch)
    models = {}
    for name in [*trainers, *SKELETON_OF]:
        path = folder / f"{name}.eqx"
        train = trainers.get(SKELETON_OF.get(name, name))
        if path.exists() and train is not None:
            skeleton = train(systems, 0, jax.random.key(0))
            models[name] = eqx.tree_deserialise_leaves(path, skeleton)
    return models


def training_records(folder: Path, names) -> dict:
    """``{name: record}`` from the ``NAME.json`` saved next to each loaded model, where there is one
    (how long, how many steps, which run trained it)."""
    records = {}
    for name in names:
        path = folder / f"{name}.json"
        records[name] = json.loads(path.read_text()) if path.exists() else {"loaded": str(folder / f"{name}.eqx")}
    return records


# ----------------------------------------------------------------------------------------------
# The experiment.
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    scale: Literal["cpu", "full"] = "cpu"
    seed: int = 0
    train_size: int = 64
    sizes: tuple[int, ...] = (64, 128, 256)
    n_test: int = 2
    steps: int = 300
    batch_size: int = 4
    learning_rate: float = 3e-3
    models: str = ""
    rtol: float = 1e-6
    repeats: int = 3
    slow_s: float = 20.0
    amg: bool = True
    progress: bool = True

    RUN_INDEPENDENT_KEYS: ClassVar[tuple[str, ...]] = ("repeats",)

    def __post_init__(self):
        check_positive_integers(self, "train_size", "n_test", "batch_size", "repeats")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"`steps` must be an integer >= 0, got {self.steps!r}.")
        if self.train_size < 4:
            raise ValueError(f"`train_size` must be at least 4, got {self.train_size!r}.")
        if not self.sizes or any(isinstance(n, bool) or not isinstance(n, int) or n < 4 for n in self.sizes):
            raise ValueError(f"`sizes` must be a non-empty tuple of integers >= 4, got {self.sizes!r}.")
        if not (self.slow_s > 0):
            raise ValueError(f"`slow_s` must be positive, got {self.slow_s!r}.")
        if not (0 < self.rtol < 1):
            raise ValueError(f"`rtol` must be in (0, 1), got {self.rtol!r}.")
        check_positive_numbers(self, "learning_rate")
        if self.models and not Path(self.models).is_dir():
            raise ValueError(f"`models` must be a folder of saved models (an earlier run's OUT/models), got {self.models!r}.")


def full_scale(config: Config) -> Config:
    """2000 training steps, 8 test systems per size, and 512² on an accelerator."""
    if config.scale != "full":
        return config
    sizes = tuple(config.sizes)
    if jax.default_backend() != "cpu" and 512 not in sizes:
        sizes = (*sizes, 512)
    return dataclasses.replace(config, steps=max(config.steps, 2000), n_test=max(config.n_test, 8), sizes=sizes)


def test_sizes(config: Config) -> tuple[tuple[int, ...], list[int]]:
    """The sizes tested here and those skipped (512² and above need an accelerator)."""
    if jax.default_backend() != "cpu":
        return tuple(config.sizes), []
    kept = tuple(n for n in config.sizes if n < 512)
    return kept, [n for n in config.sizes if n >= 512]


def plot(by_size: dict, out_dir: Path) -> str:
    try:
        import matplotlib
    except ImportError:
        return "skipped: matplotlib is not installed (pip install 'jaxpde[plots]')"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    sizes = sorted(by_size)
    names = []
    for n in sizes:
        names += [k for k, v in by_size[n].items() if isinstance(v, dict) and k not in names]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name in names:
        xs = [n for n in sizes if isinstance(by_size[n].get(name), dict)]
        style = "k--" if name == "amg" else ("-o" if name in LEARNED else "-s")
        axes[0].loglog(xs, [by_size[n][name]["iterations"] for n in xs], style, label=name, ms=4)
        axes[1].loglog(xs, [by_size[n][name]["total_s"] for n in xs], style, label=name, ms=4)
    axes[0].set(xlabel="grid points per side", ylabel="CG iterations to 1e-6", title="Darcy 12/3, held-out")
    axes[1].set(xlabel="grid points per side", ylabel="setup + solve (s)", title="time (after compilation)")
    for ax in axes:
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out_dir / "precond_darcy.png", dpi=110)
    plt.close(fig)
    return "precond_darcy.png"


def _row(name: str, size: int, figures) -> tuple[str, ...]:
    if isinstance(figures, str):
        return (name, f"{size}²", figures, "", "", "")
    return (name, f"{size}²", f"{figures['iterations']:.0f}", f"{figures['setup_s']:.3g}", f"{figures['solve_s']:.3g}",
            ",".join(figures["results"]))


def summary_rows(by_size: dict, train_size: int = 64) -> list[list[str]]:
    """README rows: at the largest size, GMG and the best learned preconditioner against AMG, IC(0), Jacobi."""
    n = max(by_size)
    figures = by_size[n]

    def get(name):
        value = figures.get(name)
        return value if isinstance(value, dict) else None

    rows = []
    amg, gmg, ic0, jacobi = get("amg"), get("gmg"), get("ic0"), get("jacobi")
    if gmg and amg:
        rows.append([f"precond-darcy: GMG-PCG, Darcy 12/3 {n}², rtol 1e-6 (held-out)",
                     f"{gmg['iterations']:.0f} it, {gmg['total_s']:.3g} s (setup {gmg['setup_s']:.3g} s)",
                     f"pyamg SA-AMG {amg['iterations']:.0f} it, {amg['total_s']:.3g} s (target ≤ 15 it, time ≤ AMG's)"])
    learned = {k: get(k) for k in LEARNED if get(k)}
    if learned:
        best = min(learned, key=lambda k: learned[k]["iterations"])
        figure = learned[best]
        reference = []
        if ic0:
            reference.append(f"IC(0) {ic0['iterations']:.0f} it")
        if jacobi:
            reference.append(f"Jacobi {jacobi['iterations']:.0f} it ({figure['iterations'] / jacobi['iterations']:.2f}×)")
        if amg:
            reference.append(f"AMG {amg['iterations']:.0f} it")
        rows.append([f"precond-darcy: best learned ({best}), trained at {train_size}², Darcy 12/3 {n}²",
                     f"{figure['iterations']:.0f} it, {figure['total_s']:.3g} s",
                     "; ".join(reference) + " (target ≤ IC(0), ≤ 0.35× Jacobi)"])
    return rows


def run(config: Config, out_dir: Path) -> dict:
    config = full_scale(config)
    out_dir = Path(out_dir)
    started = conditions()
    log = functools.partial(print, flush=True) if config.progress else (lambda *_: None)
    classical, missing_classical = classical_preconditioners()
    trainers, missing_learned = learned_trainers()

    if config.models:
        # Models saved by an earlier run (its OUT/models), tested here without retraining.
        source = Path(config.models)
        with jax.enable_x64(False):
            models = {k: v for k, v in load_models(trainers, source, config.train_size, config.batch_size).items()
                      if k in trainers}
        training = {name: {**record, "loaded_from": str(source)}
                    for name, record in training_records(source, models).items()}
        log(f"loaded {len(models)} learned preconditioners from {source}: {sorted(models)}")
    else:
        log(f"training {len(trainers)} learned preconditioners at {config.train_size}² ({config.steps} steps each)")
        models, training = train_learned(trainers, config.train_size, config.steps, config.batch_size, config.seed,
                                         out_dir / "models", config.learning_rate, log)
    save_models(models, out_dir / "models")

    sizes, skipped = test_sizes(config)
    by_size: dict[int, dict] = {}
    skip: dict[str, str] = {}
    with jax.enable_x64(True):
        for n in sizes:
            log(f"testing at {n}² on {config.n_test} held-out systems")
            systems = DarcySystemConfig(size=n, seed=config.seed)
            test_key = jax.random.fold_in(jax.random.key(config.seed), 1)  # the test split's stream
            keys = [jax.random.fold_in(test_key, i) for i in range(config.n_test)]
            here = {**skip, **only_at_train_size(n, config.train_size)}
            by_size[n] = evaluate({**classical, **models}, systems, keys, config.rtol, jnp.float64, config.repeats,
                                  amg=config.amg, log=log, skip=here)
            skip.update(too_slow(by_size[n], f"{n}²", config.slow_s))
            # A run of tens of minutes keeps what it has measured so far (results.json comes at the end).
            (out_dir / "partial.json").write_text(json.dumps({str(k): v for k, v in by_size.items()}, indent=1,
                                                             default=float))

    table = [("preconditioner", "size", "iterations", "setup s", "solve s", "result")]
    for n in sizes:
        for name, figures in by_size[n].items():
            table.append(_row(name, n, figures))
    results = {
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "OpenBLAS default"),
        "conditions": {"start": started, "end": conditions()},
        "sizes_tested": list(sizes),
        "sizes_skipped_on_cpu": skipped,
        "missing_in_this_checkout": missing_classical + missing_learned,
        "training": training,
        "by_size": {str(n): v for n, v in by_size.items()},
        "plot": plot(by_size, out_dir),
        "table": table,
        "summary": summary_rows(by_size, config.train_size),
    }
    return results
