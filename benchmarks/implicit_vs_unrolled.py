"""Gradients through solves: implicit differentiation vs unrolled reverse mode, memory and time.

Work (float64, n = 4096 unknowns):

* **CG**: ``x = A(c)⁻¹ b`` with ``A(c) = -D₂ + σ diag(1 + c)`` (``D₂`` the 1-D Dirichlet second
  difference, matrix-free; ``c = ½ sin``), loss ``Σ w·x``, gradient in ``(c, b)``. The shift ``σ`` is
  calibrated so that CG needs about 100, 500 and 2000 iterations to ``‖r‖ ≤ 1e-10 ‖b‖``.
  *implicit*: `jaxpde.implicit.linear_solve` (jaxpde's ConjugateGradient; lineax's adjoint
  rule: one transposed CG solve). *unrolled*: `jaxpde.preconditioners.unrolled_pcg` with the
  same number of iterations, differentiated by reverse mode through the scan. Both gradients
  are also compared with the dense-LU gradient: the derivative of the CG iterates converges
  more slowly than the iterates themselves, so the unrolled gradient is the less accurate one.
* **Fixed point**: ``z = ρ S z + ½(1 - ρ) tanh z + θ`` (``S z = (z_{i-1} + z_{i+1})/2``; Lipschitz
  ``(1 + ρ)/2 < 1``; ``ρ``
  calibrated so that plain iteration needs 100, 500 and 2000 steps to 1e-10), loss ``Σ w·z``,
  gradient in ``θ``. *implicit*: `jaxpde.implicit.fixed_point` with
  `optimistix.FixedPointIteration` forward and the matrix-free GMRES adjoint. *unrolled*: the
  same number of plain iterations in `jax.lax.scan`, reverse mode. *checkpointed*: optimistix's
  `RecursiveCheckpointAdjoint` through the same iteration (``O(log k)`` checkpoints).
* **diffrax adjoints** on one small problem: ``u_t = ν u_xx + θ u - u³`` on 64 points, Tsit5,
  constant step 0.01 to t = 5 (500 steps): `RecursiveCheckpointAdjoint`, `BacksolveAdjoint`,
  `DirectAdjoint`, gradient in ``θ``; with diffusion (``ν = 0.01``: the backward solve of
  `BacksolveAdjoint` runs the diffusion backwards in time and blows up) and without (``ν = 0``).

**Peak memory** is XLA's own account of the compiled gradient: ``memory_analysis()`` of
``jax.jit(grad).lower(...).compile()``, the sum of temporary, argument and output buffer bytes
(no allocation is made to measure it; temporaries are what reverse mode stores). **Time** is the
median wall time of the compiled gradient (3 calls after one warm-up), on the shared CPU.

Run: ``python benchmarks/implicit_vs_unrolled.py`` (writes ``results/implicit_vs_unrolled.json``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import lineax as lx  # noqa: E402
import numpy as np  # noqa: E402
import optimistix as optx  # noqa: E402

from benchmarks.common import median_seconds, write_result  # noqa: E402
from jaxpde.implicit import fixed_point, linear_solve  # noqa: E402
from jaxpde.numerics.krylov import ConjugateGradient  # noqa: E402
from jaxpde.preconditioners import unrolled_pcg  # noqa: E402

N = 4096
ITERATIONS = (100, 500, 2000)
TOL = 1e-10
REPEATS = 3


def peak_memory(fn, *args) -> dict:
    """XLA's memory account of ``jax.jit(fn)`` compiled for `args` (bytes)."""
    analysis = jax.jit(fn).lower(*args).compile().memory_analysis()
    parts = {
        "temp": int(analysis.temp_size_in_bytes),
        "argument": int(analysis.argument_size_in_bytes),
        "output": int(analysis.output_size_in_bytes),
    }
    return {"peak_bytes": sum(parts.values()), **parts}


