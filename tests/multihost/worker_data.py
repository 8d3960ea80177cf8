"""Worker of the multi-process dataset test.

    python worker_data.py CACHE_DIR OUT.npz

Generates a small Burgers dataset (a pseudo-spectral solve per sample) with `load_dataset` into
CACHE_DIR — in a job of several processes each computes its share of the chunks — then loads
it again (from the cache this time), and generates the training split once more with
`generate_samples` checkpointing its chunks into CACHE_DIR/chunks-<process index> (so the test
sees which process computed which chunk). Process 0 writes every array to OUT.npz, with the
``generated`` flags. Run as one process (no launcher) it makes the one-process reference.
"""

import dataclasses
import sys
from typing import ClassVar

from jaxpde import distributed

distributed.initialize()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxpde.data import BurgersConfig, generate_samples, load_dataset, split_key  # noqa: E402
from jaxpde.data._dataset import _Sampler  # noqa: E402  (load_dataset's own sampler: one compilation)


@dataclasses.dataclass(frozen=True)
class SmallBurgers(BurgersConfig):
    """Batches of two, so that seven training samples make four chunks to share."""

    batch_size: ClassVar[int] = 2


CONFIG = SmallBurgers(n_train=7, n_test=3, resolution=64, time=0.2, dt=1e-3, seed=11)


def main(cache_dir, out):
    first = load_dataset(CONFIG, cache_dir=cache_dir, progress=False)
    again = load_dataset(CONFIG, cache_dir=cache_dir, progress=False)
    arrays = {f"{split}.{name}": value for split in ("train", "test") for name, value in first[split].items()}
    same = all(np.array_equal(value, again[split][name]) for split in ("train", "test") for name, value in first[split].items())
    sampler = _Sampler(dataclasses.replace(CONFIG, n_train=1, n_test=0, seed=0))
    direct = generate_samples(
        sampler, split_key(CONFIG.seed, "train"), CONFIG.n_train, chunk_size=2, batch_size=CONFIG.batch_size,
        progress=False, checkpoint_dir=f"{cache_dir}/chunks-{jax.process_index()}",
    )
    if jax.process_index() == 0:
        np.savez(
            out, generated=np.asarray([first.generated, again.generated]), reread_equal=np.asarray(same),
            **arrays, **{f"direct.{name}": value for name, value in direct.items()},
        )
    print(f"process {jax.process_index()} of {jax.process_count()}: generated {first.generated}, "
          f"then {again.generated}; {sorted(arrays)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
