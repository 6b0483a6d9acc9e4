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


def stopped_at(step: int, logged_every: int = 10) -> list[dict]:
    """A run stopped at `step` as the worker writes it: steps logged every 10, then the
    stop's checkpoint and end at the step it got to."""
    from tests.tui.conftest import FIXED_T, step_event
    events = fixed_events(steps=0, status=None, total=40)
    events += [step_event(s, 2.0 / s) for s in range(logged_every, step + 1, logged_every)]
    events += [{"v": 1, "t": FIXED_T + step, "kind": "checkpoint", "step": step,
                "path": f"checkpoints/step-{step}", "reason": "signal"},
               {"v": 1, "t": FIXED_T + step, "kind": "end", "status": "stopped", "step": step}]
    return events


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_step_shown_after_a_stop_is_the_checkpoints(make_run, size):
    """Issue 21: stopped at 111 the list said 110; stopped at step 3, 0/40."""
    from tui_tune.tui.screens.runs import RunsScreen
    at_3 = make_run("20260101-000000-demo-tiny", events=stopped_at(3))
    at_31 = make_run("20260101-000100-demo-tiny", events=stopped_at(31))
    app = TuneApp()
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen)
                       and len(app.screen.summaries) == 2)
        steps = {s.run_id: s.step for s in app.screen.summaries}
        assert steps == {at_3.name: 3, at_31.name: 31}
        table = app.screen.query_one("#runs-table")
        cells = [table.get_cell_at((row, 2)).plain for row in range(2)]
        assert cells[0].endswith("31/40") and cells[1].endswith("3/40")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen)
                       and "step 31/40" in str(app.screen.query_one("#monitor-header")
                                               .render()))
