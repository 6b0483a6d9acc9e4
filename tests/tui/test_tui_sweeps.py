"""A sweep's runs in the runs list: one summary row (runs, ended, best val loss) and each
member by the values it sets, the best one starred; Enter on the summary compares them."""

from __future__ import annotations

import pytest

from tests.tui.conftest import FIXED_T, fixed_events, wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.compare import CompareScreen
from tui_tune.tui.screens.runs import RunsScreen

SWEEP = "20260101-000000-demo-tiny"
LRS = (0.0001, 0.0002, 0.0005)


@pytest.fixture
def sweep_runs(make_run):
    """Three members of one sweep (the middle lr evaluates best) and a run of its own."""
    runs = []
    for k, (lr, scale) in enumerate(zip(LRS, (1.0, 0.5, 2.0), strict=True)):
        runs.append(make_run(f"20260101-000000-demo-tiny-lr{lr:g}",
                             events=fixed_events(scale=scale, status="completed"),
                             info={"sweep_id": SWEEP, "sweep_values": {"training.lr": lr},
                                   "name": f"demo-tiny-lr{lr:g}", "created_at": FIXED_T + k}))
    runs.append(make_run("20260101-000100-demo-tiny", info={"created_at": FIXED_T + 60}))
    return runs


def cell_text(screen, row: int, key: str) -> str:
    value = screen.query_one("#runs-table").get_cell_at((row, [k for k, _, _ in
                                                              screen.columns].index(key)))
    return str(getattr(value, "plain", value))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_a_sweep_is_one_summary_row_over_its_members_by_their_values(sweep_runs, size):
    app = TuneApp()
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen)
                       and len(app.screen.summaries) == 4)
        screen = app.screen
        runs = [cell_text(screen, row, "run") for row in range(5)]
        assert runs[0] == "20260101-000100-demo-tiny"
        assert runs[1] == SWEEP  # the summary row, then the members oldest first
        assert runs[2:] == ["├ lr=0.0001", "├★lr=0.0002", "└ lr=0.0005"]
        assert "sweep ×3" in cell_text(screen, 1, "status")
        assert cell_text(screen, 1, "progress") == "3/3 ended"
        best = min(e["val_loss"] for e in fixed_events(scale=0.5) if e["kind"] == "eval")
        assert float(cell_text(screen, 1, "loss")) == pytest.approx(best, rel=1e-2)
        screen.query_one("#runs-table").move_cursor(row=1)
        await pilot.press("enter")  # the sweep's row compares its runs
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        assert len(app.screen.run_dirs) == 3
