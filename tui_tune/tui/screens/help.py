"""F1 / ? help: the keys of the screen it was opened from, read from the live bindings."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label

from tui_tune.tui.screens.registry import binding_prefixes
from tui_tune.tui.widgets.row_table import RowTable


def screen_keys(screen: Screen) -> list[tuple[str, str, str]]:
    """(keys, description, binding id) for the app's own bindings active on `screen`.

    Widgets' generic keys (cursor movement, scrolling) are left out: they are not actions.
    Ours are those whose id has the prefix of a registered screen (screens/registry.py).
    """
    rows: dict[tuple[str, str], list[str]] = {}
    ours = binding_prefixes()
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.description or not (binding.id or "").startswith(ours):
            continue
        display = screen.app.get_key_display(binding) if binding.key == key else key
        rows.setdefault((binding.description, binding.id or binding.action), []).append(display)
    return sorted(((" ".join(dict.fromkeys(keys)), desc, ident)
                   for (desc, ident), keys in rows.items()), key=lambda r: r[1].lower())


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,question_mark,q", "close", "Close help", id="help.close")]

    def __init__(self, for_screen: Screen):
        super().__init__()
        self.for_screen = for_screen

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            name = getattr(self.for_screen, "HELP_TITLE", type(self.for_screen).__name__)
            yield Label(f"Keys: {name}   (Ctrl+P: command palette with every action)",
                        classes="question")
            yield RowTable(id="keys", cursor_type="row", zebra_stripes=True)
            yield Label("Rebind by id in keymap.toml in the config dir; Escape closes",
                        classes="hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("key", "action", "id")
        for keys, description, ident in screen_keys(self.for_screen):
            table.add_row(keys, description, ident)
        table.add_row("^p", "Command palette (every action)", "-")

    def action_close(self) -> None:
        self.dismiss(None)
