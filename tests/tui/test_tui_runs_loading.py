"""The runs screen lists many runs in stages: every row at once from the run ids and run.json,
then each run's details (events, processes) from a worker, the rows on screen first."""

from __future__ import annotations

import json
import threading

from textual.widgets import DataTable

from tests.tui.conftest import wait_for
from tui_tune.runs.store import RunStore
from tui_tune.tui.app import TuneApp
from tui_tune.tui.runs_listing import id_time
from tui_tune.tui.screens.runs import RunsScreen

RUNS = 150


def statuses(table: DataTable) -> list[str]:
    return [str(table.get_row_at(i)[0]).strip(" *") for i in range(table.row_count)]


async def test_rows_show_before_every_run_is_read_and_the_visible_ones_fill_in_first(
        make_run, monkeypatch):
    for n in range(RUNS):
        run_dir = make_run(f"20260101-{n // 60:02d}{n % 60:02d}00-demo-tiny")
        info = json.loads((run_dir / "run.json").read_text())  # created when its id says, as
        info["created_at"] = id_time(run_dir.name)  # a real run: rows keep their order
        (run_dir / "run.json").write_text(json.dumps(info))
    oldest = "20260101-000000-demo-tiny"  # the last row: far off screen
    release = threading.Event()
    summary = RunStore.summary

    def slow_for_the_oldest(store, run_dir):
        if run_dir.name == oldest:
            release.wait(30)
        return summary(store, run_dir)
    monkeypatch.setattr(RunStore, "summary", slow_for_the_oldest)
    app = TuneApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        screen = app.screen
        table = screen.query_one(DataTable)
        shown = table.size.height - 1  # rows under the header
        await wait_for(pilot, lambda: table.row_count >= shown)
        # (generous: under a loaded CI box the details of 38 rows can take seconds)
        await wait_for(pilot, lambda: statuses(table)[:shown] == ["stopped"] * shown, 30)
        assert screen.summaries == []  # the listing is not complete: one run is still read
        await wait_for(pilot, lambda: table.row_count == RUNS)
        assert statuses(table)[-1] != "stopped"  # run.json says queued; not read yet
        release.set()
        await wait_for(pilot, lambda: len(screen.summaries) == RUNS)
        await wait_for(pilot, lambda: statuses(table) == ["stopped"] * RUNS)
        assert [s.run_id for s in screen.summaries] == sorted(
            (s.run_id for s in screen.summaries), reverse=True)
