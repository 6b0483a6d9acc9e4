"""One elapsed time and one ETA everywhere: the runs list, the monitor and `tui-tune ls` show
the same numbers, from the same summary and computation (issue 21 minors 6 and 7). Elapsed
counts only the time the run ran, not the gap between a stop and its resume."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from tests.stalled_runs import live_run, step, stop
from tests.tui.conftest import fixed_events, wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.monitor import MonitorScreen

HOUR = 3600.0


def resumed_events() -> list[dict]:
    """Ran 11 s (steps 1-10, stopped), an hour later resumed for another 11 s (steps 11-20)."""
    first = fixed_events(steps=10, total=20, status="stopped")
    second = [{**e, "t": e["t"] + HOUR, "step": e["step"] + 10} if e["kind"] == "step"
              else {**e, "t": e["t"] + HOUR} for e in fixed_events(steps=10, total=20,
                                                                     status="completed")]
    return first + second


def ls_cells(runs_dir, name: str) -> dict[str, str]:
    env = {**os.environ, "TUI_TUNE_RUNS": str(runs_dir), "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "tui_tune", "ls", "--json"], env=env,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    (row,) = [r for r in json.loads(out) if r["run_id"] == name]
    return row


def header(app) -> str:
    return str(app.screen.query_one("#monitor-header").render())


def seconds(text: str) -> int:
    *hours, minutes, secs = (int(part) for part in text.split(":"))
    return (hours[0] if hours else 0) * 3600 + minutes * 60 + secs


async def test_elapsed_counts_the_launches_not_the_gap_between_them(make_run, workdir):
    run = make_run("20260101-000000-demo-tiny", events=resumed_events())
    app = TuneApp()
    async with app.run_test(size=(120, 40)) as pilot:
        runs = app.screen
        await wait_for(pilot, lambda: len(runs.summaries) == 1 and runs._detailed)
        table = runs.query_one("#runs-table")
        elapsed = [key for key, _, _ in runs.columns].index("elapsed")
        assert str(table.get_cell_at((0, elapsed))) == "0:22"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen)
                       and "elapsed" in header(app))
        assert "elapsed 0:22" in header(app)
    assert ls_cells(workdir / "runs", run.name)["elapsed_s"] == 22.0


async def test_the_eta_is_the_same_in_the_list_the_monitor_and_ls(workdir):
    """Slow steps first (4 s), then fast (1 s): every view counts from the recent pace."""
    run, launcher = live_run(workdir / "runs", "20260101-000000-demo-tiny", 0)
    try:
        now = time.time()
        events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
        start = {**events[0], "t": now - 200}
        times = [now - 200 + 4 * i for i in range(1, 31)] + [now - 20 + i for i in range(20)]
        lines = [start] + [step(t, i + 1) for i, t in enumerate(times)]
        (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
        # 950 steps left at 1 step/s: about 950 s (less the seconds since the last step)
        listed = ls_cells(workdir / "runs", run.name)["eta_s"]
        assert 900 < listed <= 950
        app = TuneApp()
        async with app.run_test(size=(80, 24)) as pilot:
            runs = app.screen
            await wait_for(pilot, lambda: runs._detailed and runs.summaries)
            eta = [key for key, _, _ in runs.columns].index("eta")
            in_list = seconds(str(runs.query_one("#runs-table").get_cell_at((0, eta))))
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen)
                           and "ETA" in header(app))
            in_monitor = seconds(re.search(r"ETA (\S+)", header(app)).group(1))
        assert abs(in_list - listed) < 30 and abs(in_monitor - listed) < 30
    finally:
        stop(launcher)
