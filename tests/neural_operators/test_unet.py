"""U-Net: shapes in 1-D and 2-D; with periodic padding it commutes with circular shifts by
multiples of 2^levels cells (exactly: the pooling grids line up), with zero (Dirichlet) padding it
does not (the boundary is seen); bad inputs refused by name, a grid not divisible by 2^levels
included."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

from jaxpde.neural_operators._unet import UNet


@pytest.mark.slow  # the default suite's budget
def test_periodic_unet_commutes_with_shifts_and_the_zero_padded_one_sees_the_boundary():
    a = jax.random.normal(jax.random.key(1), (2, 8, 6))
    gaps = {}
    for padding in ("periodic", "zero"):
        model = eqx.filter_jit(UNet(2, 3, 2, width=2, levels=1, padding=padding, key=jax.random.key(0)))
        out = model(a)
        assert out.shape == (3, 8, 6)
        shifted = model(jnp.roll(a, (2, -4), axis=(1, 2)))
        gaps[padding] = float(jnp.max(jnp.abs(shifted - jnp.roll(out, (2, -4), axis=(1, 2)))) / jnp.max(jnp.abs(out)))
    assert gaps["periodic"] < 1e-5 and gaps["zero"] > 1e-2, gaps
    one_d = eqx.filter_eval_shape(lambda x: UNet(1, 1, 1, width=4, levels=3, key=jax.random.key(0))(x),
                                  jax.ShapeDtypeStruct((1, 24), jnp.float32))
    assert one_d.shape == (1, 24)


def test_bad_inputs_are_refused_by_name():
    # abstract weights (no compile): the checks come before any arithmetic
    model = eqx.filter_eval_shape(lambda: UNet(1, 1, 2, width=2, levels=2, key=jax.random.key(0)))
    with pytest.raises(ValueError, match=r"every spatial size of `a` must be divisible by 2\*\*levels = 4 \(levels=2"):
        model(jnp.zeros((1, 16, 10)))
    with pytest.raises(ValueError, match=r"`a` must be one sample of shape \(in_channels=1, 2 spatial axes\)"):
        model(jnp.zeros((2, 16, 16)))
    with pytest.raises(ValueError, match="`padding` must be one of"):
        UNet(1, 1, 2, padding="reflect", key=jax.random.key(0))
    with pytest.raises(ValueError, match="`ndim` must be 1 or 2"):
        UNet(1, 1, 3, key=jax.random.key(0))
