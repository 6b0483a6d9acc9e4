"""A letter means one thing across the runs screen, the monitor and compare (today's `e`/`f`
edited a copy on one and smoothed on the other), and Home/End go to the first and last row of
a table (issue 21 minor 15)."""

from __future__ import annotations

import pytest

from tests.tui.conftest import wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.compare import CompareScreen
from tui_tune.tui.screens.monitor import MonitorScreen
from tui_tune.tui.screens.runs import RunsScreen

# the same action on each screen (their ids differ by the screen's name)
SAME_MEANING = {"stop", "stop_run", "resume", "resume_run", "chat", "zoom", "log_scale",
                "smoothing", "pick_chart", "back"}


def meanings(screen) -> dict[str, str]:
    return {key.strip(): b.action for b in screen.BINDINGS for key in b.key.split(",")}


def test_a_letter_means_one_thing_on_the_runs_monitor_and_compare_screens():
    keys: dict[str, set[str]] = {}
    for screen in (RunsScreen, MonitorScreen, CompareScreen):
        for key, action in meanings(screen).items():
            keys.setdefault(key, set()).add(action.replace("_run", ""))
    clashes = {key: actions for key, actions in keys.items()
               if len(actions) > 1 and not actions <= SAME_MEANING}
    assert clashes == {}


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_home_and_end_go_to_the_first_and_last_run(make_run, size):
    for minute in range(3):
        make_run(f"20260101-00{minute:02d}00-demo-tiny")
    app = TuneApp()
    async with app.run_test(size=size) as pilot:
        runs = app.screen
        await wait_for(pilot, lambda: isinstance(runs, RunsScreen) and len(runs.summaries) == 3)
        table = runs.query_one("#runs-table")
        await pilot.press("end")
        assert table.cursor_row == 2
        await pilot.press("home")
        assert table.cursor_row == 0
        await pilot.press("p")  # the presets list too
        await wait_for(pilot, lambda: app.screen is not runs)
        presets = app.screen.query_one("#preset-list")
        await pilot.press("end")
        assert presets.cursor_row == presets.row_count - 1 > 0
        await pilot.press("home")
        assert presets.cursor_row == 0
