"""What every run command shares: the usage exit code, one-line errors, the refresh pace."""

from __future__ import annotations

import sys
from pathlib import Path

from tui_tune.runs.store import RunStore

USAGE_ERROR = 2
REFRESH_S = 0.25


def fail(message: str) -> int:
    """A user's mistake or the machine's refusal: one line on stderr, exit code 2."""
    print(f"tui-tune: {message}", file=sys.stderr)
    return USAGE_ERROR


def warn_skipped(store: RunStore) -> None:
    for warning in store.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def file_system_error(error: OSError, root: Path) -> str:
    """One line naming the folder and the cause ("No space left on device", "Read-only file
    system"): the runs folder when the failing file is in it (or unnamed), else the file."""
    cause = error.strerror or str(error) or type(error).__name__
    named = Path(error.filename) if isinstance(error.filename, str) else None
    root = root.absolute()
    if named is not None and named.is_absolute() and not named.is_relative_to(root):
        return f"{named}: {cause}"
    path = named.absolute() if named is not None else None  # rmtree names files by dir fd
    inside = f" (writing {path.relative_to(root)})" \
        if path is not None and path.is_relative_to(root) and path != root else ""
    return f"the runs folder {root}: {cause}{inside}"
