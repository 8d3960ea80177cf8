r"""Autoregressive emulators: a learned one-step map rolled out in time, and how to train it.

An emulator advances a window of the last ``h`` frames ``w_n = (u_{n−h+1}, …, u_n)`` (each
frame ``(c, *grid)``, channels first) by one step of the data, ``Δ``:

$$u_{n+1} = \begin{cases}
  f_\theta(x_n) & \text{state} \\
  b_n + s\, f_\theta(x_n) & \text{increment}
\end{cases}, \qquad
b_n = \begin{cases} u_n & \text{no solver} \\ P_Δ(u_n) & \text{solver in the loop}\end{cases}, \qquad
x_n = \big[w_n\,;\ P_Δ(u_n)\big]$$

with ``f_θ`` **any** equinox model mapping one sample ``(c_in, *grid) → (c, *grid)`` (an FNO,
a U-Net, a linear Fourier multiplier), its input ``x_n`` the window's frames stacked on the
channel axis (``c_in = h c``) and, with a solver, the solver's proposal appended
(``c_in = (h + 1) c``; `Emulator.input_channels`).

- **Increment** (``parameterisation="increment"``): the network predicts ``(u_{n+1} − b_n)/s``
  rather than the state — a residual connection in time, the "predict the difference" of
  Brandstetter et al. ("Message Passing Neural PDE Solvers", ICLR 2022) and of the APEBench
  emulators; ``s`` (`increment_scale`) brings the small increment to unit size.
- **Solver in the loop** (``solver=SolverStep(pde, dt, substeps)``): ``P_Δ`` is a coarse
  differentiable classical step of a `jaxpde.pdes` model (ETDRK through
  `jaxpde.numerics.time_integration.rollout`) and the network learns its correction (Um et
  al., "Solver-in-the-Loop", NeurIPS 2020). Gradients flow through the solver.

Training losses, in `jaxpde.training.fit`'s ``loss_fn(model, batch, key)`` form, on a batch of
trajectory windows ``(B, h + k, c, *grid)`` (`trajectory_windows` cuts them):

- **one step** (``Emulator.loss(unroll=1)``): teacher forcing, the window of true frames in;
- **unrolled** (``unroll=k``): the emulator's own predictions are fed back for ``k`` steps
  and the loss of every step is averaged, backpropagated through the whole rollout — the
  training that exposes the model to its own error distribution (Brandstetter et al.;
  Um et al.; the FNO paper trains its 2D Navier–Stokes model this way, Li et al. ICLR 2021).

`Emulator.rollout` is a `jax.lax.scan`: one compiled step whatever the horizon, shapes kept,
jit- and vmap-able. The emulator holds no trained arrays (the solver's PDE is closed over, not
trained): it is a recipe, the model is passed in.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..numerics.etdrk import ETDRK4, AbstractETDRK
from ..numerics.time_integration import rollout as solver_rollout

__all__ = ["SolverStep", "Emulator", "trajectory_windows", "mse", "relative_l2"]

_PARAMETERISATIONS = ("state", "increment")


def mse(prediction: Array, target: Array) -> Array:
    """Mean squared error over every axis."""
    return jnp.mean((prediction - target) ** 2)


def relative_l2(prediction: Array, target: Array) -> Array:
    """``‖p − t‖/‖t‖`` of one frame (the FNO paper's per-step loss)."""
    return jnp.sqrt(jnp.sum((prediction - target) ** 2) / jnp.sum(target**2))


_METRICS: dict[str, Callable[[Array, Array], Array]] = {"mse": mse, "relative_l2": relative_l2}


class SolverStep(eqx.Module):
    r"""``P_Δ``: `substeps` ETDRK steps of ``dt`` of a semi-linear PDE, on a frame ``(c, *grid)``.

    The frame is reshaped to the PDE's state (a one-channel frame ``(1, s)`` is the PDE's
    ``(s,)``) and back, so it plugs into an emulator whose frames carry a channel axis.
    Differentiable (reverse mode through the scan), jit- and vmap-able.

    **Arguments:** `pde` (a semi-linear `jaxpde.pdes` model or a `SemiLinearTerm`), `dt` (the
    step, a Python number), `substeps` (steps per emulator step, ``Δ = substeps · dt``),
    `solver` (an ETDRK solver, default `ETDRK4`).
    """

    pde: eqx.Module
    dt: float = eqx.field(static=True)
    substeps: int = eqx.field(static=True)
    solver: AbstractETDRK

    def __init__(self, pde, dt: float, substeps: int = 1, solver: AbstractETDRK | None = None):
        if not (isinstance(dt, (int, float)) and not isinstance(dt, bool) and dt > 0 and np.isfinite(dt)):
            raise ValueError(f"SolverStep: `dt` must be a positive Python number, got {dt!r}.")
        if not isinstance(substeps, (int, np.integer)) or isinstance(substeps, bool) or substeps < 1:
            raise ValueError(f"SolverStep: `substeps` must be a positive integer, got {substeps!r}.")
        self.pde, self.dt, self.substeps = pde, float(dt), int(substeps)
        self.solver = ETDRK4() if solver is None else solver

    @property
    def interval(self) -> float:
        """``Δ = substeps · dt``, the time one call advances."""
        return self.substeps * self.dt

    def __call__(self, u: Float[Array, "c *grid"]) -> Float[Array, "c *grid"]:
        state_shape = tuple(self.pde.state_shape)
        if int(np.prod(u.shape)) != int(np.prod(state_shape)):
            raise ValueError(f"SolverStep: a frame of shape {u.shape} does not hold the PDE's state {state_shape}.")
        out = solver_rollout(self.pde, u.reshape(state_shape), self.dt, self.substeps, self.solver)
        return out.reshape(u.shape).astype(u.dtype)


class Emulator(eqx.Module):
    r"""How a one-sample model becomes an autoregressive emulator (see the module docstring).

    **Arguments:**

    - `parameterisation`: ``"state"`` (the model predicts ``u_{n+1}``) or ``"increment"`` (it
      predicts ``(u_{n+1} − b_n)/s``).
    - `increment_scale`: ``s`` (increment only; default 1).
    - `history`: ``h``, the number of past frames the model sees (default 1).
    - `solver`: a `SolverStep` (solver in the loop) or ``None``.

    ```python
    emulator = Emulator("increment", increment_scale=0.1)
    model = FNO(in_channels=emulator.input_channels(1), out_channels=1, ...)
    loss = emulator.loss(unroll=4)                      # fit(model, optax.adam(1e-3), loss, windows, ...)
    frames = emulator.rollout(model, window0, 100)       # (100, 1, s)
    ```
    """

    parameterisation: str = eqx.field(static=True)
    increment_scale: float = eqx.field(static=True)
    history: int = eqx.field(static=True)
    solver: SolverStep | None

    def __init__(
        self,
        parameterisation: str = "state",
        *,
        increment_scale: float = 1.0,
        history: int = 1,
        solver: SolverStep | None = None,
    ):
        if parameterisation not in _PARAMETERISATIONS:
            raise ValueError(f"Emulator: `parameterisation` must be one of {_PARAMETERISATIONS}, got {parameterisation!r}.")
        if not (isinstance(increment_scale, (int, float)) and increment_scale > 0 and np.isfinite(increment_scale)):
            raise ValueError(f"Emulator: `increment_scale` must be a positive number, got {increment_scale!r}.")
        if not isinstance(history, (int, np.integer)) or isinstance(history, bool) or history < 1:
            raise ValueError(f"Emulator: `history` must be a positive integer, got {history!r}.")
        if solver is not None and not isinstance(solver, SolverStep):
            raise TypeError(f"Emulator: `solver` must be a SolverStep or None, got {type(solver).__name__}.")
        self.parameterisation, self.increment_scale = parameterisation, float(increment_scale)
        self.history, self.solver = int(history), solver

    def input_channels(self, channels: int) -> int:
        """``c_in`` of the model for frames of `channels` channels: ``h c``, plus ``c`` with a solver."""
        return (self.history + (self.solver is not None)) * channels

    # -- one step -------------------------------------------------------------------------

    def _check_window(self, window: Array, owner: str) -> None:
        if window.ndim < 3 or window.shape[0] != self.history:
            raise ValueError(
                f"Emulator.{owner}: `window` must be (history={self.history}, channels, *grid), got shape {window.shape}."
            )

    def inputs(self, window: Float[Array, "h c *grid"]) -> tuple[Array, Array]:
        """The model input ``x_n`` and the base ``b_n`` (the last frame, or the solver's proposal)."""
        last = window[-1]
        frames = window.reshape(-1, *window.shape[2:])
        if self.solver is None:
            return frames, last
        proposal = self.solver(last)
        return jnp.concatenate([frames, proposal], axis=0), proposal

    def to_state(self, output: Array, base: Array) -> Array:
        """The next frame from the model's output: the output itself, or ``b + s · output``."""
        if self.parameterisation == "state":
            return output
        return base + self.increment_scale * output

    def target(self, frame: Array, base: Array) -> Array:
        """What the model should output for the next frame `frame`: the inverse of `to_state`."""
        if self.parameterisation == "state":
            return frame
        return (frame - base) / self.increment_scale

    def step(self, model: Callable, window: Float[Array, "h c *grid"]) -> Float[Array, "c *grid"]:
        """``u_{n+1}`` from the window ``(u_{n−h+1}, …, u_n)``."""
        window = jnp.asarray(window)
        self._check_window(window, "step")
        x, base = self.inputs(window)
        output = model(x)
        if output.shape != base.shape:
            raise ValueError(
                f"Emulator.step: the model must map {x.shape} to one frame of shape {base.shape}, got {output.shape}."
            )
        return self.to_state(output, base)

    # -- rollout --------------------------------------------------------------------------

    def rollout(
        self, model: Callable, window: Float[ArrayLike, "h c *grid"], num_steps: int, *, unroll: int = 1
    ) -> Float[Array, "n c *grid"]:
        """The next `num_steps` frames ``u_{n+1}, …, u_{n+num_steps}`` (a `jax.lax.scan`).

        `unroll` steps are compiled into each iteration of the scan's loop (`jax.lax.scan`'s
        ``unroll``): the training losses unroll their few steps entirely, which measured 2–2.5×
        faster for the gradient of a 4-step FNO rollout on CPU than a rolled loop; long
        evaluation rollouts keep the default 1 (one compiled step).
        """
        if not isinstance(num_steps, (int, np.integer)) or isinstance(num_steps, bool) or num_steps < 1:
            raise ValueError(f"Emulator.rollout: `num_steps` must be a positive integer, got {num_steps!r}.")
        window = jnp.asarray(window)
        self._check_window(window, "rollout")

        def advance(window, _):
            frame = self.step(model, window)
            return jnp.concatenate([window[1:], frame[None]], axis=0), frame

        _, frames = jax.lax.scan(advance, window, None, length=int(num_steps), unroll=unroll)
        return frames

    # -- training -------------------------------------------------------------------------

    def loss(self, unroll: int = 1, metric: str = "mse") -> Callable:
        r"""``loss_fn(model, windows, key)`` for `jaxpde.training.fit`.

        `windows` is ``(B, h + unroll, c, *grid)``: the first ``h`` frames start the rollout, the
        next ``unroll`` are its targets. The loss is the mean over the batch and the ``unroll``
        steps of `metric` (``"mse"`` or ``"relative_l2"``, per frame) between the rolled-out and
        the true frames; with ``unroll = 1`` it is the one-step (teacher-forced) loss. The
        gradient runs through the whole rollout (and through the solver, if any). With
        ``unroll > 1`` the one-step loss is logged too (``"one_step"``).
        """
        if not isinstance(unroll, (int, np.integer)) or isinstance(unroll, bool) or unroll < 1:
            raise ValueError(f"Emulator.loss: `unroll` must be a positive integer, got {unroll!r}.")
        if metric not in _METRICS:
            raise ValueError(f"Emulator.loss: `metric` must be one of {tuple(_METRICS)}, got {metric!r}.")
        measure, h, k = _METRICS[metric], self.history, int(unroll)

        def loss_fn(model, windows, key):
            _, errors = self.batch_rollout(model, windows, k, measure, "Emulator.loss")
            loss = jnp.mean(errors)
            if k == 1:
                return loss
            return loss, {"one_step": jnp.mean(errors[:, 0])}

        return loss_fn

    def batch_rollout(self, model, windows, unroll: int, measure, owner: str):
        """The rollouts ``(B, unroll, c, *grid)`` from each window's first ``h`` frames, and
        `measure` of every predicted frame against the true one, ``(B, unroll)``."""
        h = self.history
        if windows.ndim < 4 or windows.shape[1] != h + unroll:
            raise ValueError(
                f"{owner}: the batch must be (batch, history + unroll = {h + unroll}, channels, *grid), "
                f"got shape {windows.shape}."
            )
        predicted = jax.vmap(lambda w: self.rollout(model, w[:h], unroll, unroll=unroll))(windows)
        return predicted, jax.vmap(jax.vmap(measure))(predicted, windows[:, h:])


def trajectory_windows(frames: Float[ArrayLike, "n time *frame"], length: int, stride: int = 1) -> Float[Array, "m length *frame"]:
    r"""Every window of `length` consecutive frames of every trajectory, stacked: ``(n · W, length, *frame)``.

    ``W = ⌊(time − length)/stride⌋ + 1`` windows per trajectory start at frames ``0, stride, …``.
    A KS dataset ``(n, time, s)`` becomes emulator training windows with
    ``trajectory_windows(u[:, :, None], h + k)`` (the ``None`` adds the channel axis).
    """
    frames = jnp.asarray(frames)
    if frames.ndim < 3:
        raise ValueError(f"trajectory_windows: `frames` must be (trajectories, time, *frame), got shape {frames.shape}.")
    n, time = frames.shape[:2]
    if not isinstance(length, (int, np.integer)) or not 1 <= length <= time:
        raise ValueError(f"trajectory_windows: `length` must be an integer in [1, {time}], got {length!r}.")
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"trajectory_windows: `stride` must be a positive integer, got {stride!r}.")
    starts = np.arange(0, time - length + 1, stride)
    index = starts[:, None] + np.arange(length)[None, :]  # (W, length)
    windows = frames[:, index]  # (n, W, length, *frame)
    return windows.reshape(n * len(starts), length, *frames.shape[2:])
