"""Kuramoto–Sivashinsky rollouts: jaxpde's ETDRK2 against exponax 0.2.0 on the same work.

Work (float32, the same scheme on both sides):

- 1D: 256 points, domain length 60, dt 0.1, 64 trajectories x 1000 steps;
- 2D: 128 x 128, same domain and dt, 50 trajectories x 200 steps.

Both sides run Cox–Matthews ETD2RK with 16 contour points of radius 1, the 2/3 rule keeping
the same modes, and the same equation:

- 1D: exponax's `KuramotoSivashinskyConservative` (u_t + (u^2/2)_x + u_xx + u_xxxx = 0) and
  jaxpde's `KuramotoSivashinsky(form="convective")`;
- 2D: exponax's `KuramotoSivashinsky` (combustion form u_t + |grad u|^2/2 + lap u + sum_i d_i^4 u = 0,
  mean of |grad u|^2 removed) and jaxpde's `KuramotoSivashinsky(form="gradient",
  hyperdiffusion="separable")`.

exponax's dealiasing mask keeps |m| <= floor(2/3 * (N//2) - 1) (84 of 128 at N = 256); jaxpde's
`dealias_fraction` keeps |m| < fraction * N / 2, so the fraction is set to keep the same modes.

Timed variants (first call = compile + one run; run = median over rounds in which every variant
runs once, interleaved; compile estimate = first call - run), each a `jax.jit` of a
`jax.vmap` over the trajectories:

- final state only: ``exponax.repeat`` | jaxpde ``etdrk.solve`` (diffrax, `StepTo`) |
  jaxpde ``etdrk.rollout`` (lean `lax.scan` in Fourier space);
- whole trajectory: ``exponax.rollout`` | jaxpde ``etdrk.solve`` with ``SaveAt(steps=True)`` |
  ``etdrk.rollout(save_every=1)``.

Agreement: KS at L = 60 is chaotic, so float32 rounding differences (a few ulp after one step)
grow by orders of magnitude over 1000 steps. The script therefore reports the float32
differences after 1, 10 and all steps, and the same comparison in float64, where rounding is
small enough for the full-length difference to measure the schemes themselves.

Run: ``python benchmarks/spectral_vs_exponax.py`` (writes ``results/spectral_vs_exponax.json``).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import diffrax  # noqa: E402
import exponax  # noqa: E402

from benchmarks.common import first_call_seconds, median_seconds, write_result  # noqa: E402
from jaxpde import Grid  # noqa: E402
from jaxpde.numerics import etdrk  # noqa: E402
from jaxpde.pdes import KuramotoSivashinsky  # noqa: E402
from jaxpde.pdes._base import dealias_mask  # noqa: E402

LENGTH, DT, CONTOUR_POINTS = 60.0, 0.1, 16
CASES = {
    "ks_1d": dict(ndim=1, num_points=256, trajectories=64, steps=1000),
    "ks_2d": dict(ndim=2, num_points=128, trajectories=50, steps=200),
}


def exponax_kept_modes(num_points: int, fraction: float = 2 / 3) -> int:
    """Largest |m| kept by exponax's dealiasing mask (its cutoff is inclusive)."""
    return math.floor(fraction * (num_points // 2) - 1)


def build(ndim: int, num_points: int):
    """The exponax stepper and the matching jaxpde PDE (in the current default dtype)."""
    kept = exponax_kept_modes(num_points)
    fraction = (kept + 0.5) / (num_points / 2)
    grid = Grid((num_points,) * ndim, lengths=LENGTH)
    if ndim == 1:
        stepper = exponax.stepper.KuramotoSivashinskyConservative(
            1, LENGTH, num_points, DT, order=2, num_circle_points=CONTOUR_POINTS, circle_radius=1.0
        )
        pde = KuramotoSivashinsky(grid, form="convective", dealias_fraction=fraction)
    else:
        stepper = exponax.stepper.KuramotoSivashinsky(
            ndim, LENGTH, num_points, DT, order=2, num_circle_points=CONTOUR_POINTS, circle_radius=1.0
        )
        pde = KuramotoSivashinsky(grid, form="gradient", hyperdiffusion="separable", dealias_fraction=fraction)
    mine = np.asarray(dealias_mask(pde.grid, pde.dealias_fraction))
    theirs = np.asarray(stepper._integrator._nonlinear_fun.dealiasing_mask[0])
    assert np.array_equal(mine, theirs), "dealiasing masks differ"
    return stepper, pde


def initial_conditions(key, ndim: int, num_points: int, trajectories: int, modes: int = 4):
    """Smooth random fields: Gaussian coefficients on the Fourier modes 1..`modes` per axis, mean 0."""
    x = jnp.arange(num_points) * (LENGTH / num_points)
    phase = 2 * jnp.pi * x / LENGTH
    m = jnp.arange(1, modes + 1)
    basis = jnp.concatenate([jnp.sin(m[:, None] * phase[None]), jnp.cos(m[:, None] * phase[None])])
    keys = jax.random.split(key, ndim)
    if ndim == 1:
        c = jax.random.normal(keys[0], (trajectories, 2 * modes))
        return c @ basis
    c = jax.random.normal(keys[0], (trajectories, 2 * modes, 2 * modes)) / 2
    return jnp.einsum("bij,ix,jy->bxy", c, basis, basis)


def runners(stepper, pde, steps: int):
    solver = etdrk.ETDRK2(num_contour_points=CONTOUR_POINTS, contour_radius=1.0)
    t1 = steps * DT

    def diffrax_final(u):
        return etdrk.solve(pde, u, t1, DT, solver).ys[-1]

    def diffrax_trajectory(u):
        return etdrk.solve(pde, u, t1, DT, solver, saveat=diffrax.SaveAt(steps=True)).ys

    final = {
        "exponax": jax.jit(jax.vmap(lambda u: exponax.repeat(stepper, steps)(u[None])[0])),
        "jaxpde_diffrax": jax.jit(jax.vmap(diffrax_final)),
        "jaxpde_rollout": jax.jit(jax.vmap(lambda u: etdrk.rollout(pde, u, DT, steps, solver))),
    }
    trajectory = {
        "exponax": jax.jit(jax.vmap(lambda u: exponax.rollout(stepper, steps)(u[None])[:, 0])),
        "jaxpde_diffrax": jax.jit(jax.vmap(diffrax_trajectory)),
        "jaxpde_rollout": jax.jit(jax.vmap(lambda u: etdrk.rollout(pde, u, DT, steps, solver, save_every=1))),
    }
    return final, trajectory


def time_variants(fns: dict, u0, repeats: int) -> dict:
    """First call (compile + one run) of each variant, then `repeats` rounds of one call each.

    Interleaving the variants round by round spreads the load changes of shared cores evenly
    over them, so their ratios are fairer than back-to-back medians.
    """
    calls = {name: (lambda fn=fn: jax.block_until_ready(fn(u0))) for name, fn in fns.items()}
    first = {name: first_call_seconds(call) for name, call in calls.items()}
    runs = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            runs[name].append(median_seconds(call, repeats=1, warmup=0))
    out = {}
    for name in calls:
        run_s = float(np.median(runs[name]))
        out[name] = {
            "first_call_s": first[name],
            "run_s": run_s,
            "run_s_all": runs[name],
            # The first call compiles and runs once; its excess over a steady run estimates compilation.
            "compile_s_estimate": max(first[name] - run_s, 0.0),
        }
        print(f"  {name:16s} first call {first[name]:7.3f} s   run {run_s:7.3f} s", flush=True)
    for name in calls:
        if name != "exponax":
            out[name]["run_ratio_vs_exponax"] = out[name]["run_s"] / out["exponax"]["run_s"]
            out[name]["first_call_ratio_vs_exponax"] = first[name] / first["exponax"]
    return out


def differences(stepper, pde, u0, horizons) -> dict:
    """Max |jaxpde - exponax| / max |exponax| after each number of steps."""
    solver = etdrk.ETDRK2(num_contour_points=CONTOUR_POINTS, contour_radius=1.0)
    out = {}
    for steps in horizons:
        ref = jax.jit(jax.vmap(lambda u: exponax.repeat(stepper, steps)(u[None])[0]))(u0)
        scale = float(jnp.max(jnp.abs(ref)))
        via_solve = jax.jit(jax.vmap(lambda u: etdrk.solve(pde, u, steps * DT, DT, solver).ys[-1]))(u0)
        via_rollout = jax.jit(jax.vmap(lambda u: etdrk.rollout(pde, u, DT, steps, solver)))(u0)
        out[str(steps)] = {
            "field_scale": scale,
            "jaxpde_diffrax_rel_max_diff": float(jnp.max(jnp.abs(via_solve - ref))) / scale,
            "jaxpde_rollout_rel_max_diff": float(jnp.max(jnp.abs(via_rollout - ref))) / scale,
        }
    return out


def main(repeats: dict | None = None) -> None:
    repeats = {"ks_1d": 7, "ks_2d": 3} if repeats is None else repeats
    results = {
        "work": {
            name: {**case, "domain_length": LENGTH, "dt": DT, "scheme": "ETDRK2 (Cox-Matthews)", "contour_points": CONTOUR_POINTS}
            for name, case in CASES.items()
        },
        "dtype": "float32 (timings); float32 and float64 (differences)",
    }
    key = jax.random.PRNGKey(0)
    for name, case in CASES.items():
        ndim, n, batch, steps = case["ndim"], case["num_points"], case["trajectories"], case["steps"]
        print(f"{name}: {batch} trajectories x {steps} steps, {n}^{ndim}", flush=True)
        stepper, pde = build(ndim, n)
        u0 = initial_conditions(key, ndim, n, batch).astype(jnp.float32)
        final, trajectory = runners(stepper, pde, steps)
        print(" final state only", flush=True)
        timing_final = time_variants(final, u0, repeats[name])
        print(" whole trajectory", flush=True)
        timing_traj = time_variants(trajectory, u0, repeats[name])
        print(" differences (float32)", flush=True)
        diff32 = differences(stepper, pde, u0, (1, 10, steps))
        print(" differences (float64)", flush=True)
        with jax.enable_x64(True):
            stepper64, pde64 = build(ndim, n)
            u64 = initial_conditions(key, ndim, n, batch).astype(jnp.float64)[:8]
            diff64 = differences(stepper64, pde64, u64, (steps,))
        results[name] = {
            "final_state": timing_final,
            "trajectory": timing_traj,
            "differences_float32": diff32,
            "differences_float64_8_trajectories": diff64,
        }
        print(f"  float32: {diff32}\n  float64: {diff64}", flush=True)
    results["notes"] = (
        "Ratios are jaxpde / exponax (below 1 means jaxpde is faster). first_call_s includes "
        "compilation. Timings are medians on shared CPU cores; compare ratios within one run. "
        "KS at L=60 is chaotic: float32 differences of a few ulp after one step grow over the "
        "rollout; the float64 comparison isolates the scheme from rounding."
    )
    results["summary"] = summary_rows(results)
    write_result("spectral_vs_exponax", results)


def summary_rows(results: dict) -> list[list[str]]:
    """Rows for benchmarks/report.py: [work, jaxpde figure, compared with / target]."""
    rows = []
    for name, case in CASES.items():
        timing = results[name]["final_state"]
        dims = "×".join([str(case["num_points"])] * case["ndim"])
        last = str(case["steps"])
        agreement = results[name]["differences_float64_8_trajectories"][last]
        rows.append(
            [
                f"{case['ndim']}D KS {dims}, {case['trajectories']} traj × {case['steps']} steps, ETDRK2 float32",
                f"rollout {timing['jaxpde_rollout']['run_s']:.3g} s, diffrax solve {timing['jaxpde_diffrax']['run_s']:.3g} s",
                f"exponax {timing['exponax']['run_s']:.3g} s (ratios {timing['jaxpde_rollout']['run_ratio_vs_exponax']:.2f} / "
                f"{timing['jaxpde_diffrax']['run_ratio_vs_exponax']:.2f}, target ≤ 1); float64 results agree to "
                f"{max(agreement['jaxpde_rollout_rel_max_diff'], agreement['jaxpde_diffrax_rel_max_diff']):.1e}",
            ]
        )
    return rows


if __name__ == "__main__":
    main()
