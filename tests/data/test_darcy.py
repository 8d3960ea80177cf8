"""Darcy dataset: the discrete equation holds, u = 0 on the boundary, the two solvers agree, and the
constant-coefficient case converges to the analytic torsion function of the square."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse.linalg

from jaxpde.data import DarcyConfig, load_dataset
from jaxpde.grids import Grid
from jaxpde.numerics.stencils import DiffusionOperator

CONFIG = DarcyConfig(n_train=2, n_test=1, resolution=33, subsample=1)


@pytest.fixture(scope="module")
def cg_data():
    return load_dataset(CONFIG, cache=False, progress=False)


@pytest.fixture(scope="module")
def direct_data():
    return load_dataset(DarcyConfig(n_train=2, n_test=1, resolution=33, subsample=1, solver="direct"), cache=False, progress=False)


def _stencil_matrix(a):
    """The CG path's operator on the interior nodes, exported to scipy (float32 entries)."""
    n = a.shape[0]
    grid = Grid((n - 2, n - 2), boundary="dirichlet")
    return DiffusionOperator(grid, jnp.asarray(a[1:-1, 1:-1])).to_sparse().to_scipy()


def _relative_residual(a, u):
    """‖A u - f‖ / ‖f‖ of the interior equations, in float64 with the stencil's own matrix."""
    matrix = _stencil_matrix(a).astype(np.float64)
    residual = matrix @ u[1:-1, 1:-1].astype(np.float64).ravel() - 1.0
    return np.linalg.norm(residual) / np.sqrt(residual.size)


@pytest.mark.parametrize("which", ["cg_data", "direct_data"])
def test_solution_satisfies_the_discrete_equation(which, request):
    data = request.getfixturevalue(which)
    for split in ("train", "test"):
        for a, u in zip(data[split]["coefficient"], data[split]["solution"]):
            # float32 storage of u limits the residual to about cond(A)·eps32 ≈ 1e-5 here.
            assert _relative_residual(a, u) < 5e-5
            assert np.all(u[0] == 0) and np.all(u[-1] == 0) and np.all(u[:, 0] == 0) and np.all(u[:, -1] == 0)
            assert np.all(u[1:-1, 1:-1] > 0)  # maximum principle: f = 1 > 0


def test_coefficient_is_two_phase_with_random_boundary_values(cg_data):
    a = cg_data.train["coefficient"]
    assert set(np.unique(a)) == {3.0, 12.0}
    # The cosine (Neumann) series is random up to the boundary: both phases appear there.
    boundary = np.concatenate([a[:, 0].ravel(), a[:, -1].ravel(), a[:, :, 0].ravel(), a[:, :, -1].ravel()])
    assert set(np.unique(boundary)) == {3.0, 12.0}


def test_multigrid_and_direct_solvers_agree_to_float32_rounding(cg_data, direct_data):
    # Both solve the matrix the stencil's mv applies; the refined float32 multigrid solve is its
    # float32 rounding. (Before, the direct path solved the sparse export, whose diagonal is
    # rounded to float32 — a different matrix, 1e-6 away here — and the float32 solve stopped at
    # its floor.)
    np.testing.assert_array_equal(cg_data.train["coefficient"], direct_data.train["coefficient"])
    u_cg, u_direct = cg_data.train["solution"], direct_data.train["solution"]
    assert np.abs(u_cg - u_direct).max() < 3e-7 * np.abs(u_direct).max()


def _flux_form_solution(a):
    """An independent float64 solve of the flux-form matrix: the operator's float32 face weights,
    cast to float64, exported by the stencil's own assembly (its diagonal summed in float64)."""
    n = a.shape[0]
    operator = DiffusionOperator(Grid((n - 2, n - 2), boundary="dirichlet"), jnp.asarray(a[1:-1, 1:-1]))
    weights = tuple(np.asarray(w, np.float64) for w in operator.weights)
    with jax.enable_x64(True):
        wide = eqx.tree_at(lambda o: o.weights, operator, tuple(jnp.asarray(w) for w in weights))
        matrix = wide.to_sparse().to_scipy().tocsc()
    assert matrix.dtype == np.float64
    return scipy.sparse.linalg.spsolve(matrix, np.ones(matrix.shape[0])).reshape(n - 2, n - 2)


