"""The app owns navigation: screens open one another through the app and its screen registry,
a registered screen gets its keymap ids and F1 entries with no other edit, the runs list and
the monitor share their run actions, and the monitor's feed is a worker of its screen."""

from __future__ import annotations

import importlib
import pkgutil
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Label

import tui_tune.tui.screens
from tests.tui.conftest import wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.keymap import all_binding_ids, unknown_ids_problem
from tui_tune.tui.screens import registry
from tui_tune.tui.screens.editor import EditorScreen
from tui_tune.tui.screens.help import HelpScreen
from tui_tune.tui.screens.monitor import MonitorScreen
from tui_tune.tui.screens.presets import PresetsScreen
from tui_tune.tui.screens.runs import RunsScreen


class LabScreen(Screen):
    """A screen the app does not have: what a new one looks like."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("g", "go", "Go somewhere", id="lab.go"),
        Binding("escape", "back", "Back", id="lab.back"),
    ]

    def compose(self):
        yield Label("lab")
        yield Footer()

    def action_back(self) -> None:
        self.dismiss()


async def test_a_registered_screen_gets_its_keymap_ids_and_help_without_other_edits(
        workdir, monkeypatch):
    monkeypatch.setattr(registry, "ENTRIES", (
        *registry.ENTRIES, registry.ScreenEntry("lab", __name__, "LabScreen", "lab")))
    assert {"lab.go", "lab.back"} <= all_binding_ids()
    (workdir / "config" / "keymap.toml").write_text('[keys]\n"lab.go" = "k"\n')
    assert unknown_ids_problem({"lab.go": "k"}) is None
    app = TuneApp()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        app.open_screen("lab")
        await wait_for(pilot, lambda: isinstance(app.screen, LabScreen))
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        table = app.screen.query_one("DataTable")
        keys = {str(table.get_row_at(i)[2]): str(table.get_row_at(i)[0])
                for i in range(table.row_count)}
        assert keys["lab.go"] == "k" and "lab.back" in keys and "app.help" in keys
        assert not any("lab.go" in str(n.message) for n in app._notifications)


def test_every_screen_is_registered_and_its_ids_carry_its_prefix():
    defined = set()
    for info in pkgutil.iter_modules(tui_tune.tui.screens.__path__, "tui_tune.tui.screens."):
        module = importlib.import_module(info.name)
        defined |= {value for value in vars(module).values() if isinstance(value, type)
                    and issubclass(value, Screen) and value.__module__ == module.__name__}
    assert {entry.load() for entry in registry.ENTRIES} == defined
    for owner in registry.binding_owners():
        ids = [b.id for b in owner.load().BINDINGS if isinstance(b, Binding)]
        assert ids and all(i and i.startswith(f"{owner.prefix}.") for i in ids), owner.name


async def test_a_launched_run_opens_its_monitor_over_the_runs_list(make_run):
    """The editor hands a started run to the app, which closes the editor and presets."""
    run = make_run("20260101-000000-demo-tiny")
    app = TuneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        runs = app.screen
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
        app.show_new_run(run)
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        assert app.screen.run_dir == run and app.screen_stack[-2] is runs
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is runs)


async def test_resume_says_the_same_from_the_runs_list_and_the_monitor(make_run):
    """One module acts on runs for both screens: a resume that cannot start (its data file
    is missing) is reported alike, and the monitor no longer waits for it."""
    make_run("20260101-000000-demo-tiny")
    app = TuneApp()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        runs = app.screen
        await wait_for(pilot, lambda: [s.status for s in runs.summaries] == ["stopped"])

        async def failure_after_r() -> str:
            app.clear_notifications()
            await pilot.press("r")
            await wait_for(pilot, lambda: any("failed" in str(n.message)
                                              for n in app._notifications))
            return next(str(n.message) for n in app._notifications)

        from_list = await failure_after_r()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await wait_for(pilot, lambda: app.screen.status == "stopped")
        assert await failure_after_r() == from_list
        assert from_list.startswith("Resume failed: dataset.train_file")


async def test_the_monitor_feed_is_a_worker_that_ends_with_its_screen(make_run):
    run = make_run("20260101-000000-demo-tiny")
    app = TuneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(app.screen.summaries) == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        monitor = app.screen
        feeds = [w for w in app.workers if w.group == "run-feed"]
        assert [(w.node, w.name) for w in feeds] == [(monitor, f"watch-{run.name}")]
        await wait_for(pilot, lambda: monitor.status == "stopped")
        assert feeds[0].is_running
        await pilot.press("escape")
        await wait_for(pilot, lambda: feeds[0].is_finished and feeds[0].is_cancelled)
