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
        assert runs[1] == f"{SWEEP} lr"  # the summary row (settings named), then the members
        assert runs[2:] == ["├ lr=0.0001", "├★lr=0.0002", "└ lr=0.0005"]
        assert "sweep ×3" in cell_text(screen, 1, "status")
        assert cell_text(screen, 1, "progress") == "3/3 ended"
        best = min(e["val_loss"] for e in fixed_events(scale=0.5) if e["kind"] == "eval")
        assert float(cell_text(screen, 1, "loss")) == pytest.approx(best, rel=1e-2)
        screen.query_one("#runs-table").move_cursor(row=1)
        await pilot.press("enter")  # the sweep's row compares its runs
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        assert len(app.screen.run_dirs) == 3


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_members_of_a_two_setting_sweep_stay_whole_at_80_columns(make_run, size):
    """`lr=0.0001 batc…` told nothing: a narrow column names the settings by their initials,
    and where even that is too long, shows the values alone (the sweep's row names them)."""
    for k, batch in enumerate((4, 16)):
        make_run(f"20260101-000000-demo-tiny-{k}", events=fixed_events(status="completed"),
                 info={"sweep_id": SWEEP, "created_at": FIXED_T + k,
                       "sweep_values": {"training.lr": 0.0001,
                                        "training.batch_size": batch}})
    app = TuneApp()
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen)
                       and len(app.screen.summaries) == 2)
        await pilot.pause(0.3)
        text = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        assert text.lstrip().startswith("Runs 2 in runs/")  # runs, not rows (the sweep's row)
        if size[0] == 80:
            assert "lr=0.0001 bs=4 " in text and "lr=0.0001 bs=16" in text, text
        else:
            assert "lr=0.0001 batch_size=4 " in text and "lr=0.0001 batch_size=16" in text
        assert "…" not in text.split("sweep ×2")[1].split("\n", 3)[1]


def test_swept_values_shorten_by_initials_then_to_values():
    from tui_tune.runs.listing import swept_forms
    assert swept_forms({"training.lr": 0.0001, "training.batch_size": 4}) == [
        "lr=0.0001 batch_size=4", "lr=0.0001 bs=4", "0.0001 4"]
    # initials that would clash (lora_r, learning_rate -> lr) keep their names
    assert swept_forms({"adapter.lora_r": 8, "training.learning_rate": 0.1, "x.lr": 2}) == [
        "lora_r=8 learning_rate=0.1 lr=2", "8 0.1 2"]
    assert swept_forms({"adapter.lora_r": 8, "adapter.lora_alpha": 16})[1] == "lr=8 la=16"
    assert swept_forms({"training.lr": 0.5}) == ["lr=0.5", "0.5"]
