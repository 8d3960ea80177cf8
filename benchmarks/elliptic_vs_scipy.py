"""Darcy flow CG solves: jaxpde (through lineax) vs scipy.sparse.linalg.cg on the same matrix.

Work: the FNO-paper Darcy problem ``-∇·(a∇u) = 1`` on ``(0, 1)²``, ``u = 0`` on the boundary, at
128² and 256² interior nodes, with ``a = 12`` where ``z ≥ 0`` and ``a = 3`` where ``z < 0``,
``z ~ N(0, (-Δ + 9I)^{-2})``. The field ``z`` is sampled here with NumPy's FFT on the periodic
box ``[0, 2)²`` (so its wavenumbers are ``π k``, as in the paper's cosine series on ``[0, 1]``)
and restricted to the grid points in ``(0, 1)²``.

Compared, to the norm-based tolerance ``‖b - Au‖₂ ≤ 1e-6 ‖b‖₂``, without preconditioner and with
Jacobi:

* ``jaxpde``: `jaxpde.pdes.elliptic.ConjugateGradient` through `lineax.linear_solve` on the
  matrix-free `DiffusionOperator` (and on its assembled BCOO `SparseOperator`);
  float64, jit-compiled; iterations from ``solution.stats["num_steps"]``.
* ``scipy``: `scipy.sparse.linalg.cg` (``rtol=1e-6``, its test is the same norm-based one) on
  ``DiffusionOperator.to_sparse().to_scipy()`` — the same matrix; iterations counted with its
  callback.
* ``lineax.CG`` as shipped, for reference: its test is elementwise (``|r_i| ≤ rtol |b_i|`` plus a
  test on the update), so its counts differ; with Jacobi in float32 it breaks down.
* float32: our CG to ``1e-6`` (below what float32 can represent at these sizes: it reports
  stagnation and the residual it reached), to working precision (``rtol = 0``), and
  `MixedPrecisionRefinement` (float32 CG inside, float64 residuals) to ``1e-6``.
* Reference rows: a sparse direct solve (SuperLU, factor + solve) and, when pyamg is
  installed, smoothed-aggregation AMG as a CG preconditioner (setup + solve).

Run: ``python benchmarks/elliptic_vs_scipy.py`` (writes ``results/elliptic_vs_scipy.json``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# CG's vector operations are memory-bound level-1 BLAS calls. A multithreaded BLAS on a small,
# shared machine spends more time synchronising threads than computing (scipy's CG ran 15x
# slower per iteration here with OpenBLAS's default threads), which would flatter jaxpde; so
# NumPy/SciPy run single-threaded, the configuration a CG user would pick.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax.numpy as jnp  # noqa: E402
import lineax as lx  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402

from benchmarks.common import first_call_seconds, median_seconds, write_result  # noqa: E402
from jaxpde import Grid  # noqa: E402
from jaxpde.numerics.stencils import DiffusionOperator  # noqa: E402
from jaxpde.numerics.krylov import ConjugateGradient, MixedPrecisionRefinement  # noqa: E402
from jaxpde.numerics.preconditioning import Jacobi  # noqa: E402

RTOL = 1e-6
SIZES = (128, 256)
REPEATS = 3


def thresholded_coefficient(n: int, seed: int = 0) -> np.ndarray:
    """a ∈ {3, 12}: the sign of z ~ N(0, (-Δ + 9I)^{-2}) at the n² interior nodes of (0, 1)²."""
    m = 2 * (n + 1)  # periodic box [0, 2)² with spacing 1/(n + 1)
    k = 2 * np.pi * np.fft.fftfreq(m, d=2.0 / m)  # = π × integers
    symbol = 1.0 / (k[:, None] ** 2 + k[None, :] ** 2 + 9.0)
    noise = np.random.default_rng(seed).standard_normal((m, m))
    z = np.fft.ifft2(np.fft.fft2(noise) * symbol).real
    z = z[1 : n + 1, 1 : n + 1]
    return np.where(z >= 0, 12.0, 3.0)


def relative_residual(matrix, u, b) -> float:
    u = np.asarray(u, np.float64).ravel()
    return float(np.linalg.norm(b - matrix @ u) / np.linalg.norm(b))


def scipy_cg(matrix, b, preconditioner):
    count = [0]

    def callback(_):
        count[0] += 1

    u, info = spla.cg(matrix, b, rtol=RTOL, M=preconditioner, maxiter=10 * b.size, callback=callback)
    return u, info, count[0]


def jaxpde_solve(solver):
    return jax.jit(lambda op, b: lx.linear_solve(op, b, solver, throw=False))


def result_name(result) -> str:
    for name in ("successful", "max_steps_reached", "singular", "breakdown", "stagnation", "nonfinite_input"):
        if result == getattr(lx.RESULTS, name):
            return name
    return lx.RESULTS[result]


def stats_of(solution) -> dict:
    return {"result": result_name(solution.result), "iterations": int(solution.stats["num_steps"])}


def run_size(n: int) -> dict:
    grid = Grid((n, n), boundary="dirichlet")
    a = thresholded_coefficient(n)
    operator = DiffusionOperator(grid, jnp.asarray(a))
    sparse_operator = operator.to_sparse()
    matrix = sparse_operator.to_scipy()
    b = np.ones(grid.size)
    b_field = jnp.ones(grid.shape)
    out = {"n": n, "unknowns": grid.size, "nnz": int(matrix.nnz), "fraction_a_12": float(np.mean(a == 12.0))}

    rows = {}
    for name in ("none", "jacobi"):
        preconditioner = None if name == "none" else Jacobi()
        inverse_diagonal = 1.0 / matrix.diagonal()
        # Jacobi as an elementwise product: the cheapest form scipy can apply.
        scipy_m = None if name == "none" else spla.LinearOperator(matrix.shape, matvec=lambda r: inverse_diagonal * r)
        u_scipy, info, scipy_iterations = scipy_cg(matrix, b, scipy_m)
        scipy_seconds = median_seconds(
            lambda: spla.cg(matrix, b, rtol=RTOL, M=scipy_m, maxiter=10 * b.size), repeats=REPEATS
        )

        solve = jaxpde_solve(ConjugateGradient(rtol=RTOL, preconditioner=preconditioner))
        compile_seconds = first_call_seconds(lambda: jax.block_until_ready(solve(operator, b_field)))
        solution = solve(operator, b_field)
        ours_seconds = median_seconds(lambda: jax.block_until_ready(solve(operator, b_field)), repeats=REPEATS)

        sparse_solve = jaxpde_solve(ConjugateGradient(rtol=RTOL, preconditioner=preconditioner))
        sparse_solution = sparse_solve(sparse_operator, jnp.ones(grid.size))
        sparse_seconds = median_seconds(
            lambda: jax.block_until_ready(sparse_solve(sparse_operator, jnp.ones(grid.size))), repeats=REPEATS
        )

        ours_iterations = int(solution.stats["num_steps"])
        row = {
            "scipy": {
                "iterations": scipy_iterations,
                "info": int(info),
                "seconds": scipy_seconds,
                "true_relative_residual": relative_residual(matrix, u_scipy, b),
            },
            "jaxpde_stencil": {
                **stats_of(solution),
                "seconds": ours_seconds,
                "first_call_seconds": compile_seconds,
                "true_relative_residual": relative_residual(matrix, solution.value, b),
            },
            "jaxpde_bcoo": {
                **stats_of(sparse_solution),
                "seconds": sparse_seconds,
                "true_relative_residual": relative_residual(matrix, sparse_solution.value, b),
            },
            "iteration_difference_percent": 100.0 * (ours_iterations - scipy_iterations) / scipy_iterations,
            "time_ratio_jaxpde_over_scipy": ours_seconds / scipy_seconds,
            "time_ratio_bcoo_over_scipy": sparse_seconds / scipy_seconds,
        }

        # lineax.CG as shipped (elementwise stopping test), float64 and float32.
        lineax_options = {}
        if name == "jacobi":
            diagonal = operator.diagonal().reshape(grid.shape)
            jacobi = lx.TaggedLinearOperator(lx.DiagonalLinearOperator(1.0 / diagonal), lx.positive_semidefinite_tag)
            lineax_options = {"preconditioner": jacobi}
        for dtype in (jnp.float64, jnp.float32):
            op = DiffusionOperator(grid, jnp.asarray(a, dtype))
            options = jax.tree_util.tree_map(lambda x: x.astype(dtype), lineax_options)
            stock = jax.jit(
                lambda op, b, options: lx.linear_solve(op, b, lx.CG(rtol=RTOL, atol=0.0), options=options, throw=False)
            )(op, jnp.ones(grid.shape, dtype), options)
            value = np.asarray(stock.value, np.float64)
            row[f"lineax_cg_{jnp.dtype(dtype).name}"] = {
                **stats_of(stock),
                "finite": bool(np.all(np.isfinite(value))),
                "true_relative_residual": relative_residual(matrix, value, b) if np.all(np.isfinite(value)) else None,
            }

        # float32: our CG to 1e-6, to working precision, and mixed-precision refinement to 1e-6.
        op32 = DiffusionOperator(grid, jnp.asarray(a, jnp.float32))
        b32 = jnp.ones(grid.shape, jnp.float32)
        float32 = {}
        for label, rtol in (("rtol_1e-6", RTOL), ("working_precision", 0.0)):
            solve32 = jaxpde_solve(ConjugateGradient(rtol=rtol, preconditioner=preconditioner))
            sol32 = solve32(op32, b32)
            seconds = median_seconds(lambda: jax.block_until_ready(solve32(op32, b32)), repeats=REPEATS)
            value = np.asarray(sol32.value, np.float64).ravel()
            float32[label] = {
                **stats_of(sol32),
                "seconds": seconds,
                "true_relative_residual": relative_residual(matrix, value, b),
                "relative_error_vs_float64": float(np.linalg.norm(value - u_scipy) / np.linalg.norm(u_scipy)),
            }
        refine = jaxpde_solve(
            MixedPrecisionRefinement(rtol=RTOL, inner=ConjugateGradient(rtol=1e-2, preconditioner=preconditioner))
        )
        refined = refine(operator, b_field)
        float32["mixed_precision_refinement"] = {
            "result": result_name(refined.result),
            "refinements": int(refined.stats["num_refinements"]),
            "inner_float32_iterations": int(refined.stats["num_steps"]),
            "seconds": median_seconds(lambda: jax.block_until_ready(refine(operator, b_field)), repeats=REPEATS),
            "true_relative_residual": relative_residual(matrix, refined.value, b),
        }
        # The floor: the exact (direct) solution rounded to float32.
        u_direct = spla.spsolve(matrix.tocsc(), b)
        float32["residual_of_rounded_exact_solution"] = relative_residual(matrix, u_direct.astype(np.float32), b)
        row["float32"] = float32
        rows[name] = row
    out["cg"] = rows

    u_direct = spla.splu(matrix.tocsc()).solve(b)
    out["direct_splu_seconds"] = median_seconds(lambda: spla.splu(matrix.tocsc()).solve(b), repeats=REPEATS)
    out["direct_true_relative_residual"] = relative_residual(matrix, u_direct, b)

    try:
        import pyamg
    except ImportError:
        out["amg"] = "pyamg not installed"
    else:

        def amg_solve():
            ml = pyamg.smoothed_aggregation_solver(matrix)
            residuals = []
            u = ml.solve(b, tol=RTOL, accel="cg", residuals=residuals)
            return u, residuals

        u_amg, residuals = amg_solve()
        out["amg"] = {
            "method": "pyamg smoothed aggregation, as CG preconditioner",
            "iterations": len(residuals) - 1,
            "seconds_setup_and_solve": median_seconds(amg_solve, repeats=REPEATS),
            "true_relative_residual": relative_residual(matrix, u_amg, b),
        }
    return out


def main() -> None:
    results = [run_size(n) for n in SIZES]
    # Rows for benchmarks/report.py: [work, jaxpde figure, compared with / target].
    summary = []
    for r in results:
        for name, row in r["cg"].items():
            ours, theirs = row["jaxpde_stencil"], row["scipy"]
            summary.append(
                [
                    f"Darcy {r['n']}², CG ({name}) to 1e-6, float64",
                    f"{ours['iterations']} it, {ours['seconds']:.3g} s",
                    f"scipy cg {theirs['iterations']} it, {theirs['seconds']:.3g} s "
                    f"(ratio {row['time_ratio_jaxpde_over_scipy']:.2f}, target ≤ 1)",
                ]
            )
    write_result(
        "elliptic_vs_scipy",
        {
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "work": "Darcy -div(a grad u) = 1 on (0,1)^2, u = 0 on the boundary, a in {3, 12} thresholded GRF, "
            "5-point harmonic-mean stencil; CG to ||b - Au|| <= 1e-6 ||b||",
            "summary": summary,
            "sizes": results,
        },
    )


if __name__ == "__main__":
    main()
