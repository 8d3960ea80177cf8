"""The linear-system families: shapes, SPD operators (dense eigenvalues), the closed-form entries of
each family, determinism per key, the synthetic A = M Mᵀ + αI against its dense product."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from jaxpde.data import load_dataset
from jaxpde.data._linear_systems import (
    AnisotropicDiffusionConfig,
    DarcySystemConfig,
    HeatStepConfig,
    LognormalDiffusionConfig,
    PoissonSystemConfig,
    SyntheticSPDConfig,
)
from jaxpde.numerics.stencils import DiffusionOperator

GRID_FAMILIES = (DarcySystemConfig, PoissonSystemConfig, LognormalDiffusionConfig, AnisotropicDiffusionConfig,
                 HeatStepConfig)
SIZE = 10


def _dense(operator):
    return np.asarray(operator.as_matrix(), np.float64)


@pytest.mark.parametrize("family", GRID_FAMILIES, ids=lambda c: c.__name__)
def test_grid_family_shapes_spd_and_determinism(family):
    config = family(size=SIZE, n_train=2, n_test=1)
    key = jax.random.key(3)
    sample_of = jax.jit(config.sample)  # one compilation instead of a dozen eager ones
    sample = sample_of(key)
    coefficient_shape = (2, SIZE, SIZE) if family is AnisotropicDiffusionConfig else (SIZE, SIZE)
    assert sample["coefficient"].shape == coefficient_shape and sample["rhs"].shape == (SIZE, SIZE)
    again = sample_of(key)
    other = sample_of(jax.random.key(4))
    for name in sample:
        np.testing.assert_array_equal(sample[name], again[name])
    assert not np.array_equal(sample["rhs"], other["rhs"]) or not np.array_equal(
        sample["coefficient"], other["coefficient"])
    operator, b = config.system(sample)
    assert operator.in_structure().shape == (SIZE, SIZE) and b.shape == (SIZE, SIZE)
    assert lx.is_positive_semidefinite(operator) and lx.is_symmetric(operator)
    dense = _dense(operator)
    np.testing.assert_allclose(dense, dense.T, rtol=0, atol=1e-6 * np.abs(dense).max())
    assert np.linalg.eigvalsh(dense).min() > 0


@pytest.mark.slow
def test_operators_of_a_vmapped_batch_apply_sample_by_sample():
    config = AnisotropicDiffusionConfig(size=SIZE)
    batch = jax.vmap(config.sample)(jax.random.split(jax.random.key(5), 2))
    mv = jax.jit(jax.vmap(lambda s, u: config.operator(s).mv(u)))(batch, batch["rhs"])
    single = config.operator({k: v[1] for k, v in batch.items()}).mv(batch["rhs"][1])
    np.testing.assert_allclose(mv[1], single, rtol=1e-5, atol=1e-5 * float(jnp.abs(single).max()))


@pytest.mark.slow
def test_closed_form_entries_of_each_family():
    key = jax.random.key(0)
    h2 = 1.0 / (SIZE + 1) ** 2
    darcy = jax.jit(DarcySystemConfig(size=SIZE).sample)(key)
    assert set(np.unique(darcy["coefficient"])) == {3.0, 12.0} and np.all(darcy["rhs"] == 1.0)

    poisson = PoissonSystemConfig(size=SIZE)
    # -Δ_h: 4/h² on the diagonal.
    np.testing.assert_allclose(np.diag(_dense(poisson.operator(jax.jit(poisson.sample)(key)))), 4 / h2, rtol=1e-5)

    lognormal = jax.jit(LognormalDiffusionConfig(size=32, gamma=2.0).sample)(key)["coefficient"]
    assert np.all(lognormal > 0) and lognormal.max() / lognormal.min() > 1e2

    heat = HeatStepConfig(size=SIZE, dt=2e-3)
    sample = jax.jit(heat.sample)(key)
    stiffness = _dense(DiffusionOperator(heat.grid(), sample["coefficient"]))
    np.testing.assert_allclose(_dense(heat.operator(sample)), np.eye(SIZE**2) + 2e-3 * stiffness, rtol=2e-5, atol=1e-5)

    aniso = AnisotropicDiffusionConfig(size=SIZE, epsilon_low=1e-2, epsilon_high=1e-2)
    sample = jax.jit(aniso.sample)(key)
    a = np.asarray(sample["coefficient"][0], np.float64)
    np.testing.assert_allclose(sample["coefficient"][1], 1e-2 * a, rtol=1e-5)
    dense = _dense(aniso.operator(sample))
    # Entry between (i, j) and its x-neighbour (i+1, j): -hm(a)/h²; its y-neighbour (i, j+1): -ε hm(a)/h².
    i, j = 3, 4
    row = i * SIZE + j
    np.testing.assert_allclose(-dense[row, row + SIZE] * h2, 2 * a[i, j] * a[i + 1, j] / (a[i, j] + a[i + 1, j]), rtol=1e-5)
    np.testing.assert_allclose(-dense[row, row + 1] * h2, 1e-2 * 2 * a[i, j] * a[i, j + 1] / (a[i, j] + a[i, j + 1]),
                               rtol=1e-5)


def test_synthetic_spd_is_m_mt_plus_alpha_and_the_pattern_is_fixed():
    config = SyntheticSPDConfig(size=120, density=0.02, shift=1e-3, n_train=1, n_test=0)
    first, second = config.sample(jax.random.key(0)), config.sample(jax.random.key(1))
    assert first["factor"].shape == (config.factor_nnz,) and first["rhs"].shape == (120,)
    assert config.factor_nnz == round(0.02 * 120**2)
    np.testing.assert_array_equal(config.sample(jax.random.key(0))["factor"], first["factor"])
    a1, a2 = config.operator(first), config.operator(second)
    np.testing.assert_array_equal(a1.matrix.indices, a2.matrix.indices)  # one pattern, values per sample
    m = _dense(config.factor(first))
    dense = _dense(a1)
    np.testing.assert_allclose(dense, m @ m.T + 1e-3 * np.eye(120), rtol=1e-5, atol=1e-5)
    assert np.linalg.eigvalsh(dense).min() > 0 and lx.is_positive_semidefinite(a1)


@pytest.mark.slow
def test_synthetic_spd_is_differentiable_in_the_factor_values():
    # d/dM_e of ‖A‖_F² = 4 (M Mᵀ M)_e + 4α M_e (at M's pattern).
    config = SyntheticSPDConfig(size=120, density=0.02, shift=1e-3, n_train=1, n_test=0)
    first = config.sample(jax.random.key(0))
    m = _dense(config.factor(first))
    rows, cols = config.pattern()[:2]

    def frobenius(values):
        return jnp.sum(config.operator({"factor": values, "rhs": first["rhs"]}).matrix.data ** 2)

    expected = 4 * (m @ m.T @ m + 1e-3 * m)[rows, cols]
    np.testing.assert_allclose(jax.grad(frobenius)(first["factor"]), expected, rtol=1e-4, atol=1e-4)


def test_synthetic_spd_at_the_paper_size_is_one_percent_dense():
    config = SyntheticSPDConfig()
    a_indices = config.pattern()[2]
    assert config.size == 10_000 and config.factor_nnz == 100_000
    assert 0.009 < len(a_indices) / 10_000**2 < 0.011


def test_load_dataset_and_validation(tmp_path):
    data = load_dataset(DarcySystemConfig(size=8, n_train=3, n_test=1), cache_dir=tmp_path, progress=False)
    assert data.train["coefficient"].shape == (3, 8, 8) and data.test["rhs"].shape == (1, 8, 8)
    with pytest.raises(ValueError, match="`size` must be an integer >= 2"):
        DarcySystemConfig(size=1)
    with pytest.raises(ValueError, match="`epsilon_high` must be >= epsilon_low"):
        AnisotropicDiffusionConfig(epsilon_low=0.1, epsilon_high=0.01)
    with pytest.raises(ValueError, match="`shift` must be a positive float"):
        SyntheticSPDConfig(shift=0.0)
    with pytest.raises(ValueError, match="`dt` must be a positive float"):
        HeatStepConfig(dt=-1.0)
