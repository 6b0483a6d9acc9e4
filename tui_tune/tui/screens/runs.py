"""Runs: the start screen. Every run, newest first, refreshed live from a worker thread.

Rows show at once from run.json; details fill in from the worker, the rows on screen first
(runs_listing), and later refreshes touch only the cells that changed: a thousand runs list in
well under a second and the app stays responsive (and quick to exit) while they load."""

from __future__ import annotations

import gc
import threading
from functools import partial
from pathlib import Path
from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label

from tui_tune.rundir import RunDir
from tui_tune.runs.listing import runs_root
from tui_tune.runs.sweep_groups import SweepGroup, grouped
from tui_tune.tui.runs_filter import kept
from tui_tune.tui.runs_listing import FIRST_ROWS, Listing, StagedLister
from tui_tune.tui.runs_table import fit_columns, group_cells, run_cells
from tui_tune.tui.screens.runs_actions import RunActionsMixin
from tui_tune.tui.widgets.fitting_footer import FittingFooter
from tui_tune.tui.widgets.row_table import RowTable

REFRESH_S = 2.0
# FIRST_ROWS (more than a tall screen shows) are added to the table at once ...
MORE_ROWS = 250  # ... the rest in batches of this many, one per paint
STALL_S = 0.5
DRAW_WAIT_S = 1.0  # at most this long the details wait for the first rows to be drawn


class RunsListed(Message):
    def __init__(self, listing: Listing):
        super().__init__()
        self.listing = listing


def loss_sparkline(run_dir: Path) -> str:
    """A sparkline of the recent training loss, from the last 64 KiB of events."""
    from tui_tune.tui.run_data import read_recent  # numpy: imported off the first frame's path
    from tui_tune.tui.widgets.plotting import sparkline
    series, _, _ = read_recent(run_dir, max_bytes=64 << 10)
    return sparkline(series.step_values("loss")[-64:], 10)


def shown_folder(folder: Path) -> str:
    """The runs folder as the title names it: relative to the working folder when inside it,
    else with ~ for the home folder."""
    folder = Path(folder).absolute()
    for base, prefix in ((Path.cwd(), ""), (Path.home(), "~/")):
        try:
            rest = folder.relative_to(base)
        except ValueError:
            continue
        return f"{prefix}{rest}/" if str(rest) != "." else (prefix or "./")
    return f"{folder}/"


