"""EventFollower on real files: appends, half-written lines, garbage, truncation, replacement."""

from __future__ import annotations

import json
import os

from tui_tune.events import encode, make_event
from tui_tune.runs.follow import EventFollower, read_events


def step_line(step: int) -> str:
    return encode(make_event("step", step=step, loss=1.0 / step))


def append(path, text: str | bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(text.encode() if isinstance(text, str) else text)


def steps(events) -> list[int]:
    return [e["step"] for e in events]


def test_reads_appended_lines_incrementally(tmp_path):
    path = tmp_path / "events.jsonl"
    follower = EventFollower(path)
    assert follower.poll() == []  # no file yet
    append(path, step_line(1) + step_line(2))
    assert steps(follower.poll()) == [1, 2]
    assert follower.poll() == []
    append(path, step_line(3))
    assert steps(follower.poll()) == [3]


def test_half_written_last_line_waits_for_its_newline(tmp_path):
    path = tmp_path / "events.jsonl"
    line = step_line(2)
    append(path, step_line(1) + line[:10])
    follower = EventFollower(path)
    assert steps(follower.poll()) == [1]
    append(path, line[10:-1])  # still no newline
    assert follower.poll() == []
    append(path, "\n")
    assert steps(follower.poll()) == [2]
    assert follower.skipped_lines == 0


def test_garbage_and_foreign_lines_are_skipped(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path, step_line(1) + "not json\n\n[1, 2]\n{\"no_kind\": 1}\n" + step_line(2))
    append(path, b"\xff\xfe broken utf8\n" + step_line(3).encode())
    follower = EventFollower(path)
    assert steps(follower.poll()) == [1, 2, 3]
    assert follower.skipped_lines == 5


def test_truncation_restarts_from_the_top(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path, step_line(1) + step_line(2) + step_line(3))
    follower = EventFollower(path)
    assert steps(follower.poll()) == [1, 2, 3]
    path.write_text(step_line(10))  # shorter than before
    assert steps(follower.poll()) == [10]
    assert follower.restarts == 1


def test_rewrite_to_a_longer_file_in_place_is_noticed(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path, step_line(1))
    follower = EventFollower(path)
    assert steps(follower.poll()) == [1]
    with open(path, "r+") as handle:  # same inode, new content, longer than before
        handle.write(step_line(7) + step_line(8))
    assert steps(follower.poll()) == [7, 8]


def test_replacement_by_a_new_file_is_followed(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path, step_line(1))
    follower = EventFollower(path)
    assert steps(follower.poll()) == [1]
    append(path, step_line(2))  # written to the old file, not read yet
    fresh = tmp_path / "new.jsonl"
    fresh.write_text(step_line(100) + step_line(101))
    os.replace(fresh, path)  # rotation: a new inode under the same name
    assert steps(follower.poll()) == [2, 100, 101]
    append(path, step_line(102))
    assert steps(follower.poll()) == [102]


def test_start_from_end_skips_history_but_keeps_an_unfinished_line(tmp_path):
    path = tmp_path / "events.jsonl"
    line = step_line(3)
    append(path, step_line(1) + step_line(2) + line[:5])
    follower = EventFollower(path, from_start=False)
    assert follower.poll() == []
    append(path, line[5:] + step_line(4))
    assert steps(follower.poll()) == [3, 4]


def test_start_from_end_reads_a_file_created_later_from_its_start(tmp_path):
    path = tmp_path / "events.jsonl"
    follower = EventFollower(path, from_start=False)
    assert follower.poll() == []
    append(path, step_line(1))
    assert steps(follower.poll()) == [1]


def test_batches_are_bounded_and_nothing_is_lost(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path, "".join(step_line(i) for i in range(1, 1001)))
    follower = EventFollower(path)
    seen = []
    while batch := follower.poll(max_events=64):
        assert len(batch) <= 64
        seen.extend(steps(batch))
    assert seen == list(range(1, 1001))


def test_values_round_trip_including_non_finite(tmp_path):
    path = tmp_path / "events.jsonl"
    append(path, encode(make_event("step", step=1, loss=float("nan"), text="a\nb \u00e9")))
    (event,) = read_events(path)
    assert event["loss"] == "nan" and event["text"] == "a\nb \u00e9"
    assert json.loads(encode(event))["step"] == 1
