"""A live run whose last step is long past shows as stalled in the monitor's health line and in
the runs list; one stepping at its pace does not."""

from __future__ import annotations

from tests.stalled_runs import live_run, stop
from tests.tui.conftest import wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.monitor import MonitorScreen
from tui_tune.tui.screens.runs import RunsScreen


async def test_stalled_run_in_runs_list_and_monitor_health(workdir):
    hung, hung_launcher = live_run(workdir / "runs", "20260101-000000-hung", 1800)
    pacing, pacing_launcher = live_run(workdir / "runs", "20260101-000001-pacing", 1)
    app = TuneApp()
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
            table = app.screen.query_one("DataTable")
            await wait_for(pilot, lambda: table.row_count == 2, timeout=20)

            def rows() -> dict[str, str]:
                return {str(table.get_row_at(i)[1]): str(table.get_row_at(i)[0]).strip(" *")
                        for i in range(table.row_count)}
            # rows show run.json's word at once; the details (and with them stalled) follow
            expected = {hung.name: "stalled", pacing.name: "running"}
            await wait_for(pilot, lambda: rows() == expected, timeout=20)
            shown = rows()
            table.move_cursor(row=list(shown).index(hung.name))
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
            health = app.screen.query_one("#health")
            await wait_for(pilot, lambda: "stalled: no step for 30:0" in str(health.render()),
                           timeout=20)
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
            table.move_cursor(row=list(shown).index(pacing.name))
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
            monitor = app.screen
            await wait_for(pilot, lambda: monitor.status == "running", timeout=20)
            await pilot.pause()
            assert "health: ok" in str(monitor.query_one("#health").render())
    finally:
        stop(hung_launcher)
        stop(pacing_launcher)