def timed(fn, *args) -> float:
    compiled = jax.jit(fn)
    return median_seconds(lambda: jax.block_until_ready(compiled(*args)), repeats=REPEATS)


def _relative_difference(a, b) -> float:
    a, b = jnp.concatenate([jnp.ravel(x) for x in a]), jnp.concatenate([jnp.ravel(x) for x in b])
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


# ------------------------------------------------------------------------------------------ CG
def _operator(c, sigma):
    def mv(x):
        padded = jnp.pad(x, 1)
        return 2 * x - padded[:-2] - padded[2:] + sigma * (1 + c) * x

    return lx.FunctionLinearOperator(mv, jax.ShapeDtypeStruct((N,), jnp.float64), lx.positive_semidefinite_tag)


C = 0.5 * jnp.sin(jnp.arange(N) * 0.01)
B = jnp.cos(jnp.arange(N) * 0.37)


def _cg_iterations(sigma: float) -> int:
    # sigma as an array, not a Python constant: one compilation for the whole calibration
    solution = linear_solve(_operator(C, jnp.asarray(sigma)), B, rtol=TOL, max_steps=20_000)
    return int(solution.num_steps)


def _calibrate(count, target: int, low: float, high: float, increasing: bool) -> tuple[float, int]:
    """Bisection in log-space on a parameter whose iteration count is monotone."""
    best = None
    for _ in range(30):
        middle = float(np.sqrt(low * high))
        steps = count(middle)
        if best is None or abs(steps - target) < abs(best[1] - target):
            best = (middle, steps)
        if abs(steps - target) <= max(2, target // 50):
            break
        if (steps < target) == increasing:
            low = middle
        else:
            high = middle
    return best


def cg_case(target: int) -> dict:
    sigma, iterations = _calibrate(_cg_iterations, target, 1e-9, 1.0, increasing=False)
    c, b = C, B
    w = jnp.sin(jnp.arange(N) * 0.11)
    cg = ConjugateGradient(rtol=TOL, max_steps=4 * iterations + 100)

    def implicit(c, b):
        return jnp.sum(w * linear_solve(_operator(c, sigma), b, solver=cg).value)

    def unrolled(c, b):
        return jnp.sum(w * unrolled_pcg(_operator(c, sigma), b, None, iterations)[0])

    def dense(c, b):  # the reference: LU of the assembled matrix
        matrix = jax.vmap(_operator(c, sigma).mv, out_axes=1)(jnp.eye(N))
        return jnp.sum(w * jnp.linalg.solve(matrix, b))

    grads = {
        name: jax.jit(jax.grad(fn, argnums=(0, 1)))(c, b)
        for name, fn in (("implicit", implicit), ("unrolled", unrolled), ("dense", dense))
    }
    out = {"target_iterations": target, "cg_iterations": iterations, "shift_sigma": sigma}
    for name, fn in (("implicit", implicit), ("unrolled", unrolled)):
        grad = jax.grad(fn, argnums=(0, 1))
        out[name] = {**peak_memory(grad, c, b), "seconds": timed(grad, c, b)}
    out["gradient_relative_difference"] = _relative_difference(grads["implicit"], grads["unrolled"])
    # which one is right: both against the dense LU gradient
    out["implicit_gradient_error_vs_dense"] = _relative_difference(grads["implicit"], grads["dense"])
    out["unrolled_gradient_error_vs_dense"] = _relative_difference(grads["unrolled"], grads["dense"])
    out["memory_ratio_unrolled_over_implicit"] = out["unrolled"]["peak_bytes"] / out["implicit"]["peak_bytes"]
    return out


# --------------------------------------------------------------------------------- fixed point
def _map(z, args):
    rho, theta = args
    return rho * 0.5 * (jnp.roll(z, 1) + jnp.roll(z, -1)) + 0.5 * (1 - rho) * jnp.tanh(z) + theta


THETA = 0.5 * jnp.sin(jnp.arange(N) * 0.05) + 0.1


def _plain_iterations(rho: float) -> int:
    solver = optx.FixedPointIteration(rtol=TOL, atol=TOL)
    return int(fixed_point(_map, jnp.zeros(N), (jnp.asarray(rho), THETA), solver=solver, max_steps=20_000).num_steps)


def fixed_point_case(target: int) -> dict:
    # count grows with rho: calibrate 1 - rho (decreasing count as it grows)
    gap, iterations = _calibrate(lambda g: _plain_iterations(1 - g), target, 1e-5, 0.9, increasing=False)
    rho = 1 - gap
    w = jnp.cos(jnp.arange(N) * 0.13)
    solver = optx.FixedPointIteration(rtol=TOL, atol=TOL)

    def implicit(theta):
        return jnp.sum(w * fixed_point(_map, jnp.zeros(N), (rho, theta), solver=solver, max_steps=4 * iterations, adjoint_rtol=1e-12).value)

    def checkpointed(theta):
        value = fixed_point(_map, jnp.zeros(N), (rho, theta), solver=solver, max_steps=4 * iterations, adjoint="unrolled").value
        return jnp.sum(w * value)

    def unrolled(theta):
        z, _ = jax.lax.scan(lambda z, _: (_map(z, (rho, theta)), None), jnp.zeros(N), None, length=iterations)
        return jnp.sum(w * z)

    methods = (("implicit", implicit), ("unrolled", unrolled), ("checkpointed", checkpointed))
    grads = {name: jax.jit(jax.grad(fn))(THETA) for name, fn in methods}
    out = {"target_iterations": target, "fixed_point_iterations": iterations, "contraction_rho": rho}
    for name, fn in methods:
        grad = jax.grad(fn)
        out[name] = {**peak_memory(grad, THETA), "seconds": timed(grad, THETA)}
    out["gradient_relative_difference"] = _relative_difference([grads["implicit"]], [grads["unrolled"]])
    out["gradient_relative_difference_checkpointed"] = _relative_difference([grads["checkpointed"]], [grads["unrolled"]])
    out["memory_ratio_unrolled_over_implicit"] = out["unrolled"]["peak_bytes"] / out["implicit"]["peak_bytes"]
    return out


# ------------------------------------------------------------------------------------- diffrax
def diffrax_case(nu: float) -> dict:
    points, t1, dt = 64, 5.0, 0.01
    h = 1.0 / (points + 1)
    u0 = jnp.sin(jnp.pi * h * jnp.arange(1, points + 1))

    def rhs(t, u, theta):
        padded = jnp.pad(u, 1)
        return nu * (padded[:-2] - 2 * u + padded[2:]) / h**2 + theta * u - u**3

    def loss(adjoint):
        def fn(theta):
            solution = diffrax.diffeqsolve(
                diffrax.ODETerm(rhs), diffrax.Tsit5(), 0.0, t1, dt, u0, theta,
                adjoint=adjoint, max_steps=int(round(t1 / dt)) + 1,
            )
            return jnp.sum(solution.ys[-1] ** 2)

        return fn

    theta = 0.5 + 0.1 * jnp.cos(jnp.arange(points) * 0.2)
    adjoints = {
        "RecursiveCheckpointAdjoint": diffrax.RecursiveCheckpointAdjoint(),
        "BacksolveAdjoint": diffrax.BacksolveAdjoint(),
        "DirectAdjoint": diffrax.DirectAdjoint(),
    }
    grads = {name: jax.jit(jax.grad(loss(adjoint)))(theta) for name, adjoint in adjoints.items()}
    out = {"work": f"u_t = {nu} u_xx + θu - u³, {points} points, Tsit5, dt {dt} to t = {t1} ({int(t1 / dt)} steps), grad in θ"}
    for name, adjoint in adjoints.items():
        grad = jax.grad(loss(adjoint))
        out[name] = {
            **peak_memory(grad, theta),
            "seconds": timed(grad, theta),
            "gradient_relative_difference_vs_checkpoint": _relative_difference([grads[name]], [grads["RecursiveCheckpointAdjoint"]]),
        }
    forward = loss(diffrax.RecursiveCheckpointAdjoint())
    out["forward_seconds"] = timed(forward, theta)
    return out


def main() -> None:
    load = os.getloadavg()
    cg = [cg_case(k) for k in ITERATIONS]
    fp = [fixed_point_case(k) for k in ITERATIONS]
    dx = diffrax_case(0.01)
    dx_reaction = diffrax_case(0.0)
    mib = 2.0**20
    summary = [
        [
            f"gradient through CG, n = {N}, {r['cg_iterations']} iterations",
            f"implicit {r['implicit']['peak_bytes'] / mib:.1f} MiB, {r['implicit']['seconds'] * 1e3:.0f} ms",
            f"unrolled {r['unrolled']['peak_bytes'] / mib:.1f} MiB, {r['unrolled']['seconds'] * 1e3:.0f} ms "
            f"({r['memory_ratio_unrolled_over_implicit']:.0f}x memory; gradients differ by {r['gradient_relative_difference']:.1e}; "
            f"vs dense LU: implicit {r['implicit_gradient_error_vs_dense']:.1e}, unrolled {r['unrolled_gradient_error_vs_dense']:.1e})",
        ]
        for r in cg
    ] + [
        [
            f"gradient through a fixed point, n = {N}, {r['fixed_point_iterations']} iterations",
            f"implicit {r['implicit']['peak_bytes'] / mib:.1f} MiB, {r['implicit']['seconds'] * 1e3:.0f} ms",
            f"unrolled {r['unrolled']['peak_bytes'] / mib:.1f} MiB, {r['unrolled']['seconds'] * 1e3:.0f} ms "
            f"({r['memory_ratio_unrolled_over_implicit']:.0f}x memory; gradients differ by {r['gradient_relative_difference']:.1e}); "
            f"optimistix checkpointed {r['checkpointed']['peak_bytes'] / mib:.1f} MiB, {r['checkpointed']['seconds'] * 1e3:.0f} ms",
        ]
        for r in fp
    ] + [
        [
            "diffrax adjoints, " + d["work"],
            ", ".join(f"{name} {d[name]['peak_bytes'] / 1024:.0f} KiB {d[name]['seconds'] * 1e3:.0f} ms" for name in
                      ("RecursiveCheckpointAdjoint", "BacksolveAdjoint", "DirectAdjoint")),
            f"forward {d['forward_seconds'] * 1e3:.0f} ms; Backsolve gradient differs by "
            f"{d['BacksolveAdjoint']['gradient_relative_difference_vs_checkpoint']:.1e}",
        ]
        for d in (dx, dx_reaction)
    ]
    write_result(
        "implicit_vs_unrolled",
        {
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "xla_threads": "XLA CPU default (all cores)",
            "load_average_at_start": load,
            "load_average_at_end": os.getloadavg(),
            "memory_measurement": "jax.jit(grad).lower(args).compile().memory_analysis(): temp + argument + output "
            "bytes (XLA's buffer assignment for the compiled gradient; nothing allocated to measure it)",
            "time_measurement": f"median of {REPEATS} calls of the compiled gradient after one warm-up, wall clock, "
            "shared 2-core CPU",
            "work": f"float64, n = {N}; CG to ‖r‖ ≤ {TOL} ‖b‖ (shift calibrated to the iteration count) vs "
            "unrolled_pcg with as many iterations; plain fixed-point iteration to rtol = atol = "
            f"{TOL} (contraction calibrated) vs lax.scan of as many iterations, and optimistix "
            "RecursiveCheckpointAdjoint",
            "summary": summary,
            "cg": cg,
            "fixed_point": fp,
            "diffrax": dx,
            "diffrax_reaction_only": dx_reaction,
        },
    )


if __name__ == "__main__":
    main()
