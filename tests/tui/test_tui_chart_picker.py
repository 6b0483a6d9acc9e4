"""The chart pickers of the monitor and compare offer every metric of the event schema."""

from __future__ import annotations

import numpy as np

from tests.tui.chart_picking import choose
from tests.tui.conftest import step_event, wait_for
from tui_tune.events import METRICS
from tui_tune.tui.app import TuneApp
from tui_tune.tui.monitor_view import chart_choices
from tui_tune.tui.screens.compare import CompareScreen
from tui_tune.tui.screens.monitor import MonitorScreen


def schema_titles() -> list[tuple[str, str, str]]:
    """(kind, name, picker label) of every metric, the chosen one called perplexity."""
    def label(kind: str, name: str, title: str) -> str:
        title = "perplexity, chosen metric" if name == "metric_value" else title
        return f"{title} (eval)" if kind == "eval" else title
    return [(kind, name, label(kind, name, title))
            for kind, names in METRICS.items() for name, title in names.items()]


async def test_monitor_picks_any_metric_for_its_last_chart(make_run):
    run = make_run("20260101-000000-demo-tiny")
    app = TuneApp(start=lambda: MonitorScreen(run, sample_gpus=False))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        chart = screen.query_one("#chart-metric")
        await wait_for(pilot, lambda: "metric" in chart.series and not screen.history_loading)
        assert chart.title == "perplexity"  # the eval metric, by its name
        labels = await choose(pilot, app, None)
        assert labels == [title for _, title in chart_choices([screen.series])]
        written = {"eval": {"val_loss", "metric_value", "perplexity"},  # by the fixture's run
                   "step": set(step_event(1, 1.0))}
        assert sorted(labels) == sorted(  # every metric, those of other problem types last
            title + ("" if name in written[kind] else "  - no values")
            for kind, name, title in schema_titles())
        assert labels.index("accuracy (eval)  - no values") > labels.index("perplexity (eval)")
        assert "perplexity, chosen metric (eval)" in labels
        assert chart.title == "perplexity" and list(chart.series) == ["metric"]
        await choose(pilot, app, "learning rate")
        assert chart.title == "learning rate" and list(chart.series) == ["lr"]
        np.testing.assert_array_equal(chart.series["lr"].y, screen.series.step_values("lr"))


async def test_compare_overlays_the_picked_metric(make_run):
    a = make_run("20260101-000000-demo-tiny")
    b = make_run("20260101-000100-lora", preset="lora")
    app = TuneApp(start=lambda: CompareScreen([a, b]))
    async with app.run_test(size=(100, 30)) as pilot:
        chart = app.screen.query_one("#compare-train")
        await wait_for(pilot, lambda: len(chart.series) == 2)
        assert chart.title == "train loss"
        await choose(pilot, app, "perplexity (eval)")
        assert chart.title == "perplexity" and list(chart.series) == ["A", "B"]
        assert all(s.y.tolist() == [5.0, 5.0, 5.0] for s in chart.series.values())
