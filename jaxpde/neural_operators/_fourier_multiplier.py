r"""A learned Fourier multiplier with a pointwise MLP and a low-pass projection, for 1D periodic fields.

For one sample ``u = (u(x_0), …, u(x_{s−1}))`` on a uniform periodic grid with discrete Fourier
coefficients ``û_m = Σ_j u(x_j) e^{−2πi jm/s}``, ``m = 0, …, ⌊s/2⌋`` (`jnp.fft.rfft`), and
``M`` = `modes`:

$$f = \mathcal F^{-1}\big[\,c_m\,\hat u_m\,\mathbb 1_{m<M}\big], \qquad
w(x_j) = \mathrm{MLP}\big(u(x_j),\, f(x_j)\big), \qquad
v = P w = \mathcal F^{-1}\big[\,\hat w_m\,\mathbb 1_{m<M}\big].$$

- ``c_m ∈ ℂ`` is a learned multiplier per retained mode — the Fourier layer of the FNO (Li et
  al., "Fourier Neural Operator for Parametric PDEs", ICLR 2021) with a single channel. It
  starts at ``c_m = 1`` (a plain low-pass filter). For a linear, translation-invariant
  evolution it is exactly the solution operator's symbol: ``c_m = e^{−ν(2πm/L)²t}`` for the
  heat equation on a period ``L``.
- The MLP (``2 → width → width → 1``, GELU) acts at every point alike, so it mixes the input
  with the filtered field and supplies the nonlinearity the multiplier cannot.
- ``P`` keeps the lowest ``M`` modes of the output: the target of a viscous problem is
  smooth, and without ``P`` the pointwise MLP would pass the input's small scales through.

The weights live on wavenumbers and at points, not on grid indices, so one model applies at
any resolution ``s`` with ``⌊s/2⌋ + 1 ≥ M`` (mode ``m`` means the same wave at every ``s``).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["FourierMultiplier"]


class FourierMultiplier(eqx.Module):
    r"""``v = P MLP(u, 𝓕⁻¹(c ⊙ û))``: a learned complex multiplier on the lowest `modes` Fourier
    modes, a pointwise MLP and the projection onto those modes (see the module docstring).

    **Arguments:**

    - `modes`: ``M ≥ 1``, the number of retained modes ``m = 0, …, M − 1``.
    - `width`: the hidden width of the pointwise MLP (two hidden layers, GELU).
    - `key`: the MLP's initialisation. The multiplier starts at ``c_m = 1``.

    One sample ``u`` of shape ``(s,)`` maps to ``(s,)``; batch with `jax.vmap`.

    ```python
    model = FourierMultiplier(modes=16, width=32, key=jax.random.key(0))
    v = jax.vmap(model)(u0)            # (batch, s) -> (batch, s)
    ```
    """

    multiplier: Float[Array, "modes 2"]  # real and imaginary parts of c_m
    mix: eqx.nn.MLP

    def __init__(self, modes: int, width: int, *, key: PRNGKeyArray):
        for name, value in (("modes", modes), ("width", width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"FourierMultiplier: `{name}` must be a positive integer, got {value!r}.")
        self.multiplier = jnp.zeros((modes, 2)).at[:, 0].set(1.0)
        self.mix = eqx.nn.MLP(2, 1, width, 2, activation=jax.nn.gelu, key=key)

    def __check_init__(self):
        shape = jnp.shape(self.multiplier)
        if len(shape) != 2 or shape[1] != 2 or shape[0] < 1:
            raise ValueError(f"FourierMultiplier: `multiplier` must have shape (modes, 2), got {shape}.")

    @property
    def modes(self) -> int:
        return self.multiplier.shape[0]

    def __call__(self, u: Float[Array, " s"]) -> Float[Array, " s"]:
        u = jnp.asarray(u)
        if u.ndim != 1 or not jnp.issubdtype(u.dtype, jnp.floating):
            raise ValueError(
                f"FourierMultiplier: `u` must be one real 1-d field of shape (s,) (vmap batches), got {u.dtype}{list(u.shape)}."
            )
        s = u.shape[0]
        if s // 2 + 1 < self.modes:
            raise ValueError(
                f"FourierMultiplier: `u` must resolve the {self.modes} modes, so s//2 + 1 >= {self.modes}; got s = {s}."
            )
        weights = self.multiplier[:, 0] + 1j * self.multiplier[:, 1]
        filtered = jnp.fft.irfft(jnp.fft.rfft(u)[: self.modes] * weights, n=s)
        mixed = jax.vmap(self.mix)(jnp.stack([u, filtered], axis=-1))[:, 0]
        return jnp.fft.irfft(jnp.fft.rfft(mixed)[: self.modes], n=s)
