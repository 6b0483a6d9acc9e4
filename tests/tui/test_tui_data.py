"""The numpy side of the app: chart decimation and smoothing, bulk event parsing, health."""

from __future__ import annotations

import json

import numpy as np

from tests.tui.conftest import fixed_events, step_event
from tui_tune.runs.follow import EventFollower
from tui_tune.tui.health import health_warnings
from tui_tune.tui.run_data import (
    RunSeries,
    decode_chunk,
    fold_new,
    load_prefix,
    load_run,
    read_recent,
)
from tui_tune.tui.widgets.braille_chart import BrailleChart
from tui_tune.tui.widgets.plotting import column_ranges, ema, sparkline


def test_decimation_keeps_a_single_spike_among_100k_points():
    x = np.arange(100_000, dtype=float)
    y = np.zeros_like(x)
    y[54_321] = 50.0
    mins, maxs, _ = column_ranges(x, y, 0, x[-1], 80)
    assert np.nanmax(maxs) == 50.0 and np.nanmin(mins) == 0.0


def test_ema_matches_the_recursive_definition_and_skips_nan():
    values = np.array([1.0, 2.0, np.nan, 4.0, 3.0, 5.0])
    out = ema(values, 0.9)
    s = n = 0.0
    expected = []
    for v in values:
        if np.isnan(v):
            expected.append(np.nan)
            continue
        s, n = 0.9 * s + 0.1 * v, 0.9 * n + 0.1
        expected.append(s / n)
    np.testing.assert_allclose(out, expected, equal_nan=True)


def test_chart_draws_every_series_in_its_colour_with_legend():
    chart = BrailleChart("loss")
    x = np.arange(1000, dtype=float)
    chart.set_series("train", x, np.exp(-x / 300), "cyan")
    chart.set_series("val", x[::100], np.exp(-x[::100] / 300) + 0.1, "yellow")
    strips = chart.render_strips(60, 12)
    legend = "".join(s.text for s in strips[0])
    assert "train" in legend and "val" in legend
    colours = {str(seg.style.color.name) for strip in strips[1:-1] for seg in strip
               if seg.style and seg.style.color and any(0x2800 < ord(c) < 0x2900 for c in seg.text)}
    assert {"cyan", "yellow"} <= colours
    chart.toggle_log()
    assert "log" in "".join(s.text for s in chart.render_strips(60, 12)[0])


def test_sparkline_shows_the_trend():
    assert sparkline([5, 4, 3, 2, 1], 5) == "█▆▄▃▁" or sparkline([5, 4, 3, 2, 1], 5)[0] == "█"


def write_events(path, events, garbage=False):
    with open(path, "w") as handle:
        for i, event in enumerate(events):
            handle.write(json.dumps(event) + "\n")
            if garbage and i == 3:
                handle.write("{not json\n\n[1, 2]\n")


def test_bulk_parse_skips_garbage_and_reads_nan_strings(tmp_path):
    events = fixed_events(steps=50)
    events.insert(10, {**step_event(9, 0.0), "loss": "nan", "step": 9})
    write_events(tmp_path / "events.jsonl", events, garbage=True)
    series, _ = load_run(tmp_path)
    loss = series.step_values("loss")
    assert series.step_values("step").size == 51 and np.isnan(loss).sum() == 1
    assert series.start["steps_total"] == 200 and series.end["status"] == "stopped"
    assert len(series.samples) == 2 and series.eval_values("val_loss").size == 1


def test_steps_without_a_grad_norm_still_chart(tmp_path):
    # logging.log_grad_norm = false writes grad_norm null: the step still counts, the norm is NaN
    events = [{**e, "grad_norm": None} if e["kind"] == "step" else e
              for e in fixed_events(steps=50)]
    write_events(tmp_path / "events.jsonl", events)
    series, _ = load_run(tmp_path)
    assert series.step_values("step").size == 50
    assert np.isnan(series.step_values("grad_norm")).all()
    assert not np.isnan(series.step_values("loss")).any()


def test_recent_part_first_then_history_equals_one_full_read(tmp_path):
    write_events(tmp_path / "events.jsonl", fixed_events(steps=3000))
    full, _ = load_run(tmp_path)
    recent, start, _ = read_recent(tmp_path, max_bytes=20_000)
    assert 0 < start and recent.start["steps_total"] == 200  # start line read from the top
    history = load_prefix(tmp_path, start, chunk_bytes=7_000)
    history.extend_from(recent)
    for column in ("step", "loss", "t"):
        np.testing.assert_array_equal(history.step_values(column), full.step_values(column))
    assert len(history.samples) == len(full.samples)


