"""The training engine shared by every learned method in jaxpde.

See `fit` for the loop, `ArrayLoader` for resumable in-memory data, `CheckpointStore` for
verified orbax checkpoints and `DataParallel` for the device placement.
"""

from ._checkpoints import CheckpointStore, CorruptCheckpointError
from ._engine import NonFiniteError, TrainResult, TrainState, fit
from ._feeds import ArrayLoader
from ._metrics_log import read_metrics
from ._sharding import DataParallel

__all__ = [
    "ArrayLoader",
    "CheckpointStore",
    "CorruptCheckpointError",
    "DataParallel",
    "NonFiniteError",
    "TrainResult",
    "TrainState",
    "fit",
    "read_metrics",
]
