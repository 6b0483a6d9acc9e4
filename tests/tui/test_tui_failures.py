"""A failed run says why: in a word in the runs list, in one line under it for the highlighted
run, and whole (wrapped, not cut) in the monitor (issue 21 minor 18)."""

from __future__ import annotations

import pytest

from tests.tui.conftest import FIXED_T, fixed_events, wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.monitor import MonitorScreen
from tui_tune.tui.screens.runs import RunsScreen

MESSAGE = ("dataset.train_file: demo/data/train.jsonl row 17 has no column 'answer'; name the "
           "column holding the answers with dataset.answer_column, or fix the row, then resume "
           "the run: the checkpoint at step 40 is kept")


def failed_events() -> list[dict]:
    events = fixed_events(steps=50, status=None)
    events.append({"v": 1, "t": FIXED_T + 51, "kind": "end", "status": "failed",
                   "error_type": "DataFileError", "message": MESSAGE})
    return events


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_a_failed_runs_reason_shows_in_the_list_and_whole_in_the_monitor(make_run, size):
    failed = make_run("20260101-000100-demo-tiny", events=failed_events())
    make_run("20260101-000000-demo-tiny")  # stopped: nothing to tell
    app = TuneApp()
    async with app.run_test(size=size) as pilot:
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await wait_for(pilot, lambda: len(runs.summaries) == 2 and len(runs._detailed) == 2)
        await pilot.pause(0.1)
        table = runs.query_one("#runs-table")
        trend = [key for key, _, _ in runs.columns].index("trend")
        assert table.get_cell_at((0, trend)).plain.startswith("DataFi")
        detail = runs.query_one("#runs-detail")
        assert detail.display and str(detail.render()).startswith("failed: DataFileError: ")
        await pilot.press("down")  # the stopped run: no detail line
        await wait_for(pilot, lambda: not detail.display)
        await pilot.press("up", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen)
                       and app.screen.status == "failed")
        await pilot.pause(0.1)
        health = app.screen.query_one("#health")
        assert health.region.height >= 2  # wrapped over lines, not cut at the width
        shown = " ".join(strip.text.strip() for strip in
                         health.render_lines(health.region.reset_offset))
        assert " ".join(f"DataFileError: {MESSAGE}".split()) in " ".join(shown.split())
    assert failed.exists()
