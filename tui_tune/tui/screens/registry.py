"""Every screen of the app in one table. The app opens screens by name from it
(`TuneApp.open_screen`), and the keymap check and F1 help read the binding ids and their
prefixes from it: adding a screen is one entry here.

Entries name their module instead of importing it, so that the app starts without loading
the screens it does not show yet (the editor's settings schema takes a while to import).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class ScreenEntry:
    """One screen (or the app itself): how it is opened and whose keys it has."""

    name: str  # what the app opens it by
    module: str  # where its class lives
    class_name: str
    prefix: str  # each of its Binding ids is "<prefix>.<action>"

    def load(self) -> type:
        return getattr(importlib.import_module(self.module), self.class_name)


_HERE = "tui_tune.tui.screens."
# The app's own keys (help, quit) are rebound and listed like a screen's.
APP = ScreenEntry("app", "tui_tune.tui.app", "TuneApp", "app")
ENTRIES: tuple[ScreenEntry, ...] = (
    ScreenEntry("runs", _HERE + "runs", "RunsScreen", "runs"),
    ScreenEntry("editor", _HERE + "editor", "EditorScreen", "editor"),
    ScreenEntry("presets", _HERE + "presets", "PresetsScreen", "presets"),
    ScreenEntry("monitor", _HERE + "monitor", "MonitorScreen", "monitor"),
    ScreenEntry("compare", _HERE + "compare", "CompareScreen", "compare"),
    ScreenEntry("chat", _HERE + "chat", "ChatScreen", "chat"),
    ScreenEntry("help", _HERE + "help", "HelpScreen", "help"),
    ScreenEntry("confirm", _HERE + "dialogs", "ConfirmDialog", "confirm"),
    ScreenEntry("prompt", _HERE + "dialogs", "PromptDialog", "prompt"),
    ScreenEntry("text", _HERE + "dialogs", "TextDialog", "text"),
    ScreenEntry("choice", _HERE + "dialogs", "ChoiceDialog", "choice"),
    ScreenEntry("preview", _HERE + "editor_preview", "DataPreviewScreen", "preview"),
)


def entry(name: str) -> ScreenEntry:
    for found in ENTRIES:
        if found.name == name:
            return found
    raise KeyError(f"no screen named {name!r} in {__name__}")


def screen_class(name: str) -> type:
    return entry(name).load()


def binding_owners() -> tuple[ScreenEntry, ...]:
    """The app and every screen: whatever has keys a keymap may rebind."""
    return (APP, *ENTRIES)


def binding_prefixes() -> tuple[str, ...]:
    """The id prefixes of our own bindings (F1 leaves out the widgets' generic keys)."""
    return tuple(f"{owner.prefix}." for owner in binding_owners())


def bindings() -> list[tuple[str, Binding]]:
    """(class name, binding) for every binding of the app and its screens."""
    found = []
    for owner in binding_owners():
        cls = owner.load()
        found += [(cls.__name__, b) for b in cls.BINDINGS if isinstance(b, Binding)]
    return found


def binding_ids() -> set[str]:
    """Every Binding id of the app and its screens: what a keymap may rebind."""
    return {binding.id for _, binding in bindings() if binding.id}
