"""Unsaved editor changes kept when the app ends without asking (a hang-up, SIGTERM), so that
losing the terminal loses nothing: one JSON file per editor under <config dir>/recovery/,
offered by the next start (open it or delete it).

Every start asks `kept()`, right after the runs screen's first frame: it stays light (the
settings schema, pydantic with it, ~0.3 s, is imported only to keep or load a file), so the
UI thread is free to draw the runs list meanwhile."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_tune.runs.files import read_json, write_json_atomic

if TYPE_CHECKING:
    from tui_tune.tui.editor_state import EditorState

VERSION = 1


def recovery_dir() -> Path:
    base = os.environ.get("TUI_TUNE_CONFIG_DIR")
    if base:
        return Path(base) / "recovery"
    from platformdirs import user_config_dir
    return Path(user_config_dir("tui-tune")) / "recovery"


def keep(state: EditorState) -> Path:
    """Write the editor's state (as typed, problems and all) to a new recovery file."""
    from tui_tune.config import experiment_dict
    now = time.time()
    path = recovery_dir() / f"editor-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-" \
                            f"{os.getpid()}-{id(state):x}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {
        "v": VERSION, "kept_at": now, "label": state.label, "extends": state.extends,
        "target": str(state.target) if state.target else None, "data": state.data,
        "base": experiment_dict(state.base) if state.base is not None else None})
    return path


def kept() -> list[Path]:
    """Recovery files, newest first."""
    try:
        return sorted(recovery_dir().glob("editor-*.json"), reverse=True)
    except OSError:
        return []


def load(path: Path) -> tuple[EditorState, float | None] | None:
    """The kept state (marked modified) and when it was kept; None for a damaged file."""
    from tui_tune.config import ConfigError, validate_experiment
    from tui_tune.tui.editor_state import EditorState
    record = read_json(path)
    if record is None or not isinstance(record.get("data"), dict):
        return None
    base = None
    if isinstance(record.get("base"), dict):
        try:
            base = validate_experiment(record["base"])
        except ConfigError:
            base = None
    target = record.get("target")
    state = EditorState(record["data"], _text(record.get("extends")),
                        Path(target) if isinstance(target, str) and target else None,
                        _text(record.get("label")) or "recovered changes", base, dirty=True)
    state.validate()
    kept_at = record.get("kept_at")
    return state, float(kept_at) if isinstance(kept_at, (int, float)) else None


def discard(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