def test_direct_solver_solves_the_flux_form_matrix(direct_data):
    # The direct path solves the matrix of DiffusionOperator.mv (diagonal = the exact sum of the
    # float32 face weights): an independent float64 solve of it matches to float32 rounding.
    for a, u in zip(direct_data.train["coefficient"], direct_data.train["solution"]):
        expected = _flux_form_solution(a)
        np.testing.assert_allclose(u[1:-1, 1:-1], expected, rtol=2e-7, atol=0)
        # and not the float32-rounded export's (the old reference), which differs by ~1e-6 here
        rounded = scipy.sparse.linalg.spsolve(_stencil_matrix(a).astype(np.float64).tocsc(), np.ones(expected.size))
        assert np.abs(rounded.reshape(expected.shape) - expected).max() > 2e-7 * np.abs(expected).max()


def test_refinement_option_is_checked():
    with pytest.raises(ValueError, match="refinement"):
        DarcyConfig(n_train=1, n_test=0, resolution=33, subsample=1, refinement=-1)


def test_constant_coefficient_converges_to_the_torsion_function():
    """a ≡ 1: -Δu = 1 on the unit square, u(½, ½) = Σ_{m,n odd} 16 sin(mπ/2) sin(nπ/2) / (π⁴ m n (m² + n²))."""
    config = DarcyConfig(n_train=1, n_test=0, resolution=33, subsample=1, high=1.0, low=1.0, solver="direct")
    u = load_dataset(config, cache=False, progress=False).train["solution"][0]
    m = np.arange(1, 400, 2)
    M, N = np.meshgrid(m, m, indexing="ij")
    exact = np.sum(16 * np.sin(M * np.pi / 2) * np.sin(N * np.pi / 2) / (np.pi**4 * M * N * (M**2 + N**2)))
    assert abs(exact - 0.0736713) < 1e-6
    # Second-order scheme at h = 1/32: error ≈ 5.7e-5 (≈ C h² with C ≈ 0.06).
    assert abs(u[16, 16] - exact) < 1.5e-4


def test_subsampled_dataset_keeps_every_rth_node():
    fine = load_dataset(DarcyConfig(n_train=1, n_test=0, resolution=17, subsample=1, solver="direct"), cache=False, progress=False)
    coarse = load_dataset(DarcyConfig(n_train=1, n_test=0, resolution=17, subsample=4, solver="direct"), cache=False, progress=False)
    assert coarse.train["solution"].shape == (1, 5, 5)
    np.testing.assert_array_equal(coarse.train["coefficient"], fine.train["coefficient"][:, ::4, ::4])
    np.testing.assert_array_equal(coarse.train["solution"], fine.train["solution"][:, ::4, ::4])
    np.testing.assert_allclose(coarse.coordinates["x"], [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(fine.subsample(4).train["solution"], coarse.train["solution"])


def test_sine_basis_option_gives_the_upper_phase_on_the_boundary():
    config = DarcyConfig(n_train=1, n_test=0, resolution=17, subsample=1, coefficient_basis="sine", solver="direct")
    a = config.coefficient(jax.random.key(0))
    assert jnp.all(a[0] == 12.0) and jnp.all(a[:, -1] == 12.0)
    assert set(np.unique(np.asarray(a[1:-1, 1:-1]))) == {3.0, 12.0}


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="solver"):
        DarcyConfig(solver="lu")
    with pytest.raises(ValueError, match="coefficient_basis"):
        DarcyConfig(coefficient_basis="wavelet")
    with pytest.raises(ValueError, match="low"):
        DarcyConfig(low=-3.0)
    with pytest.raises(ValueError, match="resolution"):
        DarcyConfig(resolution=3, subsample=1)
    with pytest.raises(ValueError, match="tau"):
        DarcyConfig(tau=-1.0)
