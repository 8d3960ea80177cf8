r"""Two-dimensional incompressible Navier–Stokes in vorticity form on the periodic box.

$$\partial_t\omega + \mathbf u\cdot\nabla\omega = \nu\Delta\omega - \alpha\,\omega + f,
\qquad \mathbf u = (\partial_y\psi, -\partial_x\psi), \qquad -\Delta\psi = \omega,$$

with $x$ the first grid axis and $y$ the second. $\alpha \ge 0$ is a linear (Ekman) drag.
Forcings:

- ``"fno"``: $f = A\,(\sin 2\pi(x/L_x + y/L_y) + \cos 2\pi(x/L_x + y/L_y))$, $A = 0.1$ — the
  forcing of the FNO paper's dataset (unit torus, $\nu = 10^{-3}$);
- ``"kolmogorov"``: the velocity forcing $A\sin(2\pi n y/L_y)\,\mathbf e_x$, whose curl is the
  vorticity forcing $f = -A\,(2\pi n/L_y)\cos(2\pi n y/L_y)$ ($A = 1$, $n = 4$ by default; usually
  with drag $\alpha = 0.1$);
- ``"none"``.

Fourier split: $\hat L = -\nu|k|^2 - \alpha$ and
$\hat{\mathcal N} = -\widehat{\mathbf u\cdot\nabla\omega} + \hat f$, the advection evaluated
pseudo-spectrally with the 2/3 rule ($\hat\psi = \hat\omega/|k|^2$, $\hat\psi_0 = 0$).

**Exact solutions** (``exact_solution``): every flow with $\omega$ a function of one phase
$k\cdot x$ has $\mathbf u\cdot\nabla\omega = 0$, so the PDE becomes linear.
Without forcing: the Taylor–Green vortex of unit vorticity amplitude,
$\omega = \cos(k_x x)\cos(k_y y)\,e^{-(\nu(k_x^2 + k_y^2) + \alpha)t}$, $k = 2\pi/L$
(here $\omega \propto \psi$, so the Jacobian vanishes too). With either forcing,
the laminar flow started from rest, $\omega = f\,(1 - e^{-\lambda t})/\lambda$,
$\lambda = \nu|k_f|^2 + \alpha$.

``residual`` takes the **stream function** $\psi(x, t)$ (the PINN unknown for this form, since
$\mathbf u$ is non-local in $\omega$).

References: Z. Li et al., "Fourier Neural Operator for Parametric PDEs" (ICLR 2021);
D. Kochkov et al., "Machine learning–accelerated computational fluid dynamics" (PNAS 2021).
"""

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..grids import Grid
from .. import autodiff
from ._base import (
    AbstractSemiLinearPDE,
    check_space_time,
    dealias_mask,
    odd_wavenumbers,
    require_grid,
    require_nonnegative,
    require_positive,
    wavenumber_norm_squared,
)

__all__ = ["NavierStokes2D"]

_FORCINGS = ("none", "fno", "kolmogorov")