def test_tail_keeps_partial_lines_and_notices_truncation(tmp_path):
    """The app follows a run with the one tailer (runs/follow.py) in its raw mode."""
    path = tmp_path / "events.jsonl"
    follower = EventFollower(path)
    line = json.dumps(step_event(1, 1.0)) + "\n"
    path.write_text(line + line[:20])
    assert b"".join(follower.poll_blocks()) + b"\n" == line.encode()
    assert follower.restarts == 0
    with open(path, "a") as handle:
        handle.write(line[20:])
    assert fold_new(follower)[0].events == 1
    path.write_text(line)  # replaced by a shorter file
    series, restarted = fold_new(follower)
    assert restarted and series.events == 1


def test_the_app_goes_on_where_its_own_first_read_ended(tmp_path):
    """After the recent part is read by offset, the follower reads only what follows, and
    a truncation below that offset restarts from the top."""
    write_events(tmp_path / "events.jsonl", fixed_events(steps=100, status=None))
    _, _, end = read_recent(tmp_path)
    follower = EventFollower.at_offset(tmp_path / "events.jsonl", end)
    assert fold_new(follower)[0].events == 0
    write_events(tmp_path / "more.jsonl", [step_event(101, 0.5)])
    with open(tmp_path / "events.jsonl", "a") as handle:
        handle.write((tmp_path / "more.jsonl").read_text())
    series, restarted = fold_new(follower)
    assert not restarted and list(series.step_values("step")) == [101]
    write_events(tmp_path / "events.jsonl", fixed_events(steps=3, status=None))
    series, restarted = fold_new(follower)
    assert restarted and series.step_values("step").size == 3


def series_from(events) -> RunSeries:
    series = RunSeries()
    series.add(decode_chunk("".join(json.dumps(e) + "\n" for e in events).encode()))
    return series


def test_health_flags_spikes_flat_loss_and_overfitting():
    assert health_warnings(series_from(fixed_events(steps=100))) == []
    spiky = fixed_events(steps=100, status=None)
    spiky.append({**step_event(101, 0.5), "grad_norm": 500.0})
    assert any("spike" in w for w in health_warnings(series_from(spiky)))
    flat = [step_event(i, 2.0) for i in range(1, 301)]
    assert any("flat" in w for w in health_warnings(series_from(flat)))
    overfit = [step_event(i, 3.0 / i) for i in range(1, 301)]
    overfit += [{"v": 1, "t": 0, "kind": "eval", "step": s, "val_loss": v, "perplexity": 1,
                 "metric": "perplexity", "metric_value": 1} for s, v in
                ((100, 1.0), (200, 1.2), (300, 1.5))]
    assert any("overfitting" in w for w in health_warnings(series_from(overfit)))


def test_gpu_panel_shows_memory_utilisation_or_why_there_is_none():
    from tui_tune.monitor import GpuReading
    from tui_tune.tui.widgets.panels import gpu_text
    reading = GpuReading(index=0, name="NVIDIA H100 80GB HBM3", mem_used_gib=76.0,
                         mem_total_gib=80.0, util_pct=97.0, power_w=650.0, power_limit_w=700.0,
                         temperature_c=71.0)
    text = gpu_text([reading], None)
    assert "76.0/80G" in text and "97%" in text and "71C" in text
    assert "[red]" in text  # 95 % memory is shown in red
    assert "NVML unavailable" in gpu_text([], "no GPU: NVML unavailable")


def test_every_chart_line_really_fills_its_width():
    """A line shorter than the widget (while claiming full width) leaves the previous screen's
    characters behind it on a real terminal: every line must be exactly `width` cells."""
    from rich.cells import cell_len
    chart = BrailleChart("grad norm")
    sizes = [(60, 12), (30, 8), (10, 3)]
    for width, height in sizes:
        assert all(cell_len(s.text) == width for s in chart.render_strips(width, height))
    x = np.arange(100, dtype=float)
    chart.set_series("grad", x, 1 + x % 7, "magenta")
    for width, height in sizes:
        assert all(cell_len(s.text) == width for s in chart.render_strips(width, height))
    chart.set_series("a-very-long-series-name", x, x, "cyan")  # legend wider than the chart
    assert all(cell_len(s.text) == 30 for s in chart.render_strips(30, 8))


def test_monitor_header_shows_status_step_epoch_and_eta_within_80_columns():
    from rich.text import Text

    from tui_tune.tui.monitor_view import header_markup
    series = series_from(fixed_events(steps=100, total=200, status=None))
    # elapsed and ETA as the run's summary computes them (RunFeed; tests/tui/test_tui_times.py)
    line = Text.from_markup("20260101-000000-demo-tiny  " +
                            header_markup(series, "running", 100.0, 100.0)).plain
    assert "running" in line and "step 100/200" in line and "epoch 1.00" in line
    assert "ETA 1:40" in line[:80]  # cut last: tok/s, elapsed
    assert "ETA" not in header_markup(series, "stopped", 100.0, 100.0)
