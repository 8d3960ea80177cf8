r"""Time marching: a long time interval trained as a sequence of short windows.

A PINN on a long interval $[0, T]$ has to propagate the initial condition through the whole
cylinder at once, and often converges to a wrong solution (Krishnapriyan et al., "Characterizing
possible failure modes in physics-informed neural networks", NeurIPS 2021; Wight & Zhao,
"Solving Allen–Cahn and Cahn–Hilliard equations using the adaptive physics informed neural
networks", 2020; the time-marching of jaxpi, Wang et al. 2023). Time marching splits
$[t_0, T]$ at $t_0 < t_1 < \dots < t_K = T$ and trains window $k$ on $[t_{k-1}, t_k]$ with the
initial condition

.. math::

    u_k(x, t_{k-1}) = u_{k-1}(x, t_{k-1}) \quad (k \ge 2),

the previous window's solution at its end (window 1 keeps the problem's own initial
condition), starting from the previous window's parameters (a warm start: the solution changes
little from one window to the next). The solution on $[t_0, T]$ is the piecewise model
`Marched`: window $k$'s model on $[t_{k-1}, t_k)$.

`march` is independent of how a window is trained: it calls
``train_window(k, (t_{k-1}, t_k), initial, model) -> model`` for each window, where `initial`
is the initial condition ``initial(x)`` of one point (``None`` for the first window) and `model`
the starting model; the caller builds the window's problem (its space–time domain on
$[t_{k-1}, t_k]$ and the initial condition `initial`) and fits it — with any loss, weighting,
sampler or optimiser.
"""

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._weighting import stopped

__all__ = ["Marched", "march", "window_edges"]


def window_edges(t_span: tuple[float, float], windows: int | Sequence[float]) -> tuple[float, ...]:
    """The window boundaries ``t_0 < … < t_K``: `windows` equal windows of `t_span`, or the
    given increasing interior boundaries."""
    t0, t1 = (float(t) for t in t_span)
    if not t0 < t1:
        raise ValueError(f"march: `t_span` must be (t0, t1) with t0 < t1, got {t_span!r}.")
    if isinstance(windows, int) and not isinstance(windows, bool):
        if windows < 1:
            raise ValueError(f"march: `windows` must be an integer >= 1 or a sequence of interior times, got {windows!r}.")
        return tuple(float(t) for t in np.linspace(t0, t1, windows + 1))
    inner = [float(t) for t in windows]
    edges = [t0, *inner, t1]
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"march: the interior window boundaries must increase strictly inside {t_span}, got {list(windows)!r}.")
    return tuple(edges)


class Marched(eqx.Module):
    """The piecewise model of a time march: ``models[k](x, t)`` for ``edges[k] <= t < edges[k+1]``
    (times outside the span go to the first or last window). One point in, as every network."""

    models: tuple[eqx.Module, ...]
    edges: tuple[float, ...] = eqx.field(static=True)

    def __check_init__(self):
        if len(self.edges) != len(self.models) + 1:
            raise ValueError(f"Marched: need one more edge than models, got {len(self.edges)} edges and {len(self.models)} models.")

    def window(self, t) -> jax.Array:
        inner = jnp.asarray(self.edges[1:-1], jnp.result_type(t))
        return jnp.searchsorted(inner, t, side="right")

    def __call__(self, x, t):
        branches = [lambda x, t, m=m: m(x, t) for m in self.models]
        return jax.lax.switch(self.window(t), branches, x, t)


def march(
    train_window: Callable,
    model: eqx.Module,
    t_span: tuple[float, float],
    windows: int | Sequence[float],
) -> Marched:
    """Train `windows` successive windows of `t_span` (see the module docstring).

    **Arguments:** `train_window(k, (t_start, t_end), initial, model) -> model`; `model` the
    initial model of the first window (``model(x, t)`` of one point); `t_span` ``(t0, T)``;
    `windows` their number (equal lengths) or the interior boundaries.

    **Returns:** the `Marched` model of all windows.
    """
    if not callable(train_window):
        raise TypeError(f"march: `train_window` must be callable(k, (t_start, t_end), initial, model), got {type(train_window).__name__}.")
    edges = window_edges(t_span, windows)
    models: list[eqx.Module] = []
    initial = None
    for k, (start, end) in enumerate(zip(edges, edges[1:])):
        trained = train_window(k, (start, end), initial, model)
        if not isinstance(trained, eqx.Module):
            raise TypeError(f"march: `train_window` must return the trained model (an equinox.Module), got {type(trained).__name__} for window {k}.")
        models.append(trained)
        # The next window starts from this one: its parameters and its solution at `end`.
        frozen = stopped(trained)
        initial = lambda x, frozen=frozen, end=end: frozen(x, jnp.asarray(end, jnp.result_type(x)))  # noqa: E731
        model = trained
    return Marched(tuple(models), edges)
