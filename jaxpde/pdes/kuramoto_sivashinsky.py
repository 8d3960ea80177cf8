r"""The Kuramoto–Sivashinsky equation, periodic, in one to three dimensions.

Two standard forms:

- **convective** (1D only; the "fluid" form used by most learning papers):
  $$\partial_t u + u\,\partial_x u + \partial_x^2 u + \partial_x^4 u = 0;$$
- **gradient** (any dimension; the "combustion" form):
  $$\partial_t u + \tfrac12|\nabla u|^2 + \Delta u + \Delta^2 u = 0 .$$

In 1D they are related by $v = \partial_x u$. The negative diffusion injects energy at long
wavelengths, the fourth-order term removes it at short ones, and the nonlinearity carries it
between them; on a period $L \gtrsim 60$ (1D) the dynamics are spatio-temporally chaotic.

Fourier split: $\hat L = |k|^2 - |k|^4$ (``hyperdiffusion="biharmonic"``, the true $\Delta^2$) or
$\hat L = |k|^2 - \sum_i k_i^4$ (``"separable"``, $\sum_i \partial_i^4$ — what exponax uses in
2D/3D; identical in 1D). Nonlinear parts with the 2/3 rule:
$\hat{\mathcal N} = -\tfrac{ik}{2}\widehat{u^2}$ (convective) or
$\hat{\mathcal N} = -\tfrac12\widehat{(|\nabla u|^2 - \overline{|\nabla u|^2})}$ (gradient). In the
gradient form the spatial mean of $|\nabla u|^2$ is dropped: it only adds a spatially constant,
ever-growing drift to $u$ that never feeds back into $\nabla u$, so removing it keeps the mean of
$u$ fixed and the field bounded (``residual`` is the PDE itself, without this gauge choice).

References: Y. Kuramoto (1978); G. I. Sivashinsky (1977); Kassam & Trefethen (2005), §5.
"""

import equinox as eqx

from .. import autodiff
from ..grids import Grid
from ._base import AbstractSemiLinearPDE, check_space_time, require_grid, wavenumber_norm_squared
from ._nonlinear import Convection, GradientNorm

__all__ = ["KuramotoSivashinsky"]

_FORMS = ("convective", "gradient")
_HYPERDIFFUSION = ("biharmonic", "separable")


class KuramotoSivashinsky(AbstractSemiLinearPDE):
    r"""Kuramoto–Sivashinsky on a periodic grid (see the module docstring for the two forms).

    **Arguments:**

    - `grid`: a periodic `Grid` (1D for the convective form; 1–3D for the gradient form).
    - `form`: ``"convective"`` or ``"gradient"``; default convective in 1D, gradient otherwise.
    - `hyperdiffusion`: ``"biharmonic"`` ($\Delta^2$, default) or ``"separable"``
      ($\sum_i\partial_i^4$).
    - `dealias_fraction`: fraction of the spectrum kept for the quadratic term (2/3 rule).
    """

    grid: Grid
    form: str = eqx.field(static=True)
    hyperdiffusion: str = eqx.field(static=True)
    dealias_fraction: float = eqx.field(static=True)

    def __init__(
        self,
        grid: Grid,
        form: str | None = None,
        hyperdiffusion: str = "biharmonic",
        dealias_fraction: float = 2 / 3,
    ):
        self.grid = require_grid("KuramotoSivashinsky", grid)
        form = ("convective" if grid.ndim == 1 else "gradient") if form is None else form
        if form not in _FORMS:
            raise ValueError(f"KuramotoSivashinsky: `form` must be one of {_FORMS}, got {form!r}.")
        if form == "convective" and grid.ndim != 1:
            raise ValueError(
                f"KuramotoSivashinsky: the convective form u u_x is one-dimensional; for a {grid.ndim}D "
                "grid use form='gradient'."
            )
        if hyperdiffusion not in _HYPERDIFFUSION:
            raise ValueError(
                f"KuramotoSivashinsky: `hyperdiffusion` must be one of {_HYPERDIFFUSION}, got {hyperdiffusion!r}."
            )
        self.form = form
        self.hyperdiffusion = hyperdiffusion
        self.dealias_fraction = float(dealias_fraction)

    def linear_symbol(self):
        k2 = wavenumber_norm_squared(self.grid)
        if self.hyperdiffusion == "biharmonic":
            k4 = k2 * k2
        else:
            k4 = sum(k**4 for k in self.grid.wavenumbers(real=True))
        return k2 - k4

    def nonlinear_term(self) -> Convection | GradientNorm:
        r"""$-\partial_x(u^2/2)$ (convective) or $-\tfrac12|\nabla u|^2$ (gradient form)."""
        if self.form == "convective":
            return Convection(self.grid, 1.0, self.dealias_fraction)
        return GradientNorm(self.grid, 1.0, self.dealias_fraction)

    def nonlinear(self, t, u_hat, args=None):
        return self.nonlinear_term()(u_hat)

    def residual(self, u_fn, x, t=None, args=None):
        ndim = self.grid.ndim
        x, t = check_space_time("KuramotoSivashinsky.residual", x, t, ndim)
        lap = autodiff.laplacian(u_fn)
        if self.hyperdiffusion == "biharmonic":
            fourth = autodiff.laplacian(lap)(x, t)
        else:
            fourth = sum(autodiff.derivative(u_fn, i, 4)(x, t) for i in range(ndim))
        nonlinear = self.nonlinear_term().pointwise(u_fn)(x, t)
        return autodiff.time_derivative(u_fn)(x, t) + lap(x, t) + fourth - nonlinear
