"""``metrics.jsonl``: one JSON object per logged step, consistent with the checkpoints.

A run killed after step 1234 but resumed from the checkpoint at step 1000 replays steps
1001–1234; their old lines are dropped on resume so the file reads as one uninterrupted run.
A line cut short by a kill is dropped too.

In a multi-process job only process 0 writes (``write=False`` elsewhere); the others read the
records before the resume point, so that callbacks deciding from the history decide the same
on every process. The rewrite on resume is atomic (a temporary file renamed into place), so a
process reading meanwhile sees the old file or the new one, whose records up to the resume
point are the same.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class MetricsLog:
    def __init__(self, path: str | Path, resume_step: int = 0, write: bool = True):
        self.path = Path(path)
        kept = [record for record in read_metrics(self.path) if record.get("step", 0) <= resume_step]
        self.kept = tuple(kept)  # the run's records before the resume point
        self._file = None
        if not write:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(temporary, "w") as file:
            for record in kept:
                file.write(json.dumps(record) + "\n")
        os.replace(temporary, self.path)
        self._file = open(self.path, "a")

    def write(self, record: dict) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def read_metrics(path: str | Path) -> list[dict]:
    """The complete records of a ``metrics.jsonl`` file (a torn last line is skipped)."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
