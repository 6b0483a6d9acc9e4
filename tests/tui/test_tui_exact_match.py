"""A causal LM run with prediction.metric = "exact_match": the monitor's metric chart says how
many answers came out exactly right, live ("247 of 300 exact")."""

from __future__ import annotations

import json

import pytest

from tests.tui.conftest import FIXED_T, fixed_events, wait_for
from tests.tui.test_tui_polish import append_line
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.monitor import MonitorScreen


def exact_eval(step: int, right: int, total: int = 300) -> dict:
    return {"v": 1, "t": FIXED_T + step, "kind": "eval", "step": step, "val_loss": 1.0,
            "perplexity": 2.7, "metric": "exact_match", "metric_value": right / total,
            "exact_match": right / total, "exact_count": right, "exact_total": total}


def legend(screen) -> str:
    return screen.query_one("#chart-metric").render_strips(60, 6)[0].text


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_metric_chart_counts_the_exact_answers_live(make_run, size):
    events = [e for e in fixed_events(steps=40, status=None) if e["kind"] != "eval"]
    run = make_run("20260101-000000-demo-tiny", events=events + [exact_eval(20, 180)])
    app = TuneApp(start=lambda: MonitorScreen(run, sample_gpus=False))
    async with app.run_test(size=size) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: "180 of 300 exact" in legend(screen))
        append_line(run / "events.jsonl", json.dumps(exact_eval(40, 247)))
        await wait_for(pilot, lambda: "247 of 300 exact" in legend(screen))
        await pilot.pause(0.6)  # drawn at the chart's width, not cut
        shown = screen.query_one("#chart-metric")
        assert "247 of 300 exact" in shown.render_strips(shown.size.width, 6)[0].text
