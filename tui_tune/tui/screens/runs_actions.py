"""The runs screen's actions on the selected or marked runs: open, mark, compare, chat, edit a
copy, continue from, stop, resume, delete, notes. The dialogs and processes behind them are
tui/run_actions.py; this is the screen's side (which run, what to refresh after)."""

from __future__ import annotations

from textual.widgets import DataTable

from tui_tune.runs.sweep_groups import SweepGroup
from tui_tune.tui import run_actions


class RunActionsMixin:
    """Mixed into RunsScreen: it provides rows, marked, selected, _selected_row, _detailed
    (the runs whose details are read), the table and its cells, notify, the app and the wake
    event that refreshes the listing."""

    def action_open(self) -> None:
        row = self._selected_row()
        if isinstance(row, SweepGroup):  # a sweep's row compares its runs
            paths = [m.path for m in row.members]
            if len(paths) > 1:
                self.app.open_compare(paths)
            elif paths:
                self.app.open_monitor(paths[0])
        elif row:
            self.app.open_monitor(row.path)

    def action_mark(self) -> None:
        row = self._selected_row()
        if row is None:
            return
        ids = {m.run_id for m in row.members} if isinstance(row, SweepGroup) else {row.run_id}
        self.marked = self.marked - ids if ids <= self.marked else self.marked | ids
        table = self.query_one(DataTable)
        for index, shown in enumerate(self.rows[:self._added]):
            if shown.run_id in ids:
                table.update_cell_at((index, 0), self._row(shown, "")[0])
        self._show_title()

    def action_compare(self) -> None:
        paths = [s.path for s in self.rows
                 if not isinstance(s, SweepGroup) and s.run_id in self.marked]
        if len(paths) < 2:
            self.notify("Mark two or more runs with m (or space) first.", severity="warning")
            return
        self.app.open_compare(paths)

    def action_chat(self) -> None:
        """Chat with the selected run's model; with two runs marked, with both side by side."""
        marked = [s.path for s in self.rows if s.run_id in self.marked]
        if len(marked) == 2:
            run_actions.chat(self, marked)
        elif len(marked) > 2:
            self.notify("Chat side by side takes two marked runs.", severity="warning")
        elif self.selected:
            run_actions.chat(self, [self.selected.path])

    def action_chat_base(self) -> None:
        """The selected run's model beside its base model, the same prompt to both."""
        if self.selected:
            run_actions.chat(self, [self.selected.path], with_base=True)

    def action_edit_copy(self) -> None:
        if self.selected:
            run_actions.edit_copy(self, self.selected)

    def action_continue_from(self) -> None:
        """A new run from this run's weights; `r` instead resumes the run itself."""
        if self.selected:
            run_actions.continue_from(self, self.selected)

    def _checked(self, s) -> bool:
        """Whether the run's status is known (not just run.json's word); says so if not."""
        if s.run_id in self._detailed:
            return True
        self.notify(f"Still reading {s.run_id}; try again in a moment.", severity="warning")
        return False

    def action_stop(self) -> None:
        s = self.selected
        if not s or not self._checked(s):
            return
        if s.status != "running":
            self.notify(f"{s.run_id} is {s.status}, not running.", severity="warning")
            return
        run_actions.ask_stop(self, s.path, after=self._refresh_after)

    def action_resume(self) -> None:
        s = self.selected
        if s and self._checked(s):
            run_actions.resume(self, s.path, s.status, after=self._refresh_after)

    def action_delete(self) -> None:
        s = self.selected
        if s:
            run_actions.ask_delete(self, s.path, after=lambda ok: self._deleted(s.run_id, ok))

    def action_notes(self) -> None:
        """The run's notes and tags, as one line: words starting with # are tags."""
        s = self.selected
        if s is None:
            return
        from tui_tune.runs.notes import as_line, save
        from tui_tune.tui.screens.dialogs import PromptDialog

        def answered(text: str | None) -> None:
            if text is None:
                return
            try:
                save(s.path, text)
            except OSError as error:
                self.notify(f"Could not write {s.run_id}'s run.json: {error}", severity="error")
                return
            self._refresh_after(True)
        self.app.push_screen(PromptDialog(
            f"Notes and tags of {s.run_id} (words starting with # are tags; empty clears)",
            as_line(s.notes, s.tags), placeholder="baseline for the lr sweep #keep",
            allow_empty=True), answered)

    def _deleted(self, run_id: str, ok: bool) -> None:
        if ok:
            self.marked.discard(run_id)
        self._refresh_after(ok)

    def _refresh_after(self, _ok: bool) -> None:
        self._wake.set()
