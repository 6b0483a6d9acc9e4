"""Where `tui-tune export --merged/--adapter` writes: checked before anything heavy is loaded,
written into DIR.partial and renamed, so a failed or cut-off export leaves no half folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tui_tune.rundir import RunDir

PARTIAL_SUFFIX = ".partial"


class ExportRefused(Exception):
    """The output folder cannot be used: one line saying what to do instead."""


def check_target(target: Path, run_dir: Path, force: bool) -> Path:
    """The output folder, absolute. Refused: the run's own folder or anything holding it (with
    --force that would delete the run), its final/ or checkpoints/, a file, and a folder with
    something in it unless --force."""
    target, run = Path(target).absolute().resolve(), Path(run_dir).resolve()
    sources = (RunDir(run).final, RunDir(run).checkpoints)
    if target == run or target in run.parents:
        raise ExportRefused(f"{target} holds the run itself; pick a folder outside {run}.")
    if any(target == source or source in target.parents for source in sources):
        raise ExportRefused(f"{target} is inside the run's own weights; pick another folder.")
    if target.exists() and not target.is_dir():
        raise ExportRefused(f"{target} is a file; pick a folder.")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ExportRefused(f"{target} is not empty; pick another folder or add --force to "
                            "replace it.")
    return target


@contextmanager
def written_atomically(target: Path) -> Iterator[Path]:
    """Yields DIR.partial to write into; on success it replaces DIR (an older DIR is removed
    only after the new one is in place), on any failure it is removed."""
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    old = target.with_name(target.name + ".replaced")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    partial.rename(target)
    shutil.rmtree(old, ignore_errors=True)
