"""Keys on every screen: F1 help and the command palette list each of the screen's actions,
a keymap rebinds by id (and names ids that match nothing), and no destructive action sits
on bare Escape."""

from __future__ import annotations

import json
import socket

import pytest
from textual.binding import Binding

from tests.tui.conftest import FIXED_T, classification_events, fixed_events, wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.editor_state import EditorState
from tui_tune.tui.screens.compare import CompareScreen
from tui_tune.tui.screens.dialogs import ConfirmDialog
from tui_tune.tui.screens.editor import EditorScreen
from tui_tune.tui.screens.help import HelpScreen
from tui_tune.tui.screens.monitor import MonitorScreen
from tui_tune.tui.screens.presets import PresetsScreen
from tui_tune.tui.screens.registry import bindings
from tui_tune.tui.screens.runs import RunsScreen

APP_IDS = {"app.help", "app.quit"}
READ_ONLY_HIDDEN = {"monitor.stop", "monitor.resume"}
MATRIX_ONLY = {"monitor.matrix"}  # keys of a classification run's monitor alone
IMAGES_ONLY = {"monitor.images"}  # keys of a multimodal run's monitor alone (test_tui_images)


def screen_factories(make_run):
    """name -> (factory of the screen, the Screen class)."""
    a = make_run("20260101-000000-demo-tiny")
    b = make_run("20260101-000100-lora", preset="lora")
    c = make_run("20260101-000200-demo-classify", preset="demo-classify",
                 events=classification_events())
    return {
        "runs": (RunsScreen, RunsScreen),
        "presets": (PresetsScreen, PresetsScreen),
        "editor": (lambda: EditorScreen(EditorState.from_preset("demo-tiny")), EditorScreen),
        "monitor": (lambda: MonitorScreen(a, sample_gpus=False), MonitorScreen),
        "watch": (lambda: MonitorScreen(a, read_only=True, sample_gpus=False), MonitorScreen),
        "compare": (lambda: CompareScreen([a, b]), CompareScreen),
        "classify": (lambda: MonitorScreen(c, sample_gpus=False), MonitorScreen),
    }


def own_ids(screen_class) -> set[str]:
    return {b.id for b in screen_class.BINDINGS if isinstance(b, Binding) and b.id}


SCREENS = ["runs", "presets", "editor", "monitor", "watch", "compare", "classify"]


def hidden_keys(name: str) -> set[str]:
    """Ids of the keys that do not apply on that screen (and are not listed)."""
    return (READ_ONLY_HIDDEN if name == "watch" else set()) \
        | (MATRIX_ONLY if name in ("monitor", "watch") else set()) \
        | (IMAGES_ONLY if name in ("monitor", "watch", "classify") else set())


@pytest.mark.parametrize("name", SCREENS)
async def test_f1_lists_every_key_of_the_current_screen(make_run, name):
    factory, screen_class = screen_factories(make_run)[name]
    expected = own_ids(screen_class) - hidden_keys(name) | APP_IDS
    app = TuneApp(start=factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, screen_class))
        if name == "classify":  # its key shows once the events are read
            await wait_for(pilot, lambda: app.screen.series.confusion is not None)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        table = app.screen.query_one("DataTable")
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        assert {str(r[2]) for r in rows} - {"-"} == expected
        assert all(str(r[0]).strip() for r in rows)  # every action shows its key
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, screen_class))


@pytest.mark.parametrize("name", SCREENS)
async def test_command_palette_lists_every_action_of_the_current_screen(make_run, name):
    factory, screen_class = screen_factories(make_run)[name]
    expected = {b.description for b in screen_class.BINDINGS if isinstance(b, Binding)
                and b.id not in hidden_keys(name)}
    app = TuneApp(start=factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, screen_class))
        if name == "classify":
            await wait_for(pilot, lambda: app.screen.series.confusion is not None)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert expected | {"Help", "Quit"} <= set(titles)
        assert titles.count("Quit") == 1
        if name == "watch":
            assert not {"Stop run", "Resume run"} & set(titles)


async def test_palette_runs_the_action_typed_into_it(workdir):
    app = TuneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"Presets")
        await pilot.pause(0.5)  # the palette searches in the background
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))


async def test_keymap_rebinding_shows_in_help_and_unknown_ids_are_named(workdir):
    (workdir / "config" / "keymap.toml").write_text(
        '[keys]\n"runs.stop" = "ctrl+x"\n"runs.stp" = "s"\n')
    app = TuneApp()
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await wait_for(pilot, lambda: any("runs.stp" in str(n.message)
                                          for n in app._notifications))
        assert not any("runs.stop," in str(n.message) for n in app._notifications)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        table = app.screen.query_one("DataTable")
        keys = {str(table.get_row_at(i)[2]): str(table.get_row_at(i)[0])
                for i in range(table.row_count)}
        assert keys["runs.stop"] == "^x"


def test_escape_only_goes_back_closes_or_cancels():
    """Bare Escape never deletes, stops, overwrites or discards: those ask first."""
    safe = {"back", "cancel", "close", "answer(False)"}
    on_escape = [(owner, b.action) for owner, b in bindings()
                 if "escape" in b.key.split(",")]
    assert on_escape, "no Escape bindings found: the test reads the wrong modules"
    assert all(action in safe for _, action in on_escape), on_escape


async def test_stop_from_the_runs_list_asks_first_and_escape_keeps_the_run(make_run):
    """A running run (launched on another host, so no process to check) is not stopped
    by pressing x and then Escape."""
    run = make_run("20260101-000000-demo-tiny", events=fixed_events(status=None))
    info = json.loads((run / "run.json").read_text())
    info.update(launched_at=FIXED_T, host=f"not-{socket.gethostname()}", status="running")
    (run / "run.json").write_text(json.dumps(info))
    before = (run / "run.json").read_text()
    app = TuneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(app.screen.summaries) == 1)
        assert app.screen.summaries[0].status == "running"
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.pause(0.3)
    assert (run / "run.json").read_text() == before
