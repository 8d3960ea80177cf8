"""Operator losses: relative L2 against NumPy, the spectral H1 norm against closed forms of
trigonometric fields (1D and 2D with channels), the fit-form batch loss with a decoder."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxpde.neural_operators._losses import operator_loss, relative_h1_loss, relative_l2_loss


def test_relative_l2_matches_numpy():
    rng = np.random.default_rng(0)
    p, t = rng.normal(size=(2, 5, 7)), rng.normal(size=(2, 5, 7))
    expected = np.linalg.norm(p - t) / np.linalg.norm(t)
    assert float(relative_l2_loss(p, t)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("length", [2 * math.pi, 3.0])
def test_h1_of_sine_waves_is_the_closed_form(length):
    # t = sin(k1 x), e = eps sin(k3 x) with k_m = 2π m / L: ‖e‖²_H1/‖t‖²_H1 = eps²(1 + k3²)/(1 + k1²).
    s, eps = 32, 0.01
    x = np.arange(s) * length / s
    k1, k3 = 2 * math.pi / length, 6 * math.pi / length
    t = np.sin(k1 * x)
    p = t + eps * np.sin(k3 * x)
    got = float(relative_h1_loss(p, t, spatial_ndim=1, lengths=length))
    assert got == pytest.approx(eps * math.sqrt((1 + k3**2) / (1 + k1**2)), rel=1e-5)
    # the L2 error of the same pair has no gradient weight
    assert float(relative_l2_loss(p, t)) == pytest.approx(eps, rel=1e-5)


def test_h1_in_2d_with_channels_counts_every_mode_once():
    # Unit square: t = (cos 2πx, sin 2πy cos 4πx) over two channels; e = eps cos(2π(x + 3y)) in channel 0.
    # Parseval, as grid means: mean cos² = 1/2, mean sin² cos² = 1/4; each weighted by 1 + |k|².
    s, eps = 16, 1e-2
    x, y = np.meshgrid(np.arange(s) / s, np.arange(s) / s, indexing="ij")
    t = np.stack([np.cos(2 * np.pi * x), np.sin(2 * np.pi * y) * np.cos(4 * np.pi * x)])
    e = np.zeros_like(t)
    e[0] = eps * np.cos(2 * np.pi * (x + 3 * y))
    k2 = lambda *m: (2 * np.pi) ** 2 * sum(mi**2 for mi in m)  # noqa: E731
    norm_t = 0.5 * (1 + k2(1)) + 0.25 * (1 + k2(2, 1))
    norm_e = eps**2 * 0.5 * (1 + k2(1, 3))
    got = float(relative_h1_loss(t + e, t, spatial_ndim=2))
    assert got == pytest.approx(math.sqrt(norm_e / norm_t), rel=1e-4)


def test_operator_loss_is_the_batch_mean_after_decoding():
    def model(a):
        return 2 * a

    rng = np.random.default_rng(1)
    a = jnp.asarray(rng.normal(size=(3, 1, 8)), jnp.float32)
    u = jnp.asarray(rng.normal(size=(3, 1, 8)), jnp.float32)
    loss = operator_loss(decode=lambda v: v + 1.0)(model, (a, u), None)
    expected = np.mean([np.linalg.norm(2 * a[i] + 1 - u[i]) / np.linalg.norm(u[i]) for i in range(3)])
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    h1, terms = operator_loss("h1", spatial_ndim=1)(model, (a, u), None)
    assert float(terms["relative_l2"]) == pytest.approx(
        np.mean([np.linalg.norm(2 * a[i] - u[i]) / np.linalg.norm(u[i]) for i in range(3)]), rel=1e-5
    )
    assert float(h1) > 0


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="one shape"):
        relative_l2_loss(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="spatial_ndim"):
        relative_h1_loss(np.ones(4), np.ones(4), spatial_ndim=2)
    with pytest.raises(ValueError, match="lengths"):
        relative_h1_loss(np.ones(4), np.ones(4), spatial_ndim=1, lengths=(1.0, 2.0))
    with pytest.raises(ValueError, match="norm"):
        operator_loss("h2")
    with pytest.raises(ValueError, match="spatial_ndim"):
        operator_loss("h1")
