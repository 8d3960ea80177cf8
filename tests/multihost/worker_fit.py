"""Worker of the multi-process `fit` tests: one small run, the same script on every process.

    python worker_fit.py OUT_DIR DATA STEPS [SLEEP]

DATA is ``array`` (an `ArrayLoader` over 64 samples) or ``sampler`` (points drawn inside the
step). A tiny MLP fits ``sin(x₀) cos(x₁)`` with Adam, with an EMA of the parameters, extra state
(a moving average of the loss that weights it, so a resume that lost it would diverge), a
validation callback, a checkpoint every 5 steps and a log point every step; a host callback
sleeps SLEEP seconds per step so that a test can kill the run mid-way. Process 0 writes every
final array to OUT_DIR/final.npz; process i writes its pid to OUT_DIR/pid-i (for the kill
test). Run as one process (no launcher) it is the single-process
reference.
"""

import os
import sys
import time
from pathlib import Path

from jaxpde import distributed

distributed.initialize()

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from jaxpde.training import ArrayLoader, Evaluate, fit  # noqa: E402

BATCH = 16


def target(x):
    return jnp.sin(x[..., :1]) * jnp.cos(x[..., 1:])


def sampler(key):
    x = jax.random.uniform(key, (BATCH, 2), minval=-2.0, maxval=2.0)
    return x, target(x)


def array_data():
    x = np.random.default_rng(3).uniform(-2, 2, size=(64, 2)).astype(np.float32)
    return ArrayLoader((x, np.asarray(target(x))), batch_size=BATCH, seed=5)


def loss(model, batch, key, extra):
    x, y = batch
    noise = 1e-3 * jax.random.normal(key, y.shape)  # the step's key must be the same everywhere
    mse = jnp.mean((jax.vmap(model)(x) - y + noise) ** 2)
    weight = 1.0 / (1.0 + extra["average"])
    return weight * mse, {"mse": mse}, {"average": 0.9 * extra["average"] + 0.1 * jax.lax.stop_gradient(mse)}


X_VALIDATION = np.stack(np.meshgrid(np.linspace(-2, 2, 8), np.linspace(-2, 2, 8)), -1).reshape(-1, 2).astype(np.float32)


def validation(model):
    return jnp.mean((jax.vmap(model)(X_VALIDATION) - target(X_VALIDATION)) ** 2)


def main(out_dir, data, steps, sleep):
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    Path(out_dir, f"pid-{jax.process_index()}").write_text(str(os.getpid()))

    def slow(point):
        time.sleep(sleep)

    result = fit(
        eqx.nn.MLP(2, 1, 16, 2, key=jax.random.key(1)),
        optax.adam(1e-2),
        loss,
        array_data() if data == "array" else sampler,
        steps=steps,
        key=jax.random.key(0),
        out_dir=out_dir,
        checkpoint_every=5,
        log_every=1,
        progress=False,
        extra={"average": jnp.zeros(())},
        ema_decay=0.9,
        callbacks=[Evaluate(validation), slow],
        run_config={"worker": "fit", "data": data},
    )
    leaves = jax.tree.leaves(eqx.filter((result.model, result.ema_model, result.extra), eqx.is_array))
    if jax.process_index() == 0:
        np.savez(f"{out_dir}/final.npz", *[np.asarray(leaf) for leaf in leaves])
    print(f"process {jax.process_index()} of {jax.process_count()} done: step {result.step}, "
          f"resumed from {result.resumed_from}, {jax.device_count()} devices", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) > 4 else 0.0)
