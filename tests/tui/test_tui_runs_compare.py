"""Runs screen and compare: list, mark, compare with the config diff, edit a copy, delete."""

from __future__ import annotations

import pytest

from tests.tui.chart_picking import choose
from tests.tui.conftest import classification_events, wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.compare import CompareScreen, config_differences
from tui_tune.tui.screens.dialogs import ConfirmDialog
from tui_tune.tui.screens.editor import EditorScreen
from tui_tune.tui.screens.monitor import MonitorScreen
from tui_tune.tui.screens.runs import RunsScreen


async def test_mark_two_runs_and_compare_shows_config_diff(make_run):
    a = make_run("20260101-000000-demo-tiny")
    b = make_run("20260101-000100-lora", preset="lora")
    app = TuneApp()
    async with app.run_test(size=(120, 40)) as pilot:
        runs = app.screen
        await wait_for(pilot, lambda: len(runs.summaries) == 2)
        assert [s.run_id for s in runs.summaries] == [b.name, a.name]  # newest first
        await pilot.press("m", "down", "m", "c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        table = app.screen.query_one("#compare-diff")
        settings = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert "adapter.method" in settings
        row = table.get_row_at(settings.index("adapter.method"))
        assert list(row[1:]) == ["lora", "full"]
        chart = app.screen.query_one("#compare-train")
        await wait_for(pilot, lambda: len(chart.series) == 2)


def test_config_differences_lists_only_differences(make_run):
    a = make_run("a", overrides=["training.lr=0.001"])
    b = make_run("b", overrides=["training.lr=0.002"])
    _, rows = config_differences([a, b])
    assert rows == [["training.lr", "0.001", "0.002"]]


async def test_two_classification_runs_compare_by_accuracy(make_run):
    a = make_run("20260101-000000-demo-classify", preset="demo-classify",
                 events=classification_events())
    b = make_run("20260101-000100-demo-classify", preset="demo-classify",
                 overrides=["training.lr=0.002"], events=classification_events(steps=80))
    app = TuneApp(start=lambda: CompareScreen([a, b]))
    async with app.run_test(size=(100, 30)) as pilot:
        chart = app.screen.query_one("#compare-train")
        await wait_for(pilot, lambda: len(chart.series) == 2)
        assert not app.screen.query_one("#compare-note").display  # one type: nothing to say
        labels = await choose(pilot, app, "accuracy, chosen metric (eval)")
        assert labels.index("accuracy (eval)") < labels.index("perplexity (eval)  - no values")
        assert chart.title == "accuracy"
        assert [s.y.tolist() for s in chart.series.values()] == [[0.6, 0.7, 0.8], [0.6, 0.7]]
        await choose(pilot, app, "F1 (eval)")
        assert chart.title == "F1" and chart.series["B"].y.tolist() == pytest.approx([0.55, 0.65])


async def test_runs_of_different_types_compare_with_a_note(make_run):
    a = make_run("20260101-000000-demo-classify", preset="demo-classify",
                 events=classification_events())
    b = make_run("20260101-000100-demo-tiny")
    app = TuneApp(start=lambda: CompareScreen([a, b]))
    async with app.run_test(size=(100, 30)) as pilot:
        chart = app.screen.query_one("#compare-train")
        await wait_for(pilot, lambda: len(chart.series) == 2)
        note = app.screen.query_one("#compare-note")
        assert note.display
        assert "A classification, B causal_lm" in str(note.render())
        await choose(pilot, app, "eval metric: accuracy / perplexity, chosen metric (eval)")
        assert chart.title == "eval metric: accuracy / perplexity"
        await choose(pilot, app, "accuracy (eval)")  # only A has it
        assert chart.series["A"].y.tolist() == [0.6, 0.7, 0.8]
        assert not (chart.series["B"].y == chart.series["B"].y).any()  # NaN: B has none


async def test_open_monitor_and_back_then_delete_asks(make_run):
    run = make_run("20260101-000000-demo-tiny")
    app = TuneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        runs = app.screen
        await wait_for(pilot, lambda: len(runs.summaries) == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")
        await pilot.pause()
        assert run.exists()
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: not run.exists())
        await wait_for(pilot, lambda: not runs.summaries)


async def test_edit_a_copy_of_a_runs_config(make_run):
    make_run("20260101-000000-lora", preset="lora", overrides=["training.lr=0.0007"])
    app = TuneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(app.screen.summaries) == 1)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
        assert app.screen.state.value("training.lr") == 0.0007
        assert app.screen.state.target is None  # a copy: saving asks for a name


