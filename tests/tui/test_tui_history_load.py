"""A long history, read fast: the lean decoder, the history cache and the chart's decimation
must give exactly what the file holds (issue 21: a 1,000,000-event run opens in under 2 s)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.tui.conftest import fixed_events, step_event
from tui_tune.rundir import RunDir
from tui_tune.tui import history_cache
from tui_tune.tui.run_data import (
    STEP_COLUMNS,
    RunSeries,
    decode_chunk,
    load_prefix,
)
from tui_tune.tui.widgets.plotting import column_ranges, last_finite


def varied_events(steps: int = 2000) -> list[dict]:
    """Step lines whose keys change on the way (grad_norm null, a dpo metric from step 700,
    a "nan" string, a key no reader knows), with evals, samples, checkpoints and an end."""
    events = fixed_events(steps=steps)
    for event in events:
        step = event.get("step", 0)
        if event["kind"] != "step":
            continue
        if step % 7 == 0:
            event["grad_norm"] = None
        if step >= 700:
            event["train_kl"] = step / 1000
        if step == 901:
            event["loss"] = "nan"
        if step == 1500:
            event["someone_elses_key"] = [1, 2]
    events.insert(1200, {"v": 1, "t": 5.0, "kind": "checkpoint", "step": 1100,
                         "path": "checkpoints/step-1100", "reason": "interval"})
    return events


def write(path, events, garbage_at: int | None = None) -> None:
    with open(RunDir(path).events, "w", encoding="utf-8") as handle:
        for i, event in enumerate(events):
            handle.write(json.dumps(event) + "\n")
            if i == garbage_at:
                handle.write("{not json\n")


def one_read(path) -> RunSeries:
    """The reference: the whole file through the all-purpose decoder in one go."""
    series = RunSeries()
    series.add(decode_chunk(RunDir(path).events.read_bytes()))
    return series


def assert_same(got: RunSeries, want: RunSeries) -> None:
    for name in STEP_COLUMNS:
        np.testing.assert_array_equal(got.step_values(name), want.step_values(name),
                                      err_msg=name)
    for name, column in want.evals.items():
        np.testing.assert_array_equal(got.evals[name].values, column.values, err_msg=name)
    assert got.samples == want.samples and got.checkpoints == want.checkpoints
    assert (got.events, got.step_lines, got.start, got.end, got.reached_step) == \
        (want.events, want.step_lines, want.start, want.end, want.reached_step)


@pytest.mark.parametrize("garbage_at", [None, 300])
def test_the_lean_decoder_reads_what_the_all_purpose_one_reads(tmp_path, garbage_at):
    write(tmp_path, varied_events(), garbage_at)
    size = RunDir(tmp_path).events.stat().st_size
    history = load_prefix(tmp_path, size, chunk_bytes=9_000)  # ~60 chunks, keys change
    assert_same(history, one_read(tmp_path))
    kl = history.step_values("train_kl")
    assert np.isnan(kl[:699]).all() and kl[699] == 0.7  # appeared mid-file, kept exactly


def test_the_whole_history_equals_the_step_events_in_the_file(tmp_path):
    events = varied_events(3000)
    write(tmp_path, events)
    size = RunDir(tmp_path).events.stat().st_size
    history, _ = history_cache.load_history(tmp_path, size, chunk_bytes=20_000)
    steps = [e for e in events if e["kind"] == "step"]
    assert history.step_values("step").tolist() == [e["step"] for e in steps]
    want = [math.nan if isinstance(e["loss"], str) else e["loss"] for e in steps]
    np.testing.assert_array_equal(history.step_values("loss"), want)


def test_a_metric_never_logged_stores_nothing_yet_reads_as_nan(tmp_path):
    write(tmp_path, fixed_events(steps=5000))
    size = RunDir(tmp_path).events.stat().st_size
    history = load_prefix(tmp_path, size, chunk_bytes=50_000)
    unlogged = history.steps["train_kl"]
    assert not unlogged.allocated and unlogged.size == 5000  # not 40 kB of NaN
    assert np.isnan(history.step_values("train_kl")).all()
    assert history.steps["loss"].allocated


@pytest.fixture
def small_cache(monkeypatch):
    monkeypatch.setattr(history_cache, "MIN_BYTES", 10_000)


def test_a_reopened_history_comes_from_the_cache_and_equals_the_file(tmp_path, small_cache,
                                                                     monkeypatch):
    write(tmp_path, varied_events())
    stop = RunDir(tmp_path).events.stat().st_size
    first, keep = history_cache.load_history(tmp_path, stop, chunk_bytes=9_000)
    assert keep is not None
    keep()
    assert RunDir(tmp_path).history_cache.exists()

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cached part was decoded again")
    monkeypatch.setattr(history_cache, "load_prefix", no_decoding)
    again, keep = history_cache.load_history(tmp_path, stop)
    assert keep is None
    assert_same(again, first)
    assert_same(again, one_read(tmp_path))


def test_a_grown_file_reads_the_cache_then_decodes_only_the_rest(tmp_path, small_cache):
    events = varied_events()
    write(tmp_path, events[:1500])
    stop = RunDir(tmp_path).events.stat().st_size
    history_cache.load_history(tmp_path, stop)[1]()
    with open(RunDir(tmp_path).events, "a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(e) + "\n" for e in events[1500:])
    grown = RunDir(tmp_path).events.stat().st_size
    history, _ = history_cache.load_history(tmp_path, grown, chunk_bytes=9_000)
    assert_same(history, one_read(tmp_path))


@pytest.mark.parametrize("change", ["rewritten", "cut", "bad cache", "step count"])
def test_a_cache_that_does_not_match_the_file_is_not_used(tmp_path, small_cache, change,
                                                          monkeypatch):
    write(tmp_path, fixed_events(steps=3000))
    stop = RunDir(tmp_path).events.stat().st_size
    history_cache.load_history(tmp_path, stop)[1]()
    cache = RunDir(tmp_path).history_cache
    if change == "rewritten":  # another run's events in the same place: as many steps
        write(tmp_path, fixed_events(steps=3000, scale=2.0)
              + [{"v": 1, "kind": "log", "message": "x" * 1000}] * 100)
    elif change == "cut":
        write(tmp_path, fixed_events(steps=1000))
    elif change == "bad cache":
        cache.write_bytes(cache.read_bytes()[:-8])
    else:  # the same bytes at both ends, yet a line between became another kind
        monkeypatch.setattr(history_cache, "_fingerprint", lambda path, stop: {
            k: v for k, v in json.loads(cache.read_bytes().split(b"\n")[0]).items()
            if k in ("head", "end")})
        lines = RunDir(tmp_path).events.read_bytes().split(b"\n")
        log = json.dumps({"v": 1, "kind": "log", "message": ""}).encode()
        lines[500] = log.replace(b'""', b'"' + b"x" * (len(lines[500]) - len(log)) + b'"')
        RunDir(tmp_path).events.write_bytes(b"\n".join(lines))
        assert RunDir(tmp_path).events.stat().st_size == stop
    size = RunDir(tmp_path).events.stat().st_size
    history, _ = history_cache.load_history(tmp_path, size)
    assert_same(history, one_read(tmp_path))


def test_a_folder_we_cannot_write_just_has_no_cache(tmp_path, small_cache, monkeypatch):
    write(tmp_path, fixed_events(steps=3000))
    stop = RunDir(tmp_path).events.stat().st_size
    _, keep = history_cache.load_history(tmp_path, stop)

    def refuse(*args, **kwargs):
        raise PermissionError("read-only")
    monkeypatch.setattr(history_cache.os, "replace", refuse)
    keep()  # no error
    assert list(tmp_path.iterdir()) == [RunDir(tmp_path).events]


def brute_force(x, y, x_lo, x_hi, columns):
    """Each column's points by the definition: the nearest column centre; finite y only."""
    mins, maxs, lasts = (np.full(columns, np.nan) for _ in range(3))
    span = (x_hi - x_lo) or 1.0
    for xi, yi in zip(x, y, strict=True):
        if not (x_lo <= xi <= x_hi) or not np.isfinite(yi):
            continue
        c = min(max(int((xi - x_lo) / span * (columns - 1) + 0.5), 0), columns - 1)
        mins[c] = yi if np.isnan(mins[c]) else min(mins[c], yi)
        maxs[c] = yi if np.isnan(maxs[c]) else max(maxs[c], yi)
        lasts[c] = yi
    return mins, maxs, lasts


