"""The PINN references against independent ground truth: the Cole–Hopf integral for Burgers,
time-step convergence for Allen–Cahn, the closed form for convection; and the cache."""

import math
import numpy as np
import pytest

from jaxpde.pinns._references import (
    allen_cahn_reference,
    burgers_reference,
    convection_reference,
)

NU = 0.01 / math.pi


def cole_hopf_integral(x, t, nu):
    r"""Burgers from $u_0 = -\sin\pi x$ by the Cole–Hopf transform, the integrals by the trapezoid
    rule on a fine grid of the heat kernel's support (log-sum-exp against overflow)."""
    s = math.sqrt(2 * nu * t)
    eta = np.linspace(-12 * s, 12 * s, 20001)
    y = np.asarray(x)[:, None] - eta[None]
    log_weight = -np.cos(np.pi * y) / (2 * np.pi * nu) - eta[None] ** 2 / (4 * nu * t)
    weight = np.exp(log_weight - log_weight.max(axis=1, keepdims=True))
    return -(np.sin(np.pi * y) * weight).sum(1) / weight.sum(1)


def test_burgers_matches_cole_hopf_early_times(tmp_path):
    # A coarse solve is exact where the solution is still smooth (t <= 0.2, before the front steepens).
    kwargs = dict(num_x=65, num_t=11, solve_points=256, steps_per_save=50, cache_dir=tmp_path)
    ref = burgers_reference(**kwargs)
    assert ref.u.shape == (11, 65) and ref.x[0] == -1 and ref.x[-1] == 1
    np.testing.assert_allclose(ref.u[0], -np.sin(np.pi * ref.x), atol=1e-12)
    for i in (1, 2):
        exact = cole_hopf_integral(ref.x, ref.t[i], NU)
        assert np.linalg.norm(ref.u[i] - exact) / np.linalg.norm(exact) < 1e-6
    # Odd initial data stay odd, so the periodic solve satisfies the Dirichlet condition u(±1) = 0.
    np.testing.assert_allclose(ref.u[:, [0, -1]], 0, atol=1e-10)
    np.testing.assert_allclose(ref.u, -ref.u[:, ::-1], atol=1e-10)


@pytest.mark.slow  # two solves: ~4 s of CPU
def test_cache_reads_back_and_recomputes_a_damaged_file(tmp_path):
    kwargs = dict(num_x=65, num_t=3, solve_points=256, steps_per_save=250, cache_dir=tmp_path)
    ref = burgers_reference(**kwargs)
    (path,) = tmp_path.glob("reference-burgers-*.npz")
    np.testing.assert_array_equal(burgers_reference(**kwargs).u, ref.u)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.warns(UserWarning, match="invalid"):
        np.testing.assert_array_equal(burgers_reference(**kwargs).u, ref.u)


@pytest.mark.slow
def test_burgers_default_matches_cole_hopf_everywhere(tmp_path):
    ref = burgers_reference(cache_dir=tmp_path)
    for i in (25, 32, 50, 100):  # t = 0.32 is the steepest front (t ≈ 1/π)
        exact = cole_hopf_integral(ref.x, ref.t[i], NU)
        assert np.linalg.norm(ref.u[i] - exact) / np.linalg.norm(exact) < 2e-5, i


@pytest.mark.slow
def test_allen_cahn_converges_in_time(tmp_path):
    # ETDRK4 is fourth order: halving the step changes the solution by ~1/16 of the previous change.
    kwargs = dict(num_x=33, num_t=3, solve_points=128, cache_dir=tmp_path)
    coarse, medium, fine = (allen_cahn_reference(**kwargs, steps_per_save=s) for s in (50, 100, 200))
    np.testing.assert_allclose(fine.u[0], fine.x**2 * np.cos(np.pi * fine.x), atol=1e-12)
    d1 = np.abs(coarse.u - fine.u).max()
    d2 = np.abs(medium.u - fine.u).max()
    assert d2 < d1 / 8 and d2 < 1e-6
    np.testing.assert_allclose(fine.u[:, 0], fine.u[:, -1])  # periodic
    # The cache: read back unchanged; a damaged file is recomputed with a warning; one file per setting.
    (path,) = [p for p in tmp_path.glob("reference-allen-cahn-*.npz") if np.load(p)["u"].shape == (3, 33)
               and str(np.load(p)["setting"]).count('"steps_per_save": 200')]
    np.testing.assert_array_equal(allen_cahn_reference(**kwargs, steps_per_save=200).u, fine.u)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.warns(UserWarning, match="invalid"):
        redone = allen_cahn_reference(**kwargs, steps_per_save=200)
    np.testing.assert_array_equal(redone.u, fine.u)
    assert len(list(tmp_path.glob("reference-allen-cahn-*.npz"))) == 3


@pytest.mark.slow
def test_an_unresolved_solve_is_refused_not_cached(tmp_path):
    with pytest.raises(FloatingPointError, match="solve_points"):
        burgers_reference(num_x=17, num_t=3, solve_points=64, steps_per_save=5, cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.npz"))


@pytest.mark.slow
def test_allen_cahn_default_is_resolved(tmp_path):
    fine = allen_cahn_reference(cache_dir=tmp_path)
    coarse = allen_cahn_reference(solve_points=1024, steps_per_save=100, cache_dir=tmp_path)
    assert np.linalg.norm(coarse.u - fine.u) / np.linalg.norm(fine.u) < 1e-5
    assert fine.u.shape == (201, 513) and np.abs(fine.u).max() < 1.01


def test_convection_is_the_travelling_sine():
    ref = convection_reference(30.0, num_x=9, num_t=5)
    x, t = ref.points()
    np.testing.assert_allclose(ref.u.reshape(-1), np.sin(np.asarray(x[:, 0]) - 30 * np.asarray(t)), atol=1e-6)
    assert ref.relative_l2(ref.u) == 0


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: burgers_reference(num_x=100, solve_points=256), "solve_points"),
        (lambda: burgers_reference(viscosity=-1.0), "viscosity"),
        (lambda: allen_cahn_reference(num_t=1), "num_t"),
        (lambda: convection_reference(float("nan")), "beta"),
    ],
)
def test_bad_arguments_are_named(call, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        call()