class RunsScreen(RunActionsMixin, Screen):
    HELP_TITLE = "Runs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "New experiment", id="runs.new"),
        Binding("enter,o", "open", "Open monitor", id="runs.open"),
        Binding("x", "stop", "Stop", id="runs.stop"),
        Binding("r", "resume", "Resume", id="runs.resume"),
        Binding("m,space", "mark", "Mark for compare", id="runs.mark"),
        Binding("c", "compare", "Compare marked", id="runs.compare"),
        Binding("t", "chat", "Chat", id="runs.chat"),
        Binding("T", "chat_base", "Chat A/B with base", id="runs.chat_base", show=False),
        Binding("e", "edit_copy", "Edit a copy", id="runs.edit_copy"),
        Binding("f", "continue_from", "New run from its weights", id="runs.continue_from",
                show=False),
        Binding("delete,D", "delete", "Delete", id="runs.delete"),
        Binding("p", "presets", "Presets", id="runs.presets"),
        Binding("a", "notes", "Notes & tags", id="runs.notes"),
        Binding("slash", "filter", "Filter", id="runs.filter"),
        Binding("ctrl+r", "refresh", "Refresh", id="runs.refresh", show=False),
    ]

    def __init__(self, refresh_s: float = REFRESH_S):
        super().__init__()
        self.refresh_s = refresh_s
        self.rows: list = []  # what the table shows, in order; some may lack details yet
        # (each sweep's SweepGroup summary row before its members)
        self._groups: dict[str, SweepGroup] = {}
        self.summaries: list = []  # the latest complete listing (every run with its details)
        self._listed: list = []  # the latest listing's rows, before the filter
        self._warnings: list[str] = []  # the latest listing's (unreadable runs)
        self.filter_text = ""  # the filter box's query (tui/runs_filter.py)
        self._detailed: frozenset[str] = frozenset()
        self._shown_ids: list[str] = []  # every row's id, in order (the table may hold fewer yet)
        self._added = 0  # how many of them the table holds
        self._batch = 0  # counts the batches of rows added, to tell a stale paint news
        self._cursor_to: str | None = None  # the run the cursor goes back to once added
        self._wanted: list[str] = []  # ids on screen: the worker reads their details first
        self.marked: set[str] = set()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._drawn = threading.Event()  # set after the table painted new rows
        self._sparks: dict[str, tuple[tuple[int, int], str]] = {}
        self._shown_sparks: dict[str, str] = {}
        self.columns: list[tuple[str, str, int]] = []
        self._lister: StagedLister | None = None  # what the worker knows of each run
        self._root: Path | None = None  # the runs folder listed (the title names it)

    def compose(self) -> ComposeResult:
        yield Label("[b]Runs[/b]", id="runs-title", classes="status-line")
        yield Input(placeholder="filter: name, status, preset, notes or #tag "
                    "(Enter keeps it, Esc clears)", id="runs-filter")  # fits 80 columns
        yield RowTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Label("", id="runs-detail")
        yield Label("", id="runs-empty", classes="muted")
        yield FittingFooter()

    def on_mount(self) -> None:
        self._fit_columns(self.app.size.width)
        table = self.query_one(DataTable)
        table.focus()
        self.watch(table, "scroll_y", self._note_visible, init=False)
        # the table measures new rows when idle, then paints them
        self.watch(table, "virtual_size",
                   lambda: self.call_after_refresh(self._painted, self._batch), init=False)
        self.call_after_refresh(self._list_first)  # draw the first frame before listing runs

    def on_unmount(self) -> None:
        self._stop.set()
        self._wake.set()
        self._drawn.set()

    def on_screen_resume(self) -> None:
        self._wake.set()

    def on_resize(self, event) -> None:
        self._fit_columns(event.size.width)
        self._show_title()  # its hint goes or comes back whole

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

    def _list_first(self) -> None:
        """Every run's row from the folders and run.json, here on the UI thread (a few ms for
        a thousand runs; see runs_listing), then the details and later passes from the worker.
        The runs layer behind the details (pydantic with it) is loaded only after that."""
        if not gc.get_freeze_count():
            # what start-up made lives as long as the app: frozen, a full collection (set off
            # by the rows' objects, before they were drawn) need not walk it (50-70 ms)
            gc.freeze()
        root = self._root = runs_root(self.app.runs_dir)
        # (the worker finds it here: as its argument, the worker's name would repr every row)
        self._lister = StagedLister(root, self.app.run_store, self._sparkline)
        try:
            listing = self._lister.first_rows()
        except Exception:  # noqa: BLE001 - the worker's first pass lists them, and says why not
            self._lister = StagedLister(root, self.app.run_store, self._sparkline)
            listing = None
        else:
            self._drawn.clear()
            self._show(RunsListed(listing))
        self._poll_runs(listing is not None and bool(listing.changed))

    @work(thread=True, exclusive=True, group="runs-poll")
    def _poll_runs(self, rows_shown: bool) -> None:
        """Lists runs every few seconds off the app thread, posting each stage of a pass."""
        lister = self._lister
        assert lister is not None
        if rows_shown:  # let the first rows be drawn before the details compete with drawing
            self._drawn.wait(DRAW_WAIT_S)
        while not self._stop.is_set():
            try:
                for listing in lister.passes(lambda: self._wanted, self._stop.is_set):
                    self._drawn.clear()
                    if self._stop.is_set():  # (on_unmount sets _stop, then _drawn)
                        return
                    self.post_message(RunsListed(listing))
                    if listing.changed and not listing.detailed & listing.changed:
                        # new rows from run.json: let them be drawn before the details
                        # compete with drawing for the interpreter
                        self._drawn.wait(DRAW_WAIT_S)
            except Exception as error:  # noqa: BLE001 - shown, polling goes on
                self.post_message(RunsListed(Listing(self.rows, set(), {}, [
                    f"listing runs: {error}"], complete=False, detailed=self._detailed)))
            self._wake.wait(self.refresh_s)
            self._wake.clear()

    def _sparkline(self, run_dir: Path) -> str:
        """The loss sparkline, recomputed only when events.jsonl changed."""
        try:
            stat = RunDir(run_dir).events.stat()
        except OSError:
            return ""
        key = (stat.st_size, stat.st_mtime_ns)
        cached = self._sparks.get(run_dir.name)
        if cached is None or cached[0] != key:
            cached = self._sparks[run_dir.name] = (key, loss_sparkline(run_dir))
        return cached[1]

    @on(RunsListed)
    def _show(self, message: RunsListed) -> None:
        listing = message.listing
        self._detailed = listing.detailed
        self._shown_sparks = listing.sparks or self._shown_sparks
        self._listed = listing.rows
        self._show_rows(listing.rows, listing.changed)
        if listing.complete:
            self.summaries = listing.rows
        self._warnings = listing.warnings
        self._show_empty()
        self._show_title()
        self._show_detail()

    def _show_empty(self) -> None:
        """What an empty table means: no runs yet, or none the filter matches (at once as
        the filter changes, not at the next listing)."""
        empty = "" if self.rows else ("No runs yet. Press n to start from a preset, "
                                      "p to manage presets.")
        if not self.rows and self._listed:
            empty = f"No run matches the filter '{self.filter_text}'; Escape clears it."
        if self._warnings:
            empty = (empty + "  " if empty else "") + " | ".join(self._warnings[:2])
        self.query_one("#runs-empty", Label).update(Text(empty))

    def _show_rows(self, rows: list, changed: set[str]) -> None:
        """Rebuild the table when runs came or went, else update the changed rows' cells."""
        current = self._current_id()
        rows = grouped(kept(rows, self.filter_text))
        self._groups = {g.sweep_id: g for g in rows if isinstance(g, SweepGroup)}
        for group in self._groups.values():  # the best member (its star) may have moved
            if any(m.run_id in changed for m in group.members):
                changed = changed | {group.run_id} | {m.run_id for m in group.members}
        self.rows = rows
        if [s.run_id for s in rows] != self._shown_ids:
            self._fill_rows(current)
            return
        table = self.query_one(DataTable)
        for s in rows[:self._added]:  # rows not added yet are added with their news
            if s.run_id in changed:
                cells = self._row(s, self._shown_sparks.get(s.run_id, ""))
                for (key, _, _), value in zip(self.columns, cells, strict=True):
                    table.update_cell(s.run_id, key, value)

    def _fill_rows(self, current: str | None = None) -> None:
        """Rebuild the table: the first rows now, the others a batch after each paint, so that a
        thousand runs show as fast as ten."""
        if current is None:
            current = self._current_id()
        self.query_one(DataTable).clear()
        self._shown_ids = [s.run_id for s in self.rows]
        self._added = 0
        self._cursor_to = current
        self._add_rows(FIRST_ROWS)

    def _painted(self, batch: int) -> None:
        """The newest rows were measured and painted: only now the next batch (it would hold
        up the paint), and only now the worker's details (they would slow it down). News of an
        earlier batch (the empty table's size, before the runs were listed) is no such news."""
        if batch != self._batch:
            return
        self._drawn.set()
        if self._added < len(self.rows):
            self._add_rows(MORE_ROWS)

    def _add_rows(self, count: int) -> None:
        table = self.query_one(DataTable)
        current = self._cursor_to
        start, end = self._added, min(len(self.rows), self._added + count)
        for s in self.rows[start:end]:
            table.add_row(*self._row(s, self._shown_sparks.get(s.run_id, "")), key=s.run_id)
        self._added = end
        self._batch += 1
        if current in self._shown_ids[start:end]:
            table.move_cursor(row=self._shown_ids.index(current))
        if end < len(self.rows):  # in case the table's size came out as before (no paint
            self.set_timer(STALL_S, partial(self._painted, self._batch))  # news): go on
        self._note_visible()

    def _note_visible(self, *_) -> None:
        """Tell the worker which runs are on screen, to read their details first."""
        table = self.query_one(DataTable)
        first = int(table.scroll_y)
        self._wanted = self._shown_ids[first:first + max(1, table.size.height)]

    def _show_title(self) -> None:
        marked = f"  [yellow]{len(self.marked)} marked (c compares)[/]" if self.marked else ""
        runs = sum(1 for row in self.rows if not isinstance(row, SweepGroup))  # not sweep rows
        count = f"{runs}"
        if self.filter_text.strip():
            count = f"{runs} of {len(self._listed)} [yellow](filtered)[/]"
        folder = f" in {escape(shown_folder(self._root))}" if self._root else ""
        title = f"[b]Runs[/b] {count}{folder}{marked}"
        room = (self.size.width or self.app.size.width) - 2  # the title's padding
        hint = next((h for h in ("  [dim]Enter opens, n starts a new one, F1 lists the keys[/dim]",
                                 "  [dim]F1 lists the keys[/dim]", "")
                     if Text.from_markup(title + h).cell_len <= room), "")  # whole or none
        self.query_one("#runs-title", Label).update(title + hint)

    def _row(self, s, spark: str) -> list:
        """The cells of one run (or sweep summary), for the columns shown at this width."""
        if isinstance(s, SweepGroup):
            return group_cells(s, self.columns)
        return run_cells(s, self.columns, spark, detailed=s.run_id in self._detailed,
                         marked=s.run_id in self.marked,
                         group=self._groups.get(s.sweep_id or ""))

    def _current_id(self) -> str | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row >= min(len(self.rows), self._added):
            return None
        return self.rows[table.cursor_row].run_id

    @property
    def selected(self):
        """The run under the cursor (None on a sweep's summary row)."""
        row = self._selected_row()
        return None if isinstance(row, SweepGroup) else row

    def _selected_row(self):
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row >= min(len(self.rows), self._added):
            return None
        return self.rows[table.cursor_row]

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        """The highlighted run's story in one line under the table: why it failed (the
        monitor shows it whole). Hidden when there is nothing to tell."""
        row = self.selected
        text = Text()
        if row is not None and row.short_reason and row.run_id in self._detailed:
            text.append(f"{row.status}: ", style="bold red")
            text.append(row.reason_line or row.short_reason)
        elif row is not None and (row.notes or row.tags):
            text.append(" ".join(f"#{t}" for t in row.tags) + " ", style="bold yellow")
            text.append(row.notes)
        detail = self.query_one("#runs-detail", Label)
        detail.update(text)
        detail.display = bool(text)

    @on(DataTable.RowSelected)
    def _row_chosen(self) -> None:
        self.action_open()

    # -- actions (navigation is the app's; on the chosen runs: runs_actions.py) --------------
    def action_new(self) -> None:
        self.action_presets()

    def action_presets(self) -> None:
        self.app.open_presets()

    def action_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._show_rows(self._listed, set())
        self._show_empty()
        self._show_title()
        self._show_detail()

    @on(Input.Submitted, "#runs-filter")
    def _filter_kept(self) -> None:
        self.query_one(DataTable).focus()

    def key_escape(self) -> bool | None:
        """Escape in the filter box clears and hides it (elsewhere it is the app's)."""
        box = self.query_one("#runs-filter", Input)
        if not box.has_focus and not self.filter_text:
            return None
        box.value = ""
        box.display = False
        self.query_one(DataTable).focus()
        return True
