"""One live launch per run directory: a flock on <run>/worker.lock that dies with its holders.

launch() takes it exclusively around check-and-spawn (a second launch fails to get it and is
refused), then turns it shared and hands its open file to the accelerate launcher it starts;
every worker rank takes it shared for its whole life. So while any launcher or rank of the run
lives, nobody gets it exclusively, and the kernel frees it when the last of them ends, however
they end (SIGKILL, OOM killer, lost node): no stale lock file to clean up.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from tui_tune.rundir import RunDir

LOCK_ENV = "TUI_TUNE_WORKER_LOCK"  # the lock file a launch's workers hold (per node)


class RunLocked(Exception):
    """Another launch or worker of this run is alive."""


def lock_path(run_dir: Path, node_rank: int | None = None) -> Path:
    """worker.lock; with several nodes sharing the run folder, one per node (each node starts
    its own launch of the same run)."""
    return RunDir(run_dir).worker_lock(node_rank)


def _open(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)


def take_for_launch(path: Path) -> int:
    """The lock held exclusively (an open fd); RunLocked if any process of the run holds it."""
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunLocked(str(path)) from None
    return fd


def share(fd: int) -> None:
    """Exclusive to shared, so the started workers can take it too (the launcher keeps fd)."""
    fcntl.flock(fd, fcntl.LOCK_SH)


def hold_for_worker(run_dir: Path) -> int:
    """A worker's shared hold, kept open for the life of the process (never closed on purpose)."""
    fd = _open(Path(os.environ.get(LOCK_ENV) or lock_path(run_dir)))
    fcntl.flock(fd, fcntl.LOCK_SH)  # waits only the moment a launch holds it exclusively
    return fd


def is_held(path: Path) -> bool:
    """Does any process of the run hold the lock (checked without waiting)?"""
    if not Path(path).exists():
        return False
    try:
        take_and_release = take_for_launch(Path(path))
    except RunLocked:
        return True
    os.close(take_and_release)
    return False
