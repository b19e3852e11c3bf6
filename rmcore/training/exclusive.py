"""One training at a time per output directory: a second is refused in one line, naming the first.

rmcore train --set output_dir=runs/mine     (twice at once: the second stops, naming the first)

The retrain flow trains each training key into a folder of its own, so two retrains of the same key
started at once meet here: the second would otherwise resume the first one's checkpoints and adopt
its MLflow run as if it had died. The lock is the operating system's (`flock` on output_dir/.lock),
released when its holder exits however it exits, so a killed run never blocks the next one.
"""

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from rmcore.training import TrainingError

LOCK = ".lock"
"""The lock file's name in the output directory."""


@contextlib.contextmanager
def sole_training(output_dir: Path) -> Iterator[None]:
    """This process alone trains into `output_dir` for the block.

    Raises TrainingError at once when another process holds it: the message names that process
    (pid, host, since when) and what to do.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    with (output_dir / LOCK).open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise TrainingError(
                f"{output_dir} is being trained by {holder}; wait for it to finish (a rerun then reuses "
                "its model) or stop it, then rerun"
            ) from None
        handle.seek(0)
        handle.truncate()
        since = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        handle.write(f"process {os.getpid()} on {socket.gethostname()} since {since}")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
