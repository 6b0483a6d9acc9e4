"""Runs: the start screen. Every run, newest first, refreshed live from a worker thread."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label

from tui_tune.tui.formatting import STATUS_COLOURS, duration, format_number
from tui_tune.tui.runs_table import fit_columns, progress_cell
from tui_tune.tui.screens.dialogs import ConfirmDialog

REFRESH_S = 2.0


class RunsListed(Message):
    def __init__(self, summaries: list, sparks: dict[str, str], warnings: list[str]):
        super().__init__()
        self.summaries = summaries
        self.sparks = sparks
        self.warnings = warnings


def loss_sparkline(run_dir: Path) -> str:
    """A sparkline of the recent training loss, from the last 64 KiB of events."""
    from tui_tune.tui.run_data import read_recent  # numpy: imported off the first frame's path
    from tui_tune.tui.widgets.plotting import sparkline
    series, _, _ = read_recent(run_dir, max_bytes=64 << 10)
    return sparkline(series.step_values("loss")[-64:], 10)


def _number(value: float | None, width: int) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:,.0f}" if 100 <= abs(value) < 1e5 else format_number(value, width)


class RunsScreen(Screen):
    HELP_TITLE = "Runs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "New experiment", id="runs.new"),
        Binding("enter,o", "open", "Open monitor", id="runs.open"),
        Binding("x", "stop", "Stop", id="runs.stop"),
        Binding("r", "resume", "Resume", id="runs.resume"),
        Binding("m,space", "mark", "Mark for compare", id="runs.mark"),
        Binding("c", "compare", "Compare marked", id="runs.compare"),
        Binding("e", "edit_copy", "Edit a copy", id="runs.edit_copy"),
        Binding("f", "continue_from", "New run from its weights", id="runs.continue_from",
                show=False),
        Binding("delete,D", "delete", "Delete", id="runs.delete"),
        Binding("p", "presets", "Presets", id="runs.presets"),
        Binding("ctrl+r", "refresh", "Refresh", id="runs.refresh", show=False),
    ]

    def __init__(self, refresh_s: float = REFRESH_S):
        super().__init__()
        self.refresh_s = refresh_s
        self.summaries: list = []
        self.marked: set[str] = set()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._sparks: dict[str, tuple[tuple[int, int], str]] = {}
        self._shown_sparks: dict[str, str] = {}
        self.columns: list[tuple[str, str, int]] = []

    def compose(self) -> ComposeResult:
        yield Label("[b]Runs[/b]", id="runs-title", classes="status-line")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Label("", id="runs-empty", classes="muted")
        yield Footer()

    def on_mount(self) -> None:
        self._fit_columns(self.app.size.width)
        self.query_one(DataTable).focus()
        self.call_after_refresh(self._poll_runs)  # draw the first frame before listing runs

    def on_unmount(self) -> None:
        self._stop.set()
        self._wake.set()

    def on_screen_resume(self) -> None:
        self._wake.set()

    def on_resize(self, event) -> None:
        self._fit_columns(event.size.width)

    def _fit_columns(self, width: int) -> None:
        """Choose the columns that fit without scrolling sideways (see runs_table)."""
        columns = fit_columns(width)
        if columns == self.columns:
            return
        self.columns = columns
        table = self.query_one(DataTable)
        table.clear(columns=True)
        for key, label, column_width in columns:
            table.add_column(label, width=column_width, key=key)
        self._fill_rows()

    def action_refresh(self) -> None:
        self._wake.set()

    @work(thread=True, exclusive=True, group="runs-poll")
    def _poll_runs(self) -> None:
        """Lists runs every few seconds off the app thread and posts the result."""
        try:
            store = self.app.run_store()
        except ImportError as error:
            self.post_message(RunsListed([], {}, [f"runs layer unavailable: {error}"]))
            return
        while not self._stop.is_set():
            try:
                summaries = store.list()
                sparks = {s.run_id: self._sparkline(s.path) for s in summaries}
                self.post_message(RunsListed(summaries, sparks, list(store.warnings)))
            except Exception as error:  # noqa: BLE001 - shown, polling goes on
                self.post_message(RunsListed(self.summaries, {}, [f"listing runs: {error}"]))
            self._wake.wait(self.refresh_s)
            self._wake.clear()

    def _sparkline(self, run_dir: Path) -> str:
        """The loss sparkline, recomputed only when events.jsonl changed."""
        try:
            stat = (run_dir / "events.jsonl").stat()
        except OSError:
            return ""
        key = (stat.st_size, stat.st_mtime_ns)
        cached = self._sparks.get(run_dir.name)
        if cached is None or cached[0] != key:
            cached = self._sparks[run_dir.name] = (key, loss_sparkline(run_dir))
        return cached[1]

    @on(RunsListed)
    def _show(self, message: RunsListed) -> None:
        current = self.selected.run_id if self.selected else None
        self.summaries = message.summaries
        self._shown_sparks = message.sparks
        self._fill_rows(current)
        empty = "" if self.summaries else ("No runs yet. Press n to start from a preset, "
                                           "p to manage presets.")
        if message.warnings:
            empty = (empty + "  " if empty else "") + " | ".join(message.warnings[:2])
        self.query_one("#runs-empty", Label).update(Text(empty))
        self._show_title()

    def _fill_rows(self, current: str | None = None) -> None:
        table = self.query_one(DataTable)
        if current is None and self.selected:
            current = self.selected.run_id
        table.clear()
        for s in self.summaries:
            table.add_row(*self._row(s, self._shown_sparks.get(s.run_id, "")), key=s.run_id)
        ids = [s.run_id for s in self.summaries]
        if current in ids:
            table.move_cursor(row=ids.index(current))

    def _show_title(self) -> None:
        marked = f"  [yellow]{len(self.marked)} marked (c compares)[/]" if self.marked else ""
        self.query_one("#runs-title", Label).update(
            f"[b]Runs[/b] {len(self.summaries)}  [dim]Enter opens, n starts a new one, "
            f"F1 lists the keys[/dim]{marked}")

    def _row(self, s, spark: str) -> list:
        """The cells of one run, for the columns shown at this width."""
        width = {key: w for key, _, w in self.columns}
        colour = STATUS_COLOURS.get(s.shown_status, "white")
        mark = "*" if s.run_id in self.marked else " "
        cells = {"status": Text(mark + s.shown_status, style=f"bold {colour}"), "run": s.run_id,
                 "progress": progress_cell(s.step, s.steps_total, width.get("progress", 16)),
                 "loss": _number(s.last_loss, width.get("loss", 7)),
                 "trend": Text(spark[-width.get("trend", 10):], style="cyan"),
                 "tok/s": _number(s.tokens_per_s, width.get("tok/s", 7)),
                 "elapsed": duration(s.elapsed_s), "eta": duration(s.eta_s),
                 "preset": s.preset}
        return [cells[key] for key, _, _ in self.columns]

    @property
    def selected(self):
        table = self.query_one(DataTable)
        if not self.summaries or table.cursor_row >= len(self.summaries):
            return None
        return self.summaries[table.cursor_row]

    @on(DataTable.RowSelected)
    def _row_chosen(self) -> None:
        self.action_open()

    # -- actions ----------------------------------------------------------------------------
    def action_new(self) -> None:
        self.action_presets()

    def action_presets(self) -> None:
        from tui_tune.tui.screens.presets import PresetsScreen
        self.app.push_screen(PresetsScreen())

    def action_open(self) -> None:
        if self.selected:
            from tui_tune.tui.screens.monitor import MonitorScreen
            self.app.push_screen(MonitorScreen(self.selected.path))

    def action_mark(self) -> None:
        s = self.selected
        if s:
            self.marked ^= {s.run_id}
            table = self.query_one(DataTable)
            table.update_cell_at((table.cursor_row, 0), self._row(s, "")[0])
            self._show_title()

    def action_compare(self) -> None:
        paths = [s.path for s in self.summaries if s.run_id in self.marked]
        if len(paths) < 2:
            self.notify("Mark two or more runs with m (or space) first.", severity="warning")
            return
        from tui_tune.tui.screens.compare import CompareScreen
        self.app.push_screen(CompareScreen(paths))

    def action_edit_copy(self) -> None:
        if self.selected:
            self._edit_copy(self.selected)

    def action_continue_from(self) -> None:
        """A new experiment that starts from this run's weights (final/, else its newest
        checkpoint; an adapter is merged in), with its settings to change first: more steps,
        other data, a lower lr. `r` instead resumes the run itself, exactly as it was."""
        from tui_tune.runs.files import continue_weights

        s = self.selected
        if not s:
            return
        weights = continue_weights(s.path)
        if weights is None:
            self.notify(f"{s.run_id} has no weights to continue from ({s.status}): neither "
                        "final/ nor a checkpoint yet.", severity="warning")
            return
        self._edit_copy(s, weights=weights)

    def _edit_copy(self, s, weights: Path | None = None) -> None:
        from tui_tune.config import ConfigError
        from tui_tune.tui.editor_state import EditorState
        from tui_tune.tui.screens.editor import EditorScreen
        try:
            state = EditorState.from_run_config(s.path / "config.toml", s.preset)
        except ConfigError as error:
            self.notify(f"Cannot edit {s.run_id}: {error}", severity="error", timeout=8)
            return
        if weights:
            state.set_value("general.pretrained_weights", str(weights.resolve()))
            state.label = f"continue from run {s.run_id}"
        self.app.push_screen(EditorScreen(state))

    def action_stop(self) -> None:
        s = self.selected
        if not s:
            return
        if s.status != "running":
            self.notify(f"{s.run_id} is {s.status}, not running.", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.notify(f"Stopping {s.run_id}: it saves a checkpoint first...")
                self._control(s.path, "stop")
        self.app.push_screen(ConfirmDialog(f"Stop run {s.run_id}? It saves a checkpoint and "
                                           "can be resumed.", "Stop"), answered)

    def action_resume(self) -> None:
        s = self.selected
        if s:
            if s.status == "running":
                self.notify(f"{s.run_id} is running already.", severity="warning")
                return
            self._control(s.path, "resume")

    def action_delete(self) -> None:
        s = self.selected
        if not s:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._control(s.path, "delete")
        self.app.push_screen(ConfirmDialog(f"Delete run {s.run_id} and all its files "
                                           "(checkpoints, final weights)?", "Delete"), answered)

    @work(thread=True, group="run-control")
    def _control(self, run_dir: Path, verb: str) -> None:
        try:
            if verb == "stop":
                from tui_tune.runs.control import stop
                result = f"{run_dir.name} is {stop(run_dir)}"
            elif verb == "resume":
                from tui_tune.runs.launch import resume
                result = f"resumed {run_dir.name} (pid {resume(run_dir)})"
            else:
                from tui_tune.runs.control import delete
                delete(run_dir)
                self.marked.discard(run_dir.name)
                result = f"deleted {run_dir.name}"
        except Exception as error:  # noqa: BLE001 - the user sees why, not a traceback
            self.app.call_from_thread(self.notify, f"{verb} failed: {error}", severity="error",
                                      timeout=10)
        else:
            self.app.call_from_thread(self.notify, result)
        self._wake.set()
