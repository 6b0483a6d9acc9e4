"""A run that stopped making progress shows as stalled in `tui-tune ls` (table and --json) and
in `watch`'s live view, while one that steps at its usual pace, or ended, does not."""

from __future__ import annotations

import json
import subprocess
import sys

from rich.console import Console

from tests.stalled_runs import live_run, stop
from tui_tune.cli.view import live_panel
from tui_tune.runs.stall import STALL_FACTOR, STALL_MIN_S, stalled_for
from tui_tune.runs.store import RunStore


def test_a_live_run_without_steps_for_long_is_listed_as_stalled(tmp_path):
    root = tmp_path / "runs"
    hung, hung_launcher = live_run(root, "20260101-000000-hung", last_step_age_s=1800)
    pacing, pacing_launcher = live_run(root, "20260101-000001-pacing", last_step_age_s=1)
    slow, slow_launcher = live_run(root, "20260101-000002-slow", last_step_age_s=600,
                                   gap_s=120)  # 10 min since a step, but steps take 2 min
    try:
        listed = subprocess.run([sys.executable, "-m", "tui_tune", "ls", "--json",
                                 "--runs-dir", str(root)], capture_output=True, text=True,
                                check=True, timeout=120)
        rows = {row["run_id"]: row for row in json.loads(listed.stdout)}
        table = subprocess.run([sys.executable, "-m", "tui_tune", "ls", "--runs-dir", str(root)],
                               capture_output=True, text=True, check=True, timeout=120,
                               env={"COLUMNS": "200", "PATH": ""})
        console = Console(record=True, width=120, color_system=None)
        console.print(live_panel(RunStore(root).summary(hung)))
    finally:
        for launcher in (hung_launcher, pacing_launcher, slow_launcher):
            stop(launcher)
    assert rows[hung.name]["status"] == "running"  # alive: stop and resume treat it as such
    assert rows[hung.name]["stalled_s"] > 1700
    assert rows[pacing.name]["stalled_s"] is None and rows[slow.name]["stalled_s"] is None
    header, *lines = [line.split() for line in table.stdout.splitlines()]
    status = {cells[0]: cells[header.index("status")] for cells in lines}
    assert status == {hung.name: "stalled", pacing.name: "running", slow.name: "running"}
    assert rows[hung.name]["eta_s"] is None  # no ETA counting down while nothing moves
    assert "stalled: no step for 30:0" in console.export_text()  # as the app says it


def test_a_run_that_ended_long_ago_is_not_stalled(tmp_path):
    run_dir, launcher = live_run(tmp_path / "runs", "old", last_step_age_s=7200)
    stop(launcher)
    summary = RunStore(tmp_path / "runs").summary(run_dir)
    assert summary.status == "died" and summary.stalled_s is None


def test_the_stall_limit_is_many_median_gaps_but_never_under_the_minimum():
    steps = [100.0 + i for i in range(10)]  # a step a second
    assert stalled_for(steps, steps[-1], steps[-1] + STALL_MIN_S - 1) is None
    assert stalled_for(steps, steps[-1], steps[-1] + STALL_MIN_S + 1) == STALL_MIN_S + 1
    slow = [100.0 + 60 * i for i in range(10)]  # a step a minute, one pause of an hour
    slow[-1] += 3600
    limit = STALL_FACTOR * 60
    assert stalled_for(slow, slow[-1], slow[-1] + limit - 1) is None
    assert stalled_for(slow, slow[-1], slow[-1] + limit + 1) is not None
    assert stalled_for(steps[:1], steps[0], steps[0] + 10_000) is None  # no pace known yet
