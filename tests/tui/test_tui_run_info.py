"""The monitor's run info (`i`): the memory estimate beside the GPU peak the run measured."""

from __future__ import annotations

import json

from tests.tui.conftest import fixed_events
from tui_tune.tui.monitor_view import run_info_text
from tui_tune.tui.run_data import load_run


def info_with(tmp_path, estimate, end_fields) -> str:
    events = fixed_events(steps=5)
    start = next(e for e in events if e["kind"] == "start")
    if estimate is not None:
        start["mem_estimate_gib"] = estimate
    end = next(e for e in events if e["kind"] == "end")
    end.update(end_fields)
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    series, _ = load_run(tmp_path)
    return run_info_text(series, "r1")


def test_run_info_shows_the_estimate_against_the_measured_gpu_peak(tmp_path):
    text = info_with(tmp_path, 9.86, {"mem_peak_gib": 8.5})
    assert "estimated 9.86 GiB, measured 8.50 GiB (estimate 16% high)" in text


def test_run_info_says_n_a_when_no_gpu_peak_was_measured(tmp_path):
    text = info_with(tmp_path, 1.25, {})  # a CPU run: its end carries no GPU peak
    line = next(line for line in text.splitlines() if line.startswith("memory"))
    assert "estimated 1.25 GiB, measured n/a" in line
    assert not any(ch.isdigit() for ch in line.split("measured")[1])
