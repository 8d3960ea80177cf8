r"""DeepONet: an operator as a sum of products of a branch net on the input and a trunk net on the query point.

Lu, Jin, Pang, Zhang & Karniadakis, "Learning nonlinear operators via DeepONet based on the
universal approximation theorem of operators", Nature Machine Intelligence 3, 218–229 (2021).
For an input function ``u`` observed at ``m`` fixed sensors ``x_1, …, x_m`` and any query point
``y ∈ ℝ^d``,

$$G(u)(y) \approx \sum_{k=1}^{p} b_k\big(u(x_1), …, u(x_m)\big)\, t_k(y) + b_0,$$

with the *branch* ``b: ℝ^{c_{in} m} → ℝ^{p}`` and the *trunk* ``t: ℝ^d → ℝ^{p}`` two MLPs
(the "unstacked" DeepONet of the paper) and a learned bias ``b_0``. The trunk's last layer is
followed by the activation, as in the paper's code, so the ``t_k`` are nonlinear features of
``y`` and the branch supplies their coefficients. For ``c_out > 1`` outputs the ``p`` products
are split into ``c_out`` groups of ``p/c_out`` ("split branch and trunk", Lu et al., "A
comprehensive and fair comparison of two neural operators", CMAME 2022), one bias per output.

Unlike the FNO, the branch is tied to the sensors: one DeepONet takes exactly ``m`` sensor
values per channel, and a field at another resolution is an error (sample it at the sensors
first). The output, on the other hand, is a function: it is evaluated at any points, on no grid.
"""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._fno import activation_function
from ._spectral_conv import positive_int

__all__ = ["DeepONet", "query_grid"]


class DeepONet(eqx.Module):
    r"""``G(u)(y) = Σ_k b_k(u) t_k(y) + b_0``: branch on the sensor values, trunk on the query point
    (see the module docstring).

    **Arguments:**

    - `sensors`: ``m``, the sensor values per input channel the branch reads.
    - `coordinate_dim`: ``d``, the dimension of a query point.
    - `latent`: ``p``, the number of products (a multiple of `out_channels`).
    - `branch_width`, `branch_depth`, `trunk_width`, `trunk_depth`: hidden width and number of
      hidden layers of the two MLPs (``branch_depth = 0``: a linear branch, for an operator
      linear in ``u``).
    - `in_channels`, `out_channels`: channels of the input function and of the output.
    - `activation`: ``"tanh"`` (default), ``"relu"``, ``"gelu"``, ``"silu"``.
    - `key`: the initialisation (the bias ``b_0`` starts at zero).

    ``model(u, y)``: `u` of shape ``(in_channels, *sensor_shape)`` with ``Π sensor_shape = m``
    (the sensors in any layout, flattened in C order), `y` of shape ``(n, d)``; the result has
    shape ``(out_channels, n)``. Batch over functions with `jax.vmap`.

    ```python
    model = DeepONet(sensors=128, coordinate_dim=1, latent=64, key=jax.random.key(0))
    s = model(u0[None], y[:, None])          # (1, 128), (n, 1) -> (1, n)
    ```
    """

    branch: eqx.nn.MLP
    trunk: eqx.nn.MLP
    bias: Float[Array, " c_out"]
    sensors: int = eqx.field(static=True)
    coordinate_dim: int = eqx.field(static=True)
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        sensors: int,
        coordinate_dim: int,
        latent: int = 64,
        *,
        branch_width: int = 64,
        branch_depth: int = 2,
        trunk_width: int = 64,
        trunk_depth: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        activation: str = "tanh",
        key: PRNGKeyArray,
    ):
        self.sensors = positive_int(sensors, "sensors", "DeepONet")
        self.coordinate_dim = positive_int(coordinate_dim, "coordinate_dim", "DeepONet")
        latent = positive_int(latent, "latent", "DeepONet")
        self.in_channels = positive_int(in_channels, "in_channels", "DeepONet")
        self.out_channels = positive_int(out_channels, "out_channels", "DeepONet")
        for name, value in (("branch_width", branch_width), ("trunk_width", trunk_width)):
            positive_int(value, name, "DeepONet")
        for name, value in (("branch_depth", branch_depth), ("trunk_depth", trunk_depth)):
            positive_int(value, name, "DeepONet", minimum=0)
        if latent % self.out_channels:
            raise ValueError(
                f"DeepONet: `latent` must be a multiple of `out_channels`={self.out_channels} (one group of products "
                f"per output), got {latent}."
            )
        sigma = activation_function(activation, "DeepONet")
        self.activation = activation
        k_branch, k_trunk = jax.random.split(key)
        self.branch = eqx.nn.MLP(self.in_channels * self.sensors, latent, branch_width, branch_depth,
                                 activation=sigma, key=k_branch)
        self.trunk = eqx.nn.MLP(self.coordinate_dim, latent, trunk_width, trunk_depth, activation=sigma,
                                final_activation=sigma, key=k_trunk)
        self.bias = jnp.zeros(self.out_channels)

    @property
    def latent(self) -> int:
        return self.branch.out_size

    def _check_u(self, u) -> Array:
        u = jnp.asarray(u)
        if u.ndim < 2 or u.shape[0] != self.in_channels or int(np.prod(u.shape[1:])) != self.sensors:
            raise ValueError(
                f"DeepONet: `u` must be one sample of shape (in_channels={self.in_channels}, *sensor_shape) holding "
                f"sensors={self.sensors} values per channel (a DeepONet is tied to its sensors: sample a field of "
                f"another resolution at them first), got shape {u.shape}."
            )
        return u

    def _check_y(self, y) -> Array:
        y = jnp.asarray(y)
        if y.ndim != 2 or y.shape[1] != self.coordinate_dim:
            raise ValueError(
                f"DeepONet: `y` must be query points of shape (n, coordinate_dim={self.coordinate_dim}), got shape "
                f"{y.shape}."
            )
        return y

    def coefficients(self, u: Float[Array, "c_in *sensors"]) -> Float[Array, "c_out q"]:
        """The branch output ``b(u)``, one row of ``p/c_out`` coefficients per output channel."""
        return self.branch(self._check_u(u).reshape(-1)).reshape(self.out_channels, -1)

    def basis(self, y: Float[Array, "n d"]) -> Float[Array, "n c_out q"]:
        """The trunk features ``t(y)`` at every query point, grouped per output channel."""
        y = self._check_y(y)
        return jax.vmap(self.trunk)(y).reshape(y.shape[0], self.out_channels, -1)

    def __call__(self, u: Float[Array, "c_in *sensors"], y: Float[Array, "n d"]) -> Float[Array, "c_out n"]:
        u, y = self._check_u(u), self._check_y(y)  # both before any arithmetic
        return jnp.einsum("oq,noq->on", self.coefficients(u), self.basis(y)) + self.bias[:, None]


def query_grid(shape: Sequence[int], closed: bool = False) -> Float[Array, "n d"]:
    """The points of a uniform grid of `shape` on the unit cube as query points ``(Π shape, d)``
    (``j/s`` per axis, or ``j/(s − 1)`` with `closed`), in C order: ``model(u, query_grid(shape))``
    reshapes to ``(c_out, *shape)``."""
    axes = [jnp.arange(s) / (s - 1 if closed and s > 1 else s) for s in shape]
    return jnp.stack(jnp.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(shape)).astype(jnp.float32)
