"""A stiff method-of-lines problem through diffrax's implicit solver: dense LU vs `Preconditioned` Krylov.

Work: ``u_t = Δu - u³ + s(x, y)`` on ``(0, 1)²``, ``u = 0`` on the boundary, ``u(0) = 0``,
``s = 50 sin(πx) sin(2πy) + 20``, the 5-point Laplacian on ``n²`` interior points (stiffness
``8/h² ≈ 8·10³`` at 31², ``3·10⁴`` at 63²), float64, integrated to ``t = 0.05`` by
`diffrax.Kvaerno5` (ESDIRK, 5th order) with a PID controller (rtol 1e-6, atol 1e-8). Each
implicit stage is a Newton solve whose Jacobian ``I - γ h J`` diffrax hands over untagged:

- ``lu``: diffrax's default root finder (`VeryChord`, dense LU of the materialised Jacobian) —
  31² only (the dense matrix at 63² is 3969² and the factorisation dominates everything);
- ``cg``: `optimistix.Newton` with ``Preconditioned(None, method="cg", structure="spd")``;
- ``cg_jacobi``: the same with ``Jacobi(stencil_reach=1)`` — the Jacobian's exact diagonal from
  9 coloured mat-vecs (`jaxpde.numerics.preconditioning.diagonal`) instead of ``n²`` columns;
- ``cg_multigrid``: the same with `jaxpde.numerics.multigrid.GeometricMultigrid`, rebuilt
  from the Jacobian at every Newton iteration (the preconditioner runs inside the solver's
  ``init``, and Newton calls ``linear_solve`` afresh each iteration);
- ``cg_multigrid_frozen``: the same multigrid held fixed,
  `jaxpde.preconditioners.FrozenPreconditioner` built once from the reference operator
  ``I + γ h_ref (-Δ_h)`` (``γ`` Kvaerno5's diagonal, ``h_ref = --frozen-h``, default ``1e-3``,
  the geometric middle of the accepted steps ``1.7e-4 … 6.6e-3``) and reused by every Newton
  iteration, stage and step;
- ``chord_cg``: diffrax's own `VeryChord` root finder (the Jacobian, so ``M``, built once per
  step) with a Krylov solver. Measured: it fails (recorded) with a ``TypeError`` inside
  `VeryChord.step`'s *unfiltered* ``lax.stop_gradient`` of the linear solver's state, which for
  any Krylov solver holds the matrix-free operator, whose closure-converted function is a
  ``Jaxpr`` leaf (`VeryChord.init` filters the same state; LU's state is arrays only).

Krylov iterations are counted by a wrapper solver (a `jax.debug.callback` adding each solve's
``num_steps``); wall time is the median of `--repeats` runs after one compiling run; the final
states are compared with the 31² LU run (and at 63² with unpreconditioned CG). One process, one
run per configuration; thread counts recorded.

    python benchmarks/stiff_reaction_diffusion.py [--sizes 31 63] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import diffrax  # noqa: E402
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import lineax as lx  # noqa: E402
import numpy as np  # noqa: E402
import optimistix as optx  # noqa: E402

from benchmarks.common import write_result  # noqa: E402
from jaxpde import Grid  # noqa: E402
from jaxpde.numerics.multigrid import GeometricMultigrid  # noqa: E402
from jaxpde.numerics.preconditioning import Jacobi  # noqa: E402
from jaxpde.numerics.stencils import DiffusionOperator  # noqa: E402
from jaxpde.preconditioners._frozen import FrozenPreconditioner  # noqa: E402
from jaxpde.preconditioners._solver import Preconditioned  # noqa: E402

T1, RTOL, ATOL, LINEAR_RTOL = 0.05, 1e-6, 1e-8, 1e-8
_COUNT = [0]


class Counted(lx.AbstractLinearSolver):
    """`inner`, adding each solve's ``num_steps`` to a host-side counter."""

    inner: lx.AbstractLinearSolver

    def init(self, operator, options):
        return self.inner.init(operator, options)

    def compute(self, state, vector, options):
        solution, result, stats = self.inner.compute(state, vector, options)
        jax.debug.callback(lambda k: _COUNT.__setitem__(0, _COUNT[0] + int(k)), stats["num_steps"])
        return solution, result, stats

    def transpose(self, state, options):
        return self.inner.transpose(state, options)

    def conj(self, state, options):
        return self.inner.conj(state, options)

    def assume_full_rank(self):
        return self.inner.assume_full_rank()


def problem(n):
    laplacian = DiffusionOperator(Grid((n, n), boundary="dirichlet"), 1.0, dtype=jnp.float64)  # -Δ_h
    s = jnp.linspace(0.0, 1.0, n + 2)[1:-1]
    x, y = jnp.meshgrid(s, s, indexing="ij")
    source = 50.0 * jnp.sin(jnp.pi * x) * jnp.sin(2 * jnp.pi * y) + 20.0
    return lambda t, u, args: -laplacian.mv(u) - u**3 + source


