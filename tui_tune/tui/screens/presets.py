"""Presets: built-in, local and user presets with a TOML preview, diff, copy, rename, delete."""

from __future__ import annotations

from typing import ClassVar

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Label, Static

from tui_tune.config import ConfigError
from tui_tune.config.diff import diff_experiments
from tui_tune.config.foreign_import import report_lines
from tui_tune.config.presets import PresetInfo, list_presets, resolve
from tui_tune.tui import preset_files
from tui_tune.tui.screens.dialogs import ConfirmDialog, PromptDialog, TextDialog
from tui_tune.tui.widgets.fitting_footer import FittingFooter
from tui_tune.tui.widgets.row_table import RowTable


class PresetsScreen(Screen):
    HELP_TITLE = "Presets"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,e", "edit", "Edit", id="presets.edit"),
        Binding("m", "mark", "Mark for diff", id="presets.mark"),
        Binding("d", "diff", "Diff with marked", id="presets.diff"),
        Binding("c", "duplicate", "Duplicate", id="presets.duplicate"),
        Binding("r", "rename", "Rename", id="presets.rename"),
        Binding("delete,x", "delete", "Delete", id="presets.delete"),
        Binding("i", "import_file", "Import file", id="presets.import"),
        Binding("escape", "back", "Back", id="presets.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.presets: list[PresetInfo] = []
        self.marked: PresetInfo | None = None

    def compose(self) -> ComposeResult:
        yield Label("[b]Presets[/b]  Enter edits a preset (built-ins open as a new copy)",
                    classes="status-line")
        with Horizontal():
            yield RowTable(id="preset-list", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="preset-preview"):
                yield Static("", id="preview", markup=False)
        yield FittingFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(" ", "name", "source")
        self.reload()
        table.focus()

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self, select: str | None = None) -> None:
        table = self.query_one(DataTable)
        current = select or (self.selected.path.name if self.selected else None)
        self.presets = list_presets()
        table.clear()
        for info in self.presets:
            mark = "*" if self.marked and info.path == self.marked.path else ""
            table.add_row(mark, info.name, info.source, key=str(info.path))
        for row, info in enumerate(self.presets):
            if current and info.path.name == current:
                table.move_cursor(row=row)
                break
        self._preview()

    @property
    def selected(self) -> PresetInfo | None:
        table = self.query_one(DataTable)
        if not self.presets or table.cursor_row >= len(self.presets):
            return None
        return self.presets[table.cursor_row]

    @on(DataTable.RowHighlighted)
    def _preview(self) -> None:
        info = self.selected
        text = ""
        if info:
            try:
                text = (f"# {info.name}: {info.where}\n\n"
                        f"{info.path.read_text(encoding='utf-8')}")
            except OSError as error:
                text = f"cannot read {info.path}: {error}"
        self.query_one("#preview", Static).update(text)

    def _fail(self, error: Exception) -> None:
        self.notify(str(error), severity="error", timeout=8)

    @on(DataTable.RowSelected)
    def _row_chosen(self) -> None:
        self.action_edit()

    # -- actions ----------------------------------------------------------------------------
    def action_edit(self) -> None:
        info = self.selected
        if not info:
            return
        from tui_tune.tui.editor_state import EditorState
        try:
            state = EditorState.from_preset(str(info.path))
        except ConfigError as error:
            self._fail(error)
            return
        self.app.open_editor(state)

    def action_mark(self) -> None:
        self.marked = self.selected
        table = self.query_one(DataTable)
        for row, info in enumerate(self.presets):
            table.update_cell_at((row, 0), "*" if info is self.marked else "")
        if self.marked:
            self.notify(f"Marked {self.marked.name}: move to another preset and press d.")

    def action_diff(self) -> None:
        info = self.selected
        if not (info and self.marked):
            self.notify("Mark a preset with m first, then press d on another.")
            return
        try:
            old, new = resolve(str(self.marked.path)), resolve(str(info.path))
        except ConfigError as error:
            self._fail(error)
            return
        changes = diff_experiments(old.experiment, new.experiment)
        body = "\n".join(str(c) for c in changes) or "No differences."
        self.app.push_screen(TextDialog(f"{self.marked.name} -> {info.name}", body))

    def action_duplicate(self) -> None:
        info = self.selected
        if info:
            self._ask_name(f"Duplicate {info.name} as:", f"{info.name}-copy",
                           lambda name: preset_files.duplicate(info, name))

    def action_rename(self) -> None:
        info = self.selected
        if info:
            self._ask_name(f"Rename {info.name} to:", info.name,
                           lambda name: preset_files.rename(info, name))

    def action_import_file(self) -> None:
        def chosen(answer: str | None) -> None:
            if not answer:
                return
            try:
                imported = preset_files.import_file(answer)
            except (ConfigError, OSError) as error:
                self._fail(error)
                return
            self.notify(f"Wrote {imported.path}")
            self.reload(select=imported.path.name)
            if imported.unmapped:
                self.app.push_screen(TextDialog(f"Imported {imported.tool} config",
                                                "\n".join(report_lines(imported))))
        self.app.push_screen(PromptDialog("Import a preset (.toml) or an H2O LLM Studio, "
                                          "axolotl or LLaMA-Factory config (.yaml):", ""),
                             chosen)

    def _ask_name(self, question: str, value: str, operation) -> None:
        def chosen(answer: str | None) -> None:
            if not answer:
                return
            try:
                path = operation(answer)
            except (ConfigError, OSError) as error:
                self._fail(error)
                return
            self.notify(f"Wrote {path}")
            self.reload(select=path.name)
        self.app.push_screen(PromptDialog(question, value), chosen)

    def action_delete(self) -> None:
        info = self.selected
        if not info:
            return
        if info.source not in preset_files.EDITABLE_SOURCES:
            self.notify(f"{info.name} is a {info.source} preset: it cannot be deleted.",
                        severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                try:
                    preset_files.delete(info)
                except (ConfigError, OSError) as error:
                    self._fail(error)
                    return
                self.notify(f"Deleted {info.path}")
                self.reload()
        self.app.push_screen(ConfirmDialog(f"Delete preset {escape(info.name)} "
                                           f"({info.path})?", "Delete"), answered)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.dismiss()
