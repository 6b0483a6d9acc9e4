"""The app never crashes on events with missing, null, NaN, string or huge values: the monitor
reads them live and from a whole file, the runs list shows runs made of them."""

from __future__ import annotations

import json

from tests.hostile_events import BAD_VALUES, VALID, hostile_cases, hostile_events, write_lines
from tests.tui.conftest import FIXED_T, step_event, wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.monitor import MonitorScreen
from tui_tune.tui.screens.runs import RunsScreen


def hostile_run(root, name: str, events: list[dict]):
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"run_id": name, "launched_at": FIXED_T,
                                                  "created_at": FIXED_T}))
    start = {"v": 1, "t": FIXED_T, "kind": "start", **VALID["start"]}
    write_lines(run_dir / "events.jsonl", [start, *(step_event(s, 3.0 / s) for s in range(1, 30)),
                                           *events])
    return run_dir


def texts(screen) -> tuple[str, str]:
    return (str(screen.query_one("#health").render()),
            str(screen.query_one("#monitor-header").render()))


async def test_monitor_takes_every_hostile_event_as_it_arrives(workdir):
    run_dir = hostile_run(workdir / "runs", "live", [])
    app = TuneApp(start=lambda: MonitorScreen(run_dir, sample_gpus=False))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: "health: ok" in texts(screen)[0])
        for label in ["bare", *(label for label, _ in BAD_VALUES)]:
            sentinel = f"after the {label} values"
            write_lines(run_dir / "events.jsonl",
                        [*(e for bad, e in hostile_cases() if bad == label),
                         {"v": 1, "t": FIXED_T, "kind": "log", "message": sentinel}])
            await wait_for(pilot, lambda s=sentinel: bool(screen.series.logs)
                           and screen.series.logs[-1][1] == s)
            await pilot.pause()
            health, header = texts(screen)
            assert health.startswith("health:") and "step" in header
        for key in ("left_square_bracket", "l", "e", "z"):  # browse samples, rescale the charts
            await pilot.press(key)
        await pilot.pause()
        assert app.screen is screen


async def test_runs_list_and_monitor_open_runs_made_of_hostile_events(workdir):
    root = workdir / "runs"
    for label, _ in BAD_VALUES:
        hostile_run(root, f"value-{label.replace(' ', '-')}",
                    [e for bad, e in hostile_cases() if bad == label])
    hostile_run(root, "all", hostile_events())
    app = TuneApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        table = app.screen.query_one("DataTable")
        await wait_for(pilot, lambda: table.row_count == len(BAD_VALUES) + 1, timeout=30)
        ids = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        table.move_cursor(row=ids.index("all"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        screen = app.screen
        await wait_for(pilot, lambda: not screen.history_loading
                       and texts(screen)[0].startswith("health:"), timeout=20)
        assert screen.series.step_values("step").size > 29
