"""A small training run in its own process, for the kill -9 and multi-device tests.

    python train_script.py OUT_DIR STEPS SLEEP [DEVICES]

Trains a tiny MLP on a sine with `jaxpde.training.fit` (checkpoint every 7 steps) with every
extension on — an EMA of the parameters, a validation callback and extra state (a moving
average of the loss that weights it) — sleeping SLEEP seconds per batch so that a test can
kill it mid-run, and writes the final parameters, EMA and extra state to OUT_DIR/final.npz.
"""

import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpde.training import Evaluate, fit


class SlowBatches:
    """A re-iterable of deterministic batches that takes its time (so a kill lands mid-run)."""

    def __init__(self, sleep: float):
        self.sleep = sleep

    def __iter__(self):
        rng = np.random.default_rng(0)
        while True:
            time.sleep(self.sleep)
            x = rng.uniform(-1, 1, size=(32, 1)).astype(np.float32)
            yield x, np.sin(3 * x)


def loss(model, batch, key, extra):
    x, y = batch
    dropout_noise = 1e-3 * jax.random.normal(key, y.shape)  # the per-step key must be restored too
    mse = jnp.mean((jax.vmap(model)(x) - y + dropout_noise) ** 2)
    # The extra state feeds back into the loss, so a resume that lost it would diverge.
    weight = 1.0 / (1.0 + extra["average"])
    new_extra = {"average": 0.9 * extra["average"] + 0.1 * jax.lax.stop_gradient(mse), "count": extra["count"] + 1}
    return weight * mse, {"mse": mse}, new_extra


X_VALIDATION = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]


def validation(model):
    return jnp.mean((jax.vmap(model)(X_VALIDATION) - np.sin(3 * X_VALIDATION)) ** 2)


def main(out_dir, steps, sleep, devices=None):
    model = eqx.nn.MLP(1, 1, 16, 2, key=jax.random.key(1))
    result = fit(
        model,
        optax.adam(1e-2),
        loss,
        SlowBatches(sleep),
        steps=steps,
        key=jax.random.key(0),
        out_dir=out_dir,
        checkpoint_every=7,
        log_every=5,
        progress=False,
        devices=devices,
        extra={"average": jnp.zeros(()), "count": jnp.zeros((), jnp.int32)},
        ema_decay=0.9,
        callbacks=[Evaluate(validation)],
        run_config={"script": "train_script", "steps": steps},
    )
    leaves = jax.tree.leaves(eqx.filter((result.model, result.ema_model, result.extra), eqx.is_array))
    np.savez(f"{out_dir}/final.npz", *[np.asarray(leaf) for leaf in leaves])


if __name__ == "__main__":
    devices = int(sys.argv[4]) if len(sys.argv) > 4 else None
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), devices)
