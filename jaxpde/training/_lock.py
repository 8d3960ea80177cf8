"""One writer per run folder: an exclusive `flock` on ``out_dir/.lock``.

Two processes training into the same folder would interleave their checkpoints and write
every metrics line twice, and each would believe it owns the run. `run_lock` takes an
exclusive, non-blocking ``fcntl.flock`` on ``out_dir/.lock`` and writes the holder's pid,
host name and start time into it, so a second writer fails at once with `RunLockedError`
naming the holder. The kernel releases the lock when the holder exits, however it exits
(``kill -9`` included): a stale ``.lock`` file never blocks a later run.

The lock is re-entrant within a process: the CLI holds it around a whole experiment (dataset,
training, results) and `fit` takes it again on the same folder. `flock` alone cannot do
that — a second ``open`` of the file is a second open file description, which conflicts
with the first even in the same process — so the process keeps one descriptor per folder
and a count of its holders.

In a multi-process job (one run, several processes writing collectively, see
`jaxpde.distributed`) the processes are one writer: process 0 alone takes the lock, and every
process learns whether it got it, so that all of them raise `RunLockedError` together rather
than some waiting forever in a collective for those that raised.

`flock` is advisory and local to one machine's kernel; on network file systems (NFS) it may
be emulated or ignored, so two hosts sharing a folder over NFS are not reliably excluded.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import jax

from .. import distributed

LOCK_NAME = ".lock"

# A process-wide registry is unavoidable here: re-entrancy is a property of the process, and
# the lock must be shared by every caller in it (the CLI and the `fit` it calls).
_registry_guard = threading.Lock()
_held: dict[str, list] = {}  # resolved folder -> [file object, holder count]


class RunLockedError(RuntimeError):
    """Another process holds the run folder. ``holder`` is the text of its ``.lock`` file."""

    def __init__(self, directory: Path, holder: str):
        self.directory, self.holder = directory, holder
        who = holder or "an unknown process (it has not written its name yet)"
        super().__init__(
            f"run_lock: the run folder {directory} is in use by {who}; a second writer would corrupt its "
            "checkpoints and metrics. Wait for that process to finish, stop it, or choose another folder."
        )


@contextlib.contextmanager
def run_lock(out_dir: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock on the run folder `out_dir` (created if missing) for a block.

    Re-entrant within one process; raises `RunLockedError` at once (no waiting) when another
    process holds it. Yields the folder's resolved path.
    """
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    name = str(directory.resolve())
    with _registry_guard:
        entry = _held.get(name)
        if entry is None:
            _held[name] = entry = [_acquire_for_the_job(Path(name)), 0]
        entry[1] += 1
    try:
        yield Path(name)
    finally:
        with _registry_guard:
            entry[1] -= 1
            if entry[1] == 0:
                del _held[name]
                file = entry[0]
                if file is not None:  # None on the processes of a job other than process 0
                    fcntl.flock(file, fcntl.LOCK_UN)
                    file.close()


def _acquire_for_the_job(directory: Path):
    """The lock file held open (process 0), or ``None`` (the other processes of a job)."""
    if jax.process_count() == 1:
        return _acquire(directory)
    file, error = None, None
    if distributed.is_primary():
        try:
            file = _acquire(directory)
        except RunLockedError as raised:
            error = raised
    if distributed.all_agree(error is None):
        return file
    if error is None:
        # Process 0 failed; the holder's text is in the file for everyone to read.
        error = RunLockedError(directory, (directory / LOCK_NAME).read_text().strip())
    if file is not None:
        fcntl.flock(file, fcntl.LOCK_UN)
        file.close()
    raise error


def _acquire(directory: Path):
    # "a+" neither truncates nor requires the file: the holder's text must survive our attempt.
    file = open(directory / LOCK_NAME, "a+")
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.seek(0)
        holder = file.read().strip()
        file.close()
        raise RunLockedError(directory, holder) from None
    file.seek(0)
    file.truncate()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    file.write(f"process {os.getpid()} on host {socket.gethostname()} (since {started})\n")
    file.flush()
    return file
