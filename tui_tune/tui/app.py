"""The tui-tune Textual app: runs, experiment editor, presets, run monitor, compare.

It only reads and writes files (presets, run directories) and starts or signals runs through
tui_tune.runs; it never imports torch & co, so it opens in well under a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar

from rich.markup import escape
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from tui_tune.tui.exit_guard import ExitGuard
from tui_tune.tui.keymap import load_keymap


class TuneApp(App[int]):
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    TITLE = "tui-tune"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1,question_mark", "help", "Help", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(self, runs_dir: str | Path | None = None, watch: str | None = None,
                 keymap_file: Path | None = None, start: Callable[[], Screen] | None = None,
                 exit_guard: ExitGuard | None = None):
        super().__init__()
        self.start = start  # the first screen; tests open any screen this way
        self.runs_dir = Path(runs_dir) if runs_dir else None
        self.watch = watch
        self.keymap_file = keymap_file
        # open_app installs it (signals, watchdog) before the app is even imported
        self.exit_guard = exit_guard or ExitGuard()
        self.hung_up: str | None = None  # why the terminal or session went away
        self.exit_note = ""  # said in the terminal once the app is closed (live runs)

    # -- start and stop ---------------------------------------------------------------------
    async def run_async(self, **kwargs) -> int | None:
        """Hang-ups are the app's to handle from the moment its loop runs, before the terminal
        is put in application mode: any hang-up after that gets the orderly exit."""
        self.exit_guard.attach(asyncio.get_running_loop(), self._hung_up,
                               lambda: self.return_code or 0)
        return await super().run_async(**kwargs)

    def exit(self, *args, **kwargs) -> None:
        """Closing never stops a run; what still runs is said once the terminal is back."""
        try:
            self.exit_note = live_runs_note(self._live_runs())
        except Exception:  # noqa: BLE001 - a note must never keep the app from closing
            self.exit_note = ""
        super().exit(*args, **kwargs)

    def _live_runs(self) -> list[str]:
        """The runs the open screens last saw running (no new look at the disk: quitting
        stays instant)."""
        from tui_tune.tui.screens.monitor import MonitorScreen
        from tui_tune.tui.screens.runs import RunsScreen
        live: dict[str, None] = {}
        for screen in self.screen_stack:
            if isinstance(screen, RunsScreen):
                live.update((s.run_id, None) for s in screen.summaries if s.status == "running")
            elif isinstance(screen, MonitorScreen) and screen.status == "running":
                live[screen.run_dir.name] = None
        return list(live)

    def on_mount(self) -> None:
        keymap, problem = load_keymap(self.keymap_file)
        if keymap:
            self.set_keymap(keymap)
            self.call_after_refresh(self._check_keymap_ids, keymap)  # off the first frame
        if problem:
            self.notify(problem, severity="warning", timeout=10)
        if self.start is not None:
            self.push_screen(self.start())
        elif self.watch:
            self._open_watch(self.watch)
        else:
            self.open_screen("runs")
            self.call_after_refresh(self._offer_kept_changes)

    def _check_keymap_ids(self, keymap: dict[str, str]) -> None:
        from tui_tune.tui.keymap import unknown_ids_problem
        problem = unknown_ids_problem(keymap)
        if problem:
            self.notify(problem, severity="warning", timeout=10)

    def _hung_up(self, reason: str) -> None:
        """The terminal or session went away (SIGHUP, SIGTERM, stdin closed, a failed write):
        keep unsaved editor changes for the next start, then exit. Runs go on."""
        if self.hung_up is not None:
            return
        self.hung_up = reason
        for screen in self.screen_stack:  # no imports here: they can take a second at startup
            keep_unsaved = getattr(screen, "keep_unsaved", None)
            if keep_unsaved is not None:
                keep_unsaved()
        if self.return_code is None:
            self.exit(None, 0)

    def _offer_kept_changes(self, done: frozenset[Path] = frozenset()) -> None:
        """Editor changes kept at a hang-up: open them again, or delete them (one at a time)."""
        from tui_tune.tui import recovery
        from tui_tune.tui.screens.dialogs import ConfirmDialog
        waiting = [p for p in recovery.kept() if p not in done]
        if not waiting:
            return
        path = waiting[0]
        loaded = recovery.load(path)
        if loaded is None:
            self.notify(f"Skipped a damaged recovery file: {path}", severity="warning")
            self._offer_kept_changes(done | {path})
            return
        state, kept_at = loaded
        when = time.strftime(" at %H:%M on %d %b", time.localtime(kept_at)) if kept_at else ""

        def answered(open_it: bool | None) -> None:
            recovery.discard(path)  # the editor holds them now, or the user let them go
            if open_it:
                self.open_editor(state)
            else:
                self._offer_kept_changes(done | {path})
        self.push_screen(ConfirmDialog(
            f"Unsaved editor changes ({escape(state.label)}) were kept when the app was "
            f"closed without asking{when}. Open them? (No deletes them.)", "Open"), answered)

    def _open_watch(self, run: str) -> None:
        try:  # a run of the runs folder only, as every command that takes a run
            path = self.run_store().resolve(run)
        except Exception as error:  # noqa: BLE001 - shown to the user, app exits
            self.exit(None, 1, message=f"tui-tune --watch {run}: {error}")
            return
        self.open_monitor(path, read_only=True)

    def run_store(self):
        from tui_tune.runs.store import RunStore
        return RunStore(self.runs_dir)

    async def action_quit(self) -> None:
        """Quit; unsaved editor changes are the one thing closing can lose, so ask first.
        Runs are never stopped by closing the app."""
        from tui_tune.tui.screens.dialogs import ConfirmDialog
        from tui_tune.tui.screens.editor import EditorScreen
        dirty = [s for s in self.screen_stack if isinstance(s, EditorScreen) and s.state.dirty]
        if not dirty:
            self.exit(0)
            return
        if any(isinstance(s, ConfirmDialog) for s in self.screen_stack):
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit(0)
        self.push_screen(ConfirmDialog("Quit and discard unsaved editor changes? "
                                       "(Runs keep running.)", "Quit"), answered)

    # -- navigation: screens open one another only through these ---------------------------
    def open_screen(self, name: str, *args, **kwargs) -> Screen:
        """Open a screen of the registry (screens/registry.py) by name, on top of this one."""
        from tui_tune.tui.screens.registry import screen_class
        screen = screen_class(name)(*args, **kwargs)
        self.push_screen(screen)
        return screen

    def open_presets(self) -> None:
        self.open_screen("presets")

    def open_editor(self, state) -> None:
        """The experiment editor on `state` (an EditorState)."""
        self.open_screen("editor", state)

    def open_monitor(self, run_dir: Path, read_only: bool = False) -> None:
        self.open_screen("monitor", run_dir, read_only=read_only)

    def open_compare(self, run_dirs: list[Path]) -> None:
        self.open_screen("compare", run_dirs)

    def open_chat(self, run_dirs: list[Path], with_base: bool = False) -> None:
        """Chat with one run's model, two side by side, or one beside its base model."""
        self.open_screen("chat", run_dirs, with_base=with_base)

    def back_to_runs(self) -> None:
        """Close every screen above the runs list (the editor, the presets under it). A screen
        opened without a runs list below (tests, --watch) stays under what comes next."""
        from tui_tune.tui.screens.registry import screen_class
        runs = screen_class("runs")
        if not any(isinstance(s, runs) for s in self.screen_stack):
            return
        while not isinstance(self.screen, runs):
            self.pop_screen()

    def show_new_run(self, run_dir: Path) -> None:
        """A run just started from the editor: its monitor, over the runs list."""
        self.back_to_runs()
        self.open_monitor(run_dir)  # Escape there leads back to the runs

    # -- help and command palette ---------------------------------------------------------
    def action_help(self) -> None:
        from tui_tune.tui.screens.help import HelpScreen
        if not isinstance(self.screen, HelpScreen):
            self.open_screen("help", self.screen)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every action with a description on the current screen, then Textual's own
        (theme, keys, screenshot...) except those already listed under the same title."""
        seen, titles = set(), set()
        for active in screen.active_bindings.values():
            binding = active.binding
            if not binding.description or (binding.id or binding.action) in seen:
                continue
            seen.add(binding.id or binding.action)
            titles.add(binding.description)
            yield SystemCommand(binding.description, f"key: {self.get_key_display(binding)}",
                                partial(active.node.run_action, binding.action))
        for command in super().get_system_commands(screen):
            if command.title not in titles:
                yield command


def live_runs_note(run_ids: list[str]) -> str:
    """One line saying that these runs keep running after the app closed ("" for none)."""
    if not run_ids:
        return ""
    shown = ", ".join(run_ids[:2]) + (f" and {len(run_ids) - 2} more" if len(run_ids) > 2 else "")
    one = len(run_ids) == 1
    return (f"{len(run_ids)} run{'' if one else 's'} {'keeps' if one else 'keep'} running "
            f"({shown}): `tui-tune ls` lists {'it' if one else 'them'}, `tui-tune stop RUN` "
            "stops one.")