async def test_new_run_from_a_runs_weights(make_run):
    """f: a new experiment from the run's settings whose backbone starts from its final/, or
    from its newest complete checkpoint when it has none; with neither it says so."""
    run = make_run("20260101-000000-lora", preset="lora", overrides=["training.lr=0.0007"])
    app = TuneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        runs = app.screen

        async def weights_after_f() -> str:
            await pilot.press("f")
            await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
            state = app.screen.state
            assert state.value("training.lr") == 0.0007 and state.target is None
            assert run.name in state.label
            app.pop_screen()  # (escape would ask whether to drop the unsaved change)
            await wait_for(pilot, lambda: app.screen is runs)
            return state.value("general.pretrained_weights")

        await wait_for(pilot, lambda: len(runs.summaries) == 1)
        await pilot.press("f")
        await wait_for(pilot, lambda: any("no weights to continue from" in n.message
                                          for n in app._notifications))
        assert app.screen is runs
        for step in (20, 100):  # a stopped run's checkpoints; step-150.tmp was cut off
            (run / "checkpoints" / f"step-{step}").mkdir(parents=True)
            (run / "checkpoints" / f"step-{step}" / "trainer_state.json").write_text("{}")
        (run / "checkpoints" / "step-150.tmp").mkdir()
        assert await weights_after_f() == str((run / "checkpoints" / "step-100").resolve())
        (run / "final").mkdir()  # what a completed run leaves
        assert await weights_after_f() == str((run / "final").resolve())


async def test_runs_table_fits_the_terminal_width_without_scrolling_sideways(make_run):
    make_run("20260101-000000-demo-tiny")
    app = TuneApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: len(app.screen.summaries) == 1)
        table = app.screen.query_one("#runs-table")

        def shown() -> list[str]:
            return [str(c.label) for c in table.columns.values()]
        assert shown() == ["status", "run", "progress", "loss", "trend", "metric", "tok/s",
                           "elapsed", "ETA"]
        assert table.virtual_size.width <= 120
        row = [str(cell) for cell in table.get_row_at(0)]
        assert row[5] == "ppl 4" and len(row[5]) <= 11  # the eval metric by its short name
        await pilot.resize_terminal(160, 40)
        await wait_for(pilot, lambda: "preset" in shown())
        assert table.virtual_size.width <= 160
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: "preset" not in shown())
        assert {"status", "run", "progress", "loss", "trend", "tok/s", "ETA"} <= set(shown())
        assert table.virtual_size.width <= 80 and table.row_count == 1
        row = [str(cell) for cell in table.get_row_at(0)]
        assert row[2].endswith("120/200") and row[3] == "0.5172"


async def test_runs_list_refreshes_as_events_arrive(make_run):
    import json

    from tests.tui.conftest import fixed_events, step_event
    run = make_run("20260101-000000-demo-tiny", events=fixed_events(steps=50, status=None))
    app = TuneApp(start=lambda: RunsScreen(refresh_s=0.2))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: len(app.screen.summaries) == 1)
        assert app.screen.summaries[0].step == 50
        with open(run / "events.jsonl", "a") as handle:  # noqa: ASYNC230 - a test writer
            handle.writelines(json.dumps(step_event(s, 0.25)) + "\n" for s in range(51, 81))
        table = app.screen.query_one("#runs-table")
        await wait_for(pilot, lambda: str(table.get_row_at(0)[2]).endswith("80/200"))
        assert str(table.get_row_at(0)[3]) == "0.25"


def append_lines(path, lines: list[str]) -> None:
    """Append as the worker does (a rewrite would read as a new file to the feed)."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_compare_follows_a_live_run_as_the_monitor_does(make_run, size):
    """New events of a run being compared show up without reopening the screen (issue 21)."""
    import json

    from tests.tui.conftest import fixed_events, step_event
    live = make_run("20260101-000000-demo-tiny", events=fixed_events(steps=50, status=None))
    done = make_run("20260101-000100-demo-tiny")
    app = TuneApp(start=lambda: CompareScreen([live, done]))
    async with app.run_test(size=size) as pilot:
        chart = app.screen.query_one("#compare-train")
        label = app.screen.labels[0].split()[0]
        await wait_for(pilot, lambda: len(chart.series) == 2)
        assert chart.series[label].x[-1] == 50
        more = [step_event(s, 0.5) for s in range(51, 61)] + [{
            "v": 1, "t": 0, "kind": "eval", "step": 60, "val_loss": 0.4, "perplexity": 1.5,
            "metric": "perplexity", "metric_value": 1.5}]
        append_lines(live / "events.jsonl", [json.dumps(e) for e in more])
        await wait_for(pilot, lambda: chart.series[label].x[-1] == 60)
        val = app.screen.query_one("#compare-val")
        await wait_for(pilot, lambda: val.series[label].x[-1] == 60)
        title = app.screen.query_one("#compare-title")  # each run's status, as it changes
        await wait_for(pilot, lambda: "stopped" in str(title.render()))
