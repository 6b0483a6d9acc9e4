"""With a real training run: launch from the editor reaches `running`, closing the app does not
stop it, stop from the monitor (confirmed) ends it as `stopped`, and r resumes it (from the
monitor and from the runs list)."""

from __future__ import annotations

import os

import pytest

from tests.tui.conftest import wait_for
from tui_tune.runs.control import stop
from tui_tune.runs.status import run_status
from tui_tune.tui.app import TuneApp
from tui_tune.tui.editor_state import EditorState
from tui_tune.tui.screens.dialogs import ConfirmDialog
from tui_tune.tui.screens.editor import EditorScreen
from tui_tune.tui.screens.monitor import MonitorScreen
from tui_tune.tui.widgets.braille_chart import BrailleChart

pytestmark = pytest.mark.slow


@pytest.fixture
def worker_path(monkeypatch):
    """Detached workers must import this checkout's tui_tune, like the app does."""
    root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


async def stop_with_confirmation(pilot, app, monitor) -> None:
    await pilot.press("x")
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
    await pilot.press("y")
    await wait_for(pilot, lambda: monitor.status == "stopped", timeout=120)


async def test_launch_from_editor_then_stop_and_resume_from_monitor(workdir, demo_assets, worker_path):
    state = EditorState.from_preset("demo-tiny")
    state.set_value("general.backbone", str(demo_assets / "model"))
    state.set_value("dataset.train_file", str(demo_assets / "data" / "train.jsonl"))
    state.set_value("training.max_steps", 5000)
    state.set_value("logging.log_every_steps", 1)
    run_dir = None
    try:
        app = TuneApp(start=lambda: EditorScreen(state))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("f5")
            await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), timeout=30)
            run_dir = app.screen.run_dir
            await wait_for(pilot, lambda: app.screen.status == "running", timeout=60)
            loss = app.screen.query_one("#chart-loss", BrailleChart)
            await wait_for(pilot, lambda: "train" in loss.series and loss.series["train"].x.size,
                           timeout=120)
        assert run_status(run_dir) == "running"  # closing the app never stops a run

        app = TuneApp()  # keyboard only from the runs list
        async with app.run_test(size=(80, 24)) as pilot:
            runs = app.screen
            await wait_for(pilot, lambda: [s.status for s in runs.summaries] == ["running"])
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
            monitor = app.screen
            await wait_for(pilot, lambda: monitor.status == "running", timeout=30)
            await stop_with_confirmation(pilot, app, monitor)
            assert run_status(run_dir) == "stopped"
            await pilot.press("r")  # resume from the monitor: a new process, same run
            await wait_for(pilot, lambda: monitor.status == "running", timeout=60)
            await stop_with_confirmation(pilot, app, monitor)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is runs)
            await wait_for(pilot, lambda: [s.status for s in runs.summaries] == ["stopped"])
            await pilot.press("r")  # and from the runs list
            await wait_for(pilot, lambda: [s.status for s in runs.summaries] == ["running"],
                           timeout=60)
        assert run_status(run_dir) == "running"
    finally:
        if run_dir is not None and run_status(run_dir) == "running":
            stop(run_dir, grace_s=30)


async def test_sweep_from_editor_is_queued_and_listed(workdir, demo_assets, worker_path):
    from tui_tune.runs.store import RunStore
    from tui_tune.runs.sweep import list_sweeps, stop_sweep
    from tui_tune.tui.screens.presets import PresetsScreen
    from tui_tune.tui.screens.runs import RunsScreen
    state = EditorState.from_preset("demo-tiny")
    state.set_value("general.backbone", str(demo_assets / "model"))
    state.set_value("dataset.train_file", str(demo_assets / "data" / "train.jsonl"))
    state.set_value("training.max_steps", 20)
    state.set_sweep({"training.lr": [1e-3, 2e-3]})
    store = RunStore()
    try:
        app = TuneApp()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("n")
            await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
            app.push_screen(EditorScreen(state))
            await pilot.pause()
            await pilot.press("f5")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), timeout=30)
            await wait_for(pilot, lambda: len(app.screen.summaries) == 2, timeout=30)
            names = sorted(s.run_id for s in app.screen.summaries)
            assert "lr0.001" in names[0] + names[1] and "lr0.002" in names[0] + names[1]
    finally:
        for sweep in list_sweeps(store):
            stop_sweep(store, sweep.path, grace_s=30)