class NavierStokes2D(AbstractSemiLinearPDE):
    r"""2D vorticity equation on a periodic grid (see the module docstring).

    **Arguments:**

    - `grid`: a 2D periodic `Grid` (axis 0 is $x$, axis 1 is $y$).
    - `viscosity`: $\nu > 0$ (default $10^{-3}$).
    - `drag`: linear drag $\alpha \ge 0$ (default 0).
    - `forcing`: ``"none"``, ``"fno"`` or ``"kolmogorov"``.
    - `forcing_amplitude`: $A$; default 0.1 for ``"fno"``, 1 for ``"kolmogorov"``.
    - `forcing_wavenumber`: $n$ of the Kolmogorov forcing (default 4).
    - `dealias_fraction`: fraction of the spectrum kept for the advection term (2/3 rule).
    """

    grid: Grid
    viscosity: float | Array
    drag: float | Array
    forcing_amplitude: float | Array
    forcing: str = eqx.field(static=True)
    forcing_wavenumber: int = eqx.field(static=True)
    dealias_fraction: float = eqx.field(static=True)

    def __init__(
        self,
        grid: Grid,
        viscosity: float | Array = 1e-3,
        drag: float | Array = 0.0,
        forcing: str = "none",
        forcing_amplitude: float | Array | None = None,
        forcing_wavenumber: int = 4,
        dealias_fraction: float = 2 / 3,
    ):
        self.grid = require_grid("NavierStokes2D", grid, ndim=(2,))
        self.viscosity = require_positive("NavierStokes2D", "viscosity", viscosity)
        self.drag = require_nonnegative("NavierStokes2D", "drag", drag)
        if forcing not in _FORCINGS:
            raise ValueError(f"NavierStokes2D: `forcing` must be one of {_FORCINGS}, got {forcing!r}.")
        if not (isinstance(forcing_wavenumber, int) and forcing_wavenumber >= 1):
            raise ValueError(
                f"NavierStokes2D: `forcing_wavenumber` must be a positive integer, got {forcing_wavenumber!r}."
            )
        if forcing_amplitude is None:
            forcing_amplitude = {"none": 0.0, "fno": 0.1, "kolmogorov": 1.0}[forcing]
        if forcing != "none":
            modes = (1, 1) if forcing == "fno" else (0, forcing_wavenumber)
            if any(m >= dealias_fraction * n / 2 for m, n in zip(modes, grid.shape)):
                raise ValueError(
                    f"NavierStokes2D: the {forcing!r} forcing (modes {modes}) is not resolved by a grid of "
                    f"shape {grid.shape} after dealiasing; use more points."
                )
        self.forcing = forcing
        self.forcing_amplitude = forcing_amplitude
        self.forcing_wavenumber = forcing_wavenumber
        self.dealias_fraction = float(dealias_fraction)

    # ---- forcing ---------------------------------------------------------------------------

    def _forcing_wavevector(self) -> tuple[float, float]:
        lx, ly = self.grid.lengths
        if self.forcing == "fno":
            return 2 * math.pi / lx, 2 * math.pi / ly
        if self.forcing == "kolmogorov":
            return 0.0, 2 * math.pi * self.forcing_wavenumber / ly
        return 0.0, 0.0

    def forcing_term(self, x: Float[Array, "2 ..."]) -> Float[Array, "..."]:
        """The vorticity forcing $f$ at points ``x`` (first axis: the two coordinates)."""
        kx, ky = self._forcing_wavevector()
        x0, y0 = self.grid.origin
        if self.forcing == "fno":
            phase = kx * (x[0] - x0) + ky * (x[1] - y0)
            return self.forcing_amplitude * (jnp.sin(phase) + jnp.cos(phase))
        if self.forcing == "kolmogorov":
            return -self.forcing_amplitude * ky * jnp.cos(ky * (x[1] - y0))
        return jnp.zeros_like(x[0])

    # ---- semi-linear split -----------------------------------------------------------------

    def linear_symbol(self):
        return -self.viscosity * wavenumber_norm_squared(self.grid) - self.drag

    def velocity(self, omega_hat):
        r"""$(u, v) = (\partial_y\psi, -\partial_x\psi)$ in physical space from $\hat\omega$."""
        kx, ky = odd_wavenumbers(self.grid)
        k2 = wavenumber_norm_squared(self.grid)
        psi_hat = omega_hat / jnp.where(k2 == 0, 1.0, k2)
        psi_hat = jnp.where(k2 == 0, 0.0, psi_hat)
        u = jnp.fft.irfftn(1j * ky * psi_hat, s=self.grid.shape)
        v = jnp.fft.irfftn(-1j * kx * psi_hat, s=self.grid.shape)
        return u, v

    def nonlinear(self, t, u_hat, args=None):
        mask = dealias_mask(self.grid, self.dealias_fraction)
        omega_hat = mask * u_hat
        kx, ky = odd_wavenumbers(self.grid)
        u, v = self.velocity(omega_hat)
        omega_x = jnp.fft.irfftn(1j * kx * omega_hat, s=self.grid.shape)
        omega_y = jnp.fft.irfftn(1j * ky * omega_hat, s=self.grid.shape)
        advection = u * omega_x + v * omega_y
        if self.forcing != "none":
            # One transform for both: the forcing's modes lie inside the mask (checked in __init__).
            coords = self.grid.coordinates().astype(advection.dtype)
            return mask * jnp.fft.rfftn(self.forcing_term(coords) - advection)
        return mask * jnp.fft.rfftn(-advection)

    # ---- pointwise ---------------------------------------------------------------------------

    def residual(self, u_fn, x, t=None, args=None):
        r"""$\omega_t + \psi_y\omega_x - \psi_x\omega_y - \nu\Delta\omega + \alpha\omega - f$ for the
        stream function ``u_fn`` $=\psi(x, t)$, with $\omega = -\Delta\psi$."""
        x, t = check_space_time("NavierStokes2D.residual", x, t, 2)
        lap_psi = autodiff.laplacian(u_fn)

        def omega_fn(xx, tt):
            return -lap_psi(xx, tt)

        psi_x, psi_y = autodiff.gradient(u_fn)(x, t)
        omega_x, omega_y = autodiff.gradient(omega_fn)(x, t)
        omega = omega_fn(x, t)
        diffusion = self.viscosity * autodiff.laplacian(omega_fn)(x, t)
        forcing = self.forcing_term(x)
        return (
            autodiff.time_derivative(omega_fn)(x, t)
            + psi_y * omega_x
            - psi_x * omega_y
            - diffusion
            + self.drag * omega
            - forcing
        )

    def _exact_decay(self) -> tuple[Array, Array]:
        """$(|k|^2, \\lambda)$ of the exact solution's single phase."""
        if self.forcing == "none":
            lx, ly = self.grid.lengths
            k2 = (2 * math.pi / lx) ** 2 + (2 * math.pi / ly) ** 2
        else:
            kx, ky = self._forcing_wavevector()
            k2 = kx**2 + ky**2
        return k2, self.viscosity * k2 + self.drag

    def exact_stream_function(self, x, t):
        """$\\psi$ of `exact_solution` (for ``residual``)."""
        return self.exact_solution(x, t) / self._exact_decay()[0]

    def exact_solution(self, x, t):
        """Taylor–Green decay (no forcing) or the laminar forced flow from rest; see the module docstring."""
        x, t = check_space_time("NavierStokes2D.exact_solution", x, t, 2)
        k2, rate = self._exact_decay()
        if self.forcing == "none":
            lx, ly = self.grid.lengths
            x0, y0 = self.grid.origin
            shape = jnp.cos(2 * math.pi * (x[0] - x0) / lx) * jnp.cos(2 * math.pi * (x[1] - y0) / ly)
            return shape * jnp.exp(-rate * t)
        return self.forcing_term(x) * (-jnp.expm1(-rate * t)) / rate