def solvers(n, frozen_h):
    out = {}
    if n <= 31:
        out["lu"] = diffrax.Kvaerno5()
    newton = lambda linear: optx.Newton(rtol=RTOL, atol=ATOL, linear_solver=Counted(linear))  # noqa: E731
    pcg = lambda preconditioner: Preconditioned(preconditioner, rtol=LINEAR_RTOL, structure="spd")  # noqa: E731
    out["cg"] = diffrax.Kvaerno5(root_finder=newton(pcg(None)))
    out["cg_jacobi"] = diffrax.Kvaerno5(root_finder=newton(pcg(Jacobi(stencil_reach=1))))
    # diffrax's Jacobian carries no grid, so the boundary kind is declared (this problem's).
    out["cg_multigrid"] = diffrax.Kvaerno5(root_finder=newton(pcg(GeometricMultigrid(boundary="dirichlet"))))
    grid = Grid((n, n), boundary="dirichlet")
    gamma = float(diffrax.Kvaerno5.tableau.a_diagonal[1])
    reference = DiffusionOperator(grid, gamma * frozen_h, shift=1.0, dtype=jnp.float64)  # I + γ h_ref (-Δ_h)
    frozen = eqx.filter_jit(FrozenPreconditioner)(GeometricMultigrid(), reference)
    out["cg_multigrid_frozen"] = diffrax.Kvaerno5(root_finder=newton(pcg(frozen)))
    # diffrax's own root finder (the Jacobian, so M, built once per step): fails with any Krylov
    # solver (see the module docstring); recorded with its error.
    chord = lambda linear: diffrax.with_stepsize_controller_tols(diffrax.VeryChord)(linear_solver=Counted(linear))  # noqa: E731
    out["chord_cg"] = diffrax.Kvaerno5(root_finder=chord(pcg(None)))
    return out


def run(rhs, solver, n):
    solve = eqx.filter_jit(
        lambda: diffrax.diffeqsolve(
            diffrax.ODETerm(rhs), solver, t0=0.0, t1=T1, dt0=1e-4, y0=jnp.zeros((n, n)),
            stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL), max_steps=4096,
        )
    )
    start = time.perf_counter()
    solution = jax.block_until_ready(solve())
    first = time.perf_counter() - start
    return solve, solution, first


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[31, 63])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--frozen-h", type=float, default=1e-3, help="h_ref of the frozen multigrid's reference operator")
    args = parser.parse_args()
    sizes, summary = {}, []
    for n in args.sizes:
        rhs = problem(n)
        variants = solvers(n, args.frozen_h)
        rows, finals = {}, {}
        for name, solver in variants.items():
            try:
                solve, solution, first = run(rhs, solver, n)
            except Exception as error:  # noqa: BLE001 — a failing variant is recorded, not fatal
                rows[name] = {"error": f"{type(error).__name__}: {str(error)[:500]}", "traceback": traceback.format_exc()[-2000:]}
                continue
            times, counts = [], []
            for _ in range(args.repeats):
                _COUNT[0] = 0
                start = time.perf_counter()
                jax.block_until_ready(solve())
                times.append(time.perf_counter() - start)
                counts.append(_COUNT[0])
            finals[name] = np.asarray(solution.ys[-1])
            rows[name] = {
                "result": str(solution.result),
                "ode_steps": int(solution.stats["num_steps"]),
                "accepted_steps": int(solution.stats["num_accepted_steps"]),
                "krylov_iterations": counts[0] if name != "lu" else None,
                "krylov_iterations_per_run": counts,
                "median_seconds": statistics.median(times),
                "all_seconds": times,
                "first_call_seconds": first,
            }
        reference = "lu" if "lu" in finals else "cg"
        for name, final in finals.items():
            if name != reference and reference in finals:
                scale = float(np.max(np.abs(finals[reference])))
                rows[name][f"max_relative_difference_to_{reference}"] = float(np.max(np.abs(final - finals[reference])) / scale)
        sizes[str(n)] = rows
        for name in ("cg_jacobi", "cg_multigrid", "cg_multigrid_frozen"):
            base = rows.get("cg", {})
            row = rows.get(name, {})
            if "median_seconds" in row and "median_seconds" in base:
                other = (
                    f"no preconditioner: {base['krylov_iterations']} it, {base['median_seconds']:.3f} s "
                    f"(iterations {row['krylov_iterations'] / base['krylov_iterations']:.2f}x, time "
                    f"{row['median_seconds'] / base['median_seconds']:.2f}x)"
                )
                if "lu" in rows and "median_seconds" in rows["lu"]:
                    other += f"; diffrax default (dense LU) {rows['lu']['median_seconds']:.2f} s"
                label = {
                    "cg_jacobi": "Jacobi(stencil_reach=1)",
                    "cg_multigrid": "GeometricMultigrid rebuilt every Newton iteration",
                    "cg_multigrid_frozen": f"FrozenPreconditioner(GeometricMultigrid) from I + γ·{args.frozen_h:g}·(-Δ_h)",
                }[name]
                finder = "Newton"
                summary.append([
                    f"Stiff 2-D reaction–diffusion {n}², Kvaerno5 + {finder}, Preconditioned CG with {label}, float64",
                    f"{row['krylov_iterations']} Krylov it, {row['median_seconds']:.3f} s",
                    other,
                ])
    write_result(
        "stiff_reaction_diffusion",
        {
            "work": {"equation": "u_t = Δu - u³ + s, Dirichlet, 5-point", "t1": T1, "controller_rtol": RTOL,
                     "controller_atol": ATOL, "linear_rtol": LINEAR_RTOL, "dtype": "float64",
                     "repeats": args.repeats, "frozen_reference_h": args.frozen_h},
            "threads": {"cpu_count": os.cpu_count(), "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
                        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
                        # the machine is shared: the load says how much of it this run had
                        "load_average_1_5_15_min_at_end": list(os.getloadavg())},
            "sizes": sizes,
            "summary": summary,
        },
    )


if __name__ == "__main__":
    main()