@pytest.mark.parametrize("columns", [1, 2, 7, 160])
@pytest.mark.parametrize("window", [(0.0, 1.0), (0.3, 0.6)])
def test_decimation_keeps_each_columns_min_max_and_last_point(columns, window):
    rng = np.random.default_rng(columns)
    n = 3000
    x = np.sort(rng.uniform(0, 1000, n))
    y = rng.normal(0, 1, n)
    y[rng.choice(n, 200, replace=False)] = np.nan
    y[rng.choice(n, 20, replace=False)] = np.inf
    y[rng.choice(n, 20, replace=False)] = -np.inf
    y[-1] = np.nan  # the last column's last point is not finite
    y[100:400] = np.nan  # whole columns without a finite point
    x_lo, x_hi = window[0] * 1000, window[1] * 1000
    got = column_ranges(x, y, x_lo, x_hi, columns)
    for mine, want in zip(got, brute_force(x, y, x_lo, x_hi, columns), strict=True):
        np.testing.assert_array_equal(mine, want)


def test_a_legend_shows_the_last_finite_value():
    values = np.r_[np.arange(5000.0), np.full(3000, np.nan)]
    assert last_finite(values) == 4999.0
    assert last_finite(np.full(10, np.nan)) is None and last_finite(np.array([])) is None


def test_step_event_helper_still_matches_the_reader(tmp_path):
    """The fixtures' step lines decode to their own values (a guard for the tests above)."""
    event = step_event(3, 1.5)
    series = RunSeries()
    series.add(decode_chunk((json.dumps(event) + "\n").encode()))
    assert series.step_values("loss").tolist() == [1.5]
