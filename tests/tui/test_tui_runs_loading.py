"""The runs screen lists many runs in stages: every row at once from the run ids and run.json,
then each run's details (events, processes) from a worker, the rows on screen first."""

from __future__ import annotations

import gc
import json
import threading

from textual.widgets import DataTable

from tests.tui.conftest import wait_for
from tui_tune.runs.store import RunStore
from tui_tune.tui.app import TuneApp
from tui_tune.tui.runs_listing import FIRST_ROWS, StagedLister, id_time
from tui_tune.tui.screens.runs import RunsScreen

RUNS = 150


def make_runs(make_run, count: int = RUNS) -> None:
    for n in range(count):
        run_dir = make_run(f"20260101-{n // 60:02d}{n % 60:02d}00-demo-tiny")
        info = json.loads((run_dir / "run.json").read_text())  # created when its id says, as
        info["created_at"] = id_time(run_dir.name)  # a real run: rows keep their order
        (run_dir / "run.json").write_text(json.dumps(info))


def statuses(table: DataTable) -> list[str]:
    return [str(table.get_row_at(i)[0]).strip(" *") for i in range(table.row_count)]


async def test_rows_show_before_every_run_is_read_and_the_visible_ones_fill_in_first(
        make_run, monkeypatch):
    make_runs(make_run)
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


async def test_rows_show_from_run_json_without_waiting_for_the_worker(make_run, monkeypatch):
    """The first rows are listed on the UI thread: a worker thread's thousand file checks each
    wait for the interpreter while the UI thread builds the first screen (0.2-0.4 s)."""
    make_runs(make_run)
    release, passes = threading.Event(), StagedLister.passes

    def held(lister, wanted_first, stopped):
        while not release.wait(0.05):
            if stopped():
                return
        yield from passes(lister, wanted_first, stopped)
    monkeypatch.setattr(StagedLister, "passes", held)  # the worker lists nothing until released
    app = TuneApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == RUNS)
        # run.json's word for the newest screenfuls, the id alone for the others; no details
        assert statuses(table) == ["queued"] * FIRST_ROWS + ["..."] * (RUNS - FIRST_ROWS)
        assert f"Runs[/b] {RUNS} " in str(app.screen.query_one("#runs-title").content)
        release.set()
        await wait_for(pilot, lambda: statuses(table) == ["stopped"] * RUNS, 30)


async def test_the_first_paint_with_rows_is_not_held_up_by_the_next_batch(make_run,
                                                                          monkeypatch):
    """The rows after the first batch are added once it has been painted: news of the empty
    table's own paint must not add them before (250 more rows to add and measure first)."""
    make_runs(make_run)
    painted: list[int] = []
    render_lines = DataTable.render_lines

    def counted(table, crop):
        if table.row_count and not painted:
            painted.append(table.row_count)
        return render_lines(table, crop)
    monkeypatch.setattr(DataTable, "render_lines", counted)
    app = TuneApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == RUNS)
    assert painted == [FIRST_ROWS]


async def test_start_up_objects_are_frozen_before_the_rows_are_made(make_run, monkeypatch):
    """The rows' objects (a thousand runs) set off a full garbage collection before they were
    drawn, walking every object of start-up (50-70 ms): those are frozen first."""
    make_runs(make_run, 3)
    frozen: list[int] = []
    first_rows = StagedLister.first_rows

    def noted(lister):
        frozen.append(gc.get_freeze_count())
        return first_rows(lister)
    monkeypatch.setattr(StagedLister, "first_rows", noted)
    app = TuneApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and frozen)
    assert frozen[0] > 0
