"""A full disk, told as such: the worker's end reason when a save fails for want of space.

torch.save on a full disk says only "unexpected pos 2205376 vs 2205268" and safetensors "I/O
error ... (os error 28)"; neither names the folder. The reason becomes one line naming the run
folder and the cause, and the cut-off checkpoint (step-N.tmp, never complete) is removed so
that the end event and run.json still fit.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from tui_tune.rundir import RunDir

FULL_BELOW_BYTES = 1 << 20  # less free space than this counts as a full disk
NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"


def disk_full_message(error: BaseException, run_dir: Path) -> str | None:
    """The end reason when `error` comes from a full disk under `run_dir`, else None."""
    chain = list(_chain(error))
    said = any(isinstance(e, OSError) and e.errno == errno.ENOSPC or NO_SPACE in str(e)
               or "os error 28" in str(e) for e in chain)
    if not said and not (any(isinstance(e, (OSError, RuntimeError)) for e in chain)
                         and free_bytes(run_dir) < FULL_BELOW_BYTES):
        return None
    return (f"{NO_SPACE}: cannot write in {run_dir}; free some space, then "
            f"`tui-tune resume {Path(run_dir).name}`")


def free_bytes(folder: Path) -> int:
    """Space this process may still write there (root may use the reserved blocks too)."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return FULL_BELOW_BYTES  # unknown: do not claim the disk is full
    blocks = stats.f_bfree if os.geteuid() == 0 else stats.f_bavail
    return blocks * stats.f_frsize


def remove_partial_checkpoints(run_dir: Path) -> None:
    """Delete checkpoints/step-N.tmp: a save cut off midway, never resumable (runs/files.py)."""
    for partial in RunDir(run_dir).partial_checkpoints():
        shutil.rmtree(partial, ignore_errors=True)


def _chain(error: BaseException):
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__
