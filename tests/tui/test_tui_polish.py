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


def chart_text(chart) -> str:
    return "\n".join(strip.text for strip in chart.render_strips(60, 8))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_charts_without_data_say_what_they_wait_for(make_run, size):
    """A run that has started but logged nothing yet: step charts wait for the first step,
    the eval metric chart for an evaluation; once steps come, only the eval chart waits."""
    import json

    from tests.tui.conftest import step_event
    run = make_run("20260101-000000-demo-tiny", events=fixed_events(steps=0, status=None))
    app = TuneApp(start=lambda: MonitorScreen(run, sample_gpus=False))
    async with app.run_test(size=size) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.status != "?")
        for chart_id in ("loss", "lr", "grad", "tps", "mem"):
            text = chart_text(screen.query_one(f"#chart-{chart_id}"))
            assert "waiting for the first step" in text and "finite" not in text, chart_id
        assert "no evaluation yet" in chart_text(screen.query_one("#chart-metric"))
        append_line(run / "events.jsonl", json.dumps(step_event(1, 2.0)))
        await wait_for(pilot, lambda: screen.series.step_values("step").size == 1)
        assert "waiting" not in chart_text(screen.query_one("#chart-loss"))
        assert "no evaluation yet" in chart_text(screen.query_one("#chart-metric"))


def append_line(path, line: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
