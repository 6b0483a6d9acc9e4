"""What the app does to a run: stop, resume, delete, and a new experiment from it (a copy of
its settings, or a start from its weights).

The runs list and the monitor both call these, so an action asks, works and reports the same
way from either: stop and delete ask first, the work runs in a worker thread (stop waits for
a checkpoint, resume preflights the data), and the outcome is one notification.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from rich.markup import escape
from textual.screen import Screen

from tui_tune.rundir import RunDir
from tui_tune.tui.screens.dialogs import ConfirmDialog

After = Callable[[bool], object]  # called on the app thread with whether the action worked


def ask_stop(screen: Screen, run_dir: Path, after: After | None = None) -> None:
    """Stop the run once confirmed: it saves a checkpoint and can be resumed."""
    name = run_dir.name

    def answered(yes: bool | None) -> None:
        if yes:
            screen.notify(f"Stopping {name}: it saves a checkpoint first...")
            _control(screen, "stop", run_dir, after)
    screen.app.push_screen(ConfirmDialog(f"Stop run {escape(name)}? It saves a checkpoint and "
                                         "can be resumed.", "Stop"), answered)


def resume(screen: Screen, run_dir: Path, status: str, after: After | None = None) -> None:
    """Start the run again from its newest checkpoint, unless it is running."""
    if status == "running":
        screen.notify(f"{run_dir.name} is running already.", severity="warning")
        return
    if status == "completed":
        screen.notify(f"{run_dir.name} completed; nothing to resume (f starts a new run from "
                      "its weights).", severity="warning")
        return
    _control(screen, "resume", run_dir, after)


def ask_delete(screen: Screen, run_dir: Path, after: After | None = None) -> None:
    """Delete the run's directory once confirmed (a live run is stopped first)."""
    def answered(yes: bool | None) -> None:
        if yes:
            _control(screen, "delete", run_dir, after)
    screen.app.push_screen(ConfirmDialog(f"Delete run {escape(run_dir.name)} and all its files "
                                         "(checkpoints, final weights)?", "Delete"), answered)


def chat(screen: Screen, run_dirs: list[Path], with_base: bool = False) -> None:
    """The chat screen on the runs' models, once each has weights a model can answer with."""
    from tui_tune.config.errors import ConfigError
    from tui_tune.config.problem_types import CHAT_TYPES
    from tui_tune.runs.files import continue_weights
    from tui_tune.runs.launch import load_experiment

    for run_dir in run_dirs:
        try:
            kind = load_experiment(run_dir).general.problem_type
        except (ConfigError, OSError) as error:
            screen.notify(f"{run_dir.name}: {escape(str(error))}", severity="error")
            return
        if kind not in CHAT_TYPES:
            screen.notify(f"{run_dir.name} is a {kind} run: its model labels text rather "
                          "than answering; chat needs a causal LM run.", severity="warning")
            return
        if continue_weights(run_dir) is None:
            screen.notify(f"{run_dir.name} has no weights yet: chat once it saves a "
                          "checkpoint or completes.", severity="warning")
            return
    screen.app.open_chat(run_dirs, with_base=with_base)


def _stop(run_dir: Path) -> str:
    from tui_tune.runs.control import stop
    return f"{run_dir.name} is {stop(run_dir)}"


def _resume(run_dir: Path) -> str:
    from tui_tune.runs.launch import resume as resume_run
    return f"Resumed {run_dir.name} (pid {resume_run(run_dir)})"


def _delete(run_dir: Path) -> str:
    from tui_tune.runs.control import delete
    delete(run_dir)
    return f"Deleted {run_dir.name}"


WORK: dict[str, Callable[[Path], str]] = {"stop": _stop, "resume": _resume, "delete": _delete}


def _control(screen: Screen, verb: str, run_dir: Path, after: After | None) -> None:
    app = screen.app
    screen.run_worker(partial(_work, app, verb, run_dir, after), thread=True,
                      group="run-control", name=f"{verb} {run_dir.name}")


def _work(app, verb: str, run_dir: Path, after: After | None) -> None:
    try:
        result = WORK[verb](run_dir)
    except Exception as error:  # noqa: BLE001 - the user sees why, not a traceback
        app.call_from_thread(app.notify, f"{verb.capitalize()} failed: {error}",
                             severity="error", timeout=10)
        ok = False
    else:
        app.call_from_thread(app.notify, result)
        ok = True
    if after is not None:
        app.call_from_thread(after, ok)


def edit_copy(screen: Screen, run, weights: Path | None = None) -> None:
    """The editor on a copy of the run's settings (`run`: its RunSummary); with `weights`,
    a new experiment that starts from them."""
    from tui_tune.config import ConfigError
    from tui_tune.tui.editor_state import EditorState
    try:
        state = EditorState.from_run_config(RunDir(run.path).config, run.preset)
    except ConfigError as error:
        screen.notify(f"Cannot edit {run.run_id}: {error}", severity="error", timeout=8)
        return
    if weights:
        state.set_value("general.pretrained_weights", str(weights.resolve()))
        state.label = f"continue from run {run.run_id}"
    screen.app.open_editor(state)


def continue_from(screen: Screen, run) -> None:
    """A new experiment that starts from the run's weights (final/, else its newest
    checkpoint; an adapter is merged in), with its settings to change first: more steps,
    other data, a lower lr. Resume instead goes on with the run itself, exactly as it was."""
    from tui_tune.runs.files import continue_weights
    weights = continue_weights(run.path)
    if weights is None:
        screen.notify(f"{run.run_id} has no weights to continue from ({run.status}): neither "
                      "final/ nor a checkpoint yet.", severity="warning")
        return
    edit_copy(screen, run, weights=weights)
