"""Small app habits from issue 21: a completed run is not resumed; charts without data say
what they wait for."""

from __future__ import annotations

import pytest

from tests.tui.conftest import fixed_events, wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.monitor import MonitorScreen


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_r_on_a_completed_run_says_there_is_nothing_to_resume(make_run, size):
    run = make_run("20260101-000000-demo-tiny", events=fixed_events(status="completed"))
    app = TuneApp()
    async with app.run_test(size=size, notifications=True) as pilot:
        runs = app.screen
        await wait_for(pilot, lambda: [s.status for s in runs.summaries] == ["completed"])
        for screen in ("runs", "monitor"):
            app.clear_notifications()
            await pilot.press("r")
            await wait_for(pilot, lambda: bool(app._notifications))
            (note,) = [str(n.message) for n in app._notifications]
            assert note.startswith(f"{run.name} completed; nothing to resume"), screen
            if screen == "runs":
                await pilot.press("enter")
                await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen)
                               and app.screen.status == "completed")
    assert "launches" not in (run / "run.json").read_text()
