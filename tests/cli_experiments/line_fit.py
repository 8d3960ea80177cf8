"""Fit a line to noisy samples with the training engine (a fixture for the CLI tests)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from jaxpde.training import fit


@dataclass(frozen=True)
class Config:
    steps: int = 40
    learning_rate: float = 0.1
    seed: int = 0
    optimiser: Literal["adam", "sgd"] = "adam"
    verbose: bool = False

    def __post_init__(self):
        if self.steps <= 0:
            raise ValueError(f"`steps` must be a positive integer, got {self.steps!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be positive, got {self.learning_rate!r}.")


def run(config: Config, out_dir: Path) -> dict:
    model = eqx.nn.Linear(1, 1, key=jax.random.key(config.seed))

    def sampler(key):
        x = jax.random.uniform(key, (64, 1), minval=-1, maxval=1)
        return x, 2.0 * x - 1.0

    def loss(model, batch, key):
        x, y = batch
        return jnp.mean((jax.vmap(model)(x) - y) ** 2)

    optimiser = getattr(optax, config.optimiser)(config.learning_rate)
    result = fit(model, optimiser, loss, sampler, steps=config.steps, key=jax.random.key(config.seed),
                 out_dir=out_dir, checkpoint_every=10, log_every=10, progress=config.verbose)
    return {"slope": float(result.model.weight[0, 0]), "intercept": float(result.model.bias[0]),
            "resumed_from": result.resumed_from}
