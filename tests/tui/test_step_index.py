"""The worker's step index (.step-index): a history opened from it equals the file, and an
index that does not agree with events.jsonl (replaced, cut, written around) is used only
where it agrees (issue 21: a 1,000,000-event run's whole history in under 2 s)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.tui.conftest import fixed_events
from tests.tui.test_tui_history_load import assert_same, one_read, varied_events
from tui_tune import step_index
from tui_tune.event_writer import EventWriter
from tui_tune.rundir import RunDir
from tui_tune.tui import history_cache
from tui_tune.tui.run_data import load_prefix


def write_through(path, events, flush_every: int = 37, **writer_args) -> None:
    """Each event through the worker's writer (as a run writes them), flushed every
    `flush_every` events: records are placed block by block."""
    with EventWriter(RunDir(path).events, flush_every_s=3600, **writer_args) as writer:
        for i, event in enumerate(events):
            writer.write(event["kind"], **{k: v for k, v in event.items() if k not in
                                           ("v", "kind")})
            if i % flush_every == 0:
                writer.flush()


def from_index(path, stop=None):
    """load_history with the decoding of what the index covers counted: (series, covered)."""
    stop = RunDir(path).events.stat().st_size if stop is None else stop
    indexed = history_cache._from_index(path, stop)
    series, _ = history_cache.load_history(path, stop)
    return series, (indexed[1] if indexed else 0)


def last_step_line_end(path) -> int:
    data = RunDir(path).events.read_bytes()
    return max(i + len(line) + 1 for i, line in line_starts(data) if b'"kind":"step"' in line)


def line_starts(data: bytes):
    position = 0
    for line in data.split(b"\n")[:-1]:
        yield position, line
        position += len(line) + 1


def oddities(events: list[dict]) -> list[dict]:
    """Values a reader must type the same way from the index as from the line: null, "nan",
    "inf", numeric text, a magnitude beyond a chart, a step without a usable number."""
    steps = [e for e in events if e["kind"] == "step"]
    steps[3]["grad_norm"] = None
    steps[4]["loss"] = float("nan")  # the writer spells it "nan"
    steps[5]["loss"] = float("inf")
    steps[6]["lr"] = "0.5"
    steps[7]["loss"] = 1e305
    steps[8]["step"] = -1  # no place on the x axis: counted, not charted
    return events


def test_a_history_read_from_the_index_equals_the_file(tmp_path):
    write_through(tmp_path, oddities(fixed_events(steps=600)))
    assert RunDir(tmp_path).step_index.exists()
    series, covered = from_index(tmp_path)
    assert covered == last_step_line_end(tmp_path)  # every step line came from the index
    assert_same(series, one_read(tmp_path))


def test_a_metric_the_records_have_no_room_for_ends_the_index_there(tmp_path):
    write_through(tmp_path, varied_events())  # train_kl from step 700 on
    series, covered = from_index(tmp_path)
    data = RunDir(tmp_path).events.read_bytes()
    first_kl = data.index(b'"train_kl"')
    assert 0 < covered <= first_kl and data[covered - 1:covered] == b"\n"
    assert_same(series, one_read(tmp_path))


def test_a_step_line_written_around_the_writer_ends_the_index_before_it(tmp_path):
    events = fixed_events(steps=300)
    with EventWriter(RunDir(tmp_path).events, flush_every_s=3600) as writer:
        for i, event in enumerate(events):
            writer.write(event["kind"], **{k: v for k, v in event.items()
                                           if k not in ("v", "kind")})
            writer.flush()
            if i == 150:  # another process appends a step line of its own
                with open(RunDir(tmp_path).events, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps({**event, "kind": "step", "step": 9999}) + "\n")
    data = RunDir(tmp_path).events.read_bytes()
    series, covered = from_index(tmp_path)
    assert covered == data.index(b'"step": 9999') - data[:data.index(b'"step": 9999')][::-1] \
        .index(b"\n")  # the index stands up to the line before the foreign one
    assert_same(series, one_read(tmp_path))


@pytest.mark.parametrize("change", ["replaced", "cut", "torn record", "garbage index"])
def test_an_index_that_does_not_agree_with_the_file_is_used_only_where_it_does(tmp_path,
                                                                             change):
    write_through(tmp_path, fixed_events(steps=500))
    paths = RunDir(tmp_path)
    if change == "replaced":  # another run's lines in the same place, no index of its own
        paths.events.write_text("".join(json.dumps(e) + "\n"
                                        for e in fixed_events(steps=500, scale=2.0)))
    elif change == "cut":  # the file lost its end: records past it are left out
        paths.events.write_bytes(paths.events.read_bytes()[:40_000])
    elif change == "torn record":
        paths.step_index.write_bytes(paths.step_index.read_bytes()[:-5])
    else:
        paths.step_index.write_bytes(b'{"version": 1, "columns": ["step"]}\n' + os.urandom(4000))
    series, covered = from_index(tmp_path)
    assert_same(series, one_read(tmp_path))
    if change == "replaced":
        assert covered == 0
    elif change in ("cut", "torn record"):
        assert 0 < covered < paths.events.stat().st_size


def test_a_stop_inside_the_records_reads_only_the_records_before_it(tmp_path):
    write_through(tmp_path, fixed_events(steps=400))
    data = RunDir(tmp_path).events.read_bytes()
    stop = data.index(b"\n", len(data) // 2) + 1
    indexed = history_cache._from_index(tmp_path, stop)
    assert indexed is not None and indexed[1] <= stop
    series, _ = history_cache.load_history(tmp_path, stop)
    assert_same(series, load_prefix(tmp_path, stop))


@pytest.mark.parametrize("new_steps", [50, 800])  # shorter and longer than the old file
def test_a_resumed_run_continues_the_index_and_a_new_file_replaces_it(tmp_path, new_steps):
    events = fixed_events(steps=400)
    write_through(tmp_path, events[:200])
    write_through(tmp_path, events[200:])  # the resumed worker's writer: same columns
    series, covered = from_index(tmp_path)
    assert covered == last_step_line_end(tmp_path)
    assert_same(series, one_read(tmp_path))
    RunDir(tmp_path).events.unlink()  # a new events.jsonl: the old records are not its lines
    write_through(tmp_path, fixed_events(steps=new_steps, scale=3.0))
    series, covered = from_index(tmp_path)
    assert covered == last_step_line_end(tmp_path)
    assert_same(series, one_read(tmp_path))


def test_an_index_that_cannot_be_written_never_stops_the_events(tmp_path):
    RunDir(tmp_path).step_index.mkdir()  # not a file: every open fails
    write_through(tmp_path, fixed_events(steps=100))
    series, covered = from_index(tmp_path)
    assert covered == 0
    assert series.step_values("step").size == 100
    assert_same(series, one_read(tmp_path))


def test_records_hold_what_a_reader_decodes_from_the_line(tmp_path):
    write_through(tmp_path, oddities(fixed_events(steps=20)))
    index = step_index.read_step_index(tmp_path, RunDir(tmp_path).events.stat().st_size)
    assert index is not None and index.rows == 20
    data = RunDir(tmp_path).events.read_bytes()
    for row in range(index.rows):
        line = data[int(index.starts[row]):int(index.ends[row])]
        assert line.endswith(b"\n") and b'"kind":"step"' in line
        names = list(index.store)
        np.testing.assert_array_equal([index.values(n)[row] for n in names],
                                      step_index.line_values(line, names))


@pytest.mark.parametrize("indexed", [True, False])
async def test_the_monitor_opens_a_long_history_whole(make_run, indexed, monkeypatch):
    """Past the recent 2 MiB the monitor loads the older part (from the index while the first
    frame is drawn, or decoded after it): what it shows equals one read of the file."""
    from tests.tui.conftest import wait_for
    from tui_tune.tui.app import TuneApp
    from tui_tune.tui.screens.monitor import MonitorScreen
    run = make_run("20260101-000000-demo-tiny", events=[])
    RunDir(run).events.unlink()
    write_through(run, oddities(fixed_events(steps=12_000, total=12_000)), flush_every=500)
    assert RunDir(run).events.stat().st_size > 2 << 20  # more than the recent part
    if not indexed:
        RunDir(run).step_index.unlink()
    covered = []
    real = history_cache._from_index
    monkeypatch.setattr(history_cache, "_from_index",
                        lambda *args: covered.append(got := real(*args)) or got)
    app = TuneApp(start=lambda: MonitorScreen(run, read_only=True, sample_gpus=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: not app.screen.history_loading, timeout=30)
        assert_same(app.screen.series, one_read(run))
    assert len(covered) == 1 and (covered[0] is not None) == indexed
