"""Small, crash-safe JSON files of a run directory (run.json, ranks/, sweep.json).

Writers replace whole files atomically (temp file + fsync + rename) so a reader never sees half a
file; readers treat a missing or broken file as absent instead of failing.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tui_tune.rundir import CHECKPOINT_STATE, RunDir, checkpoint_step


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """A run's complete checkpoints, oldest first: step-N with its state file (a save cut off
    midway is still step-N.tmp and not listed)."""
    run = RunDir(run_dir)
    found = [p for p in run.checkpoint_candidates() if (p / CHECKPOINT_STATE).is_file()
             and checkpoint_step(p) is not None] if run.checkpoints.is_dir() else []
    return sorted(found, key=checkpoint_step)


def newest_checkpoint(run_dir: Path) -> Path | None:
    found = checkpoint_dirs(run_dir)
    return found[-1] if found else None


def continue_weights(run_dir: Path) -> Path | None:
    """What a new run can start from (general.pretrained_weights): final/ of a completed run,
    else the newest checkpoint of a stopped one; both hold the weights or the adapter."""
    final = RunDir(run_dir).final
    return final if final.is_dir() else newest_checkpoint(run_dir)


def read_json(path: Path) -> dict[str, Any] | None:
    """The object in a JSON file, or None when it is missing, unreadable or not an object."""
    try:
        with open(path, "rb") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    # imported here: tui_tune.config loads pydantic, which readers of run.json do not need
    from tui_tune.config.toml_io import write_atomic
    write_atomic(Path(path), json.dumps(data, indent=2, default=str) + "\n")


def read_run_json(run_dir: Path) -> dict[str, Any]:
    return read_json(RunDir(run_dir).run_json) or {}


def update_run_json(run_dir: Path, **fields: Any) -> dict[str, Any]:
    """Read-modify-write run.json; None removes a key. The app (notes, tags, stop), the launcher
    and the worker (status at its end) all write it, so each update holds an exclusive flock
    on the run folder itself (no extra file): one writer's keys never undo another's."""
    with _folder_lock(Path(run_dir)):
        data = read_run_json(run_dir)
        for key, value in fields.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        write_json_atomic(RunDir(run_dir).run_json, data)
    return data


@contextmanager
def _folder_lock(folder: Path):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield  # no folder yet (or no access): write_json_atomic reports what is wrong
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def tail_text(path: Path, lines: int = 15, max_bytes: int = 16384) -> str:
    """The last lines of a text file (console.log), for a died run's reason."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace").replace("\r", "\n")
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
