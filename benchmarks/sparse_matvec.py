"""Sparse mat-vec: jaxpde's `SparseOperator` (DIA and BCOO layouts) vs scipy's CSR ``A @ x``.

Work: the 5-point Darcy matrix ``-∇·(a∇u)`` (harmonic-mean faces, Dirichlet, ``a ∈ {3, 12}``
thresholded Gaussian field, as in `benchmarks/elliptic_vs_scipy.py`) at 64², 128² and 256²
interior nodes, float64, one vector ``x``.

Timed, medians over many calls in one process, NumPy/SciPy single-threaded (the setting a CG
user picks; see `benchmarks/elliptic_vs_scipy.py`) and XLA on its default CPU threads:

* ``scipy``: ``A @ x`` with ``A`` a `scipy.sparse.csr_matrix` (sorted indices).
* ``jaxpde``: ``jax.jit(lambda op, x: op.mv(x))`` — one mat-vec per call, dispatch included —
  for the default layout (DIA for a stencil) and for ``layout="bcoo"`` (the old mat-vec).
* ``in a loop``: 100 mat-vecs ``x ← A x / ‖A‖`` inside one compiled `lax.fori_loop` (the Krylov
  setting, no dispatch), divided by 100; scipy's figure is the same Python loop divided by 100.

Run: ``python benchmarks/sparse_matvec.py`` (writes ``results/sparse_matvec.json``).
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

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import median_seconds, write_result  # noqa: E402
from benchmarks.elliptic_vs_scipy import thresholded_coefficient  # noqa: E402
from jaxpde import Grid  # noqa: E402
from jaxpde.numerics.sparse import SparseOperator  # noqa: E402
from jaxpde.numerics.stencils import DiffusionOperator  # noqa: E402

SIZES = (64, 128, 256)
REPEATS = 200
LOOP = 100


def run_size(n: int) -> dict:
    grid = Grid((n, n), boundary="dirichlet")
    dia = DiffusionOperator(grid, jnp.asarray(thresholded_coefficient(n))).to_sparse()
    bcoo = SparseOperator(dia.matrix, dia.tags, layout="bcoo")
    matrix = dia.to_scipy()
    matrix.sort_indices()
    x = np.random.default_rng(0).standard_normal(grid.size)
    xj = jnp.asarray(x)
    scale = 1.0 / float(abs(matrix).sum(axis=1).max())

    mv = jax.jit(lambda op, v: op.mv(v))
    loop = jax.jit(lambda op, v: jax.lax.fori_loop(0, LOOP, lambda _, y: scale * op.mv(y), v))
    for op in (dia, bcoo):
        np.testing.assert_allclose(mv(op, xj), matrix @ x, rtol=1e-12, atol=1e-9)

    def scipy_loop():
        y = x
        for _ in range(LOOP):
            y = scale * (matrix @ y)
        return y

    np.testing.assert_allclose(loop(dia, xj), scipy_loop(), rtol=1e-9, atol=1e-12)
    seconds = {
        "scipy_csr": median_seconds(lambda: matrix @ x, repeats=REPEATS, warmup=5),
        "jaxpde_dia": median_seconds(lambda: mv(dia, xj).block_until_ready(), repeats=REPEATS, warmup=5),
        "jaxpde_bcoo": median_seconds(lambda: mv(bcoo, xj).block_until_ready(), repeats=REPEATS, warmup=5),
    }
    looped = {
        "scipy_csr": median_seconds(scipy_loop, repeats=9) / LOOP,
        "jaxpde_dia": median_seconds(lambda: loop(dia, xj).block_until_ready(), repeats=9) / LOOP,
        "jaxpde_bcoo": median_seconds(lambda: loop(bcoo, xj).block_until_ready(), repeats=9) / LOOP,
    }
    return {
        "n": n,
        "unknowns": grid.size,
        "nnz": int(matrix.nnz),
        "layout": dia.layout,
        "dia_offsets": list(dia.dia_offsets),
        "seconds_per_call": seconds,
        "seconds_per_matvec_in_loop": looped,
        "ratio_dia_over_scipy": seconds["jaxpde_dia"] / seconds["scipy_csr"],
        "ratio_bcoo_over_scipy": seconds["jaxpde_bcoo"] / seconds["scipy_csr"],
        "ratio_dia_over_scipy_in_loop": looped["jaxpde_dia"] / looped["scipy_csr"],
        "ratio_bcoo_over_scipy_in_loop": looped["jaxpde_bcoo"] / looped["scipy_csr"],
    }


def main() -> None:
    results = [run_size(n) for n in SIZES]
    summary = [
        [
            f"sparse mat-vec, 5-point Darcy {r['n']}², float64",
            f"DIA {r['seconds_per_call']['jaxpde_dia'] * 1e6:.0f} µs (ratio {r['ratio_dia_over_scipy']:.2f}; "
            f"in a CG-like loop {r['ratio_dia_over_scipy_in_loop']:.2f})",
            f"scipy CSR {r['seconds_per_call']['scipy_csr'] * 1e6:.0f} µs; BCOO ratio {r['ratio_bcoo_over_scipy']:.2f} "
            "(target ≤ 1 at 128², 256²)",
        ]
        for r in results
    ]
    write_result(
        "sparse_matvec",
        {
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "work": "y = A x, A the 5-point harmonic-mean Darcy matrix (a in {3, 12}), float64; "
            "medians of one jitted call, and of 100 mat-vecs in one compiled loop",
            "summary": summary,
            "sizes": results,
        },
    )


if __name__ == "__main__":
    main()
