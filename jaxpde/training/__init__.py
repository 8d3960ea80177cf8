"""The training engine shared by every learned method in jaxpde.

See `fit` for the loop, `AbstractTrainStep` for custom update rules, `Evaluate` and
`EarlyStopping` for callbacks, `ArrayLoader` for resumable in-memory data, `CheckpointStore`
for verified orbax checkpoints, `run_lock` for the one-writer-per-folder lock and
`DataParallel` for the device placement.
"""

from ._callbacks import Callback, EarlyStopping, Evaluate, LogPoint
from ._checkpoints import CheckpointStore, CorruptCheckpointError
from ._engine import NonFiniteError, TrainResult, TrainState, fit
from ._feeds import ArrayLoader
from ._identity import RunMismatchError
from ._lock import RunLockedError, run_lock
from ._metrics_log import read_metrics
from ._sharding import DataParallel
from ._steps import AbstractTrainStep, OptaxStep, StepOutput

__all__ = [
    "AbstractTrainStep",
    "ArrayLoader",
    "Callback",
    "CheckpointStore",
    "CorruptCheckpointError",
    "DataParallel",
    "EarlyStopping",
    "Evaluate",
    "LogPoint",
    "NonFiniteError",
    "OptaxStep",
    "RunLockedError",
    "RunMismatchError",
    "StepOutput",
    "TrainResult",
    "TrainState",
    "fit",
    "read_metrics",
    "run_lock",
]
