"""What listing a run needs from its events: progress, last loss, speed, time, the final `end`.

`EventSummary` folds events in one pass and can be fed more later, so a growing file is read
only once: `SummaryCache` keeps one follower + summary per events file and skips files whose
size and mtime did not change.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tui_tune.events import as_float
from tui_tune.runs.files import read_json, write_json_atomic
from tui_tune.runs.follow import EventFollower

RATE_WINDOW = 20  # step events used for the steps/s behind the ETA
DISK_CACHE = ".summary-cache.json"  # beside events.jsonl: `tui-tune ls` in a new process
DISK_CACHE_MIN_BYTES = 1 << 20  # smaller files are re-read faster than a cache is checked
CACHE_VERSION = 2  # 2: environment


@dataclass
class EventSummary:
    first_start_t: float | None = None
    segment_start_t: float | None = None  # the latest `start` (a resume opens a new segment)
    closed_segments_s: float = 0.0  # time spent in earlier start..last-event segments
    last_t: float | None = None
    steps_total: int | None = None
    step: int = 0
    last_loss: float | None = None
    last_lr: float | None = None
    last_grad_norm: float | None = None
    tokens_per_s: float | None = None
    mem_peak_gib: float | None = None
    last_val_loss: float | None = None
    last_checkpoint: dict[str, Any] | None = None
    end: dict[str, Any] | None = None  # the latest `end` event
    environment: dict[str, Any] | None = None  # from the latest `start` (events.py)
    events: int = 0
    recent_steps: deque = field(default_factory=lambda: deque(maxlen=RATE_WINDOW))

    def update(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            kind = event["kind"]
            t = event.get("t")
            if kind == "step":
                self._take_step(event, t)
            elif kind == "start":
                self._take_start(event, t)
            elif kind == "end":
                self.end = event
            elif kind == "checkpoint":
                self.last_checkpoint = event
            elif kind == "eval":
                self.last_val_loss = as_float(event.get("val_loss"))
            if isinstance(t, (int, float)):
                self.last_t = t
        self.events += len(events)

    def _take_step(self, event: dict[str, Any], t: Any) -> None:
        step = event.get("step")
        if isinstance(step, int):
            self.step = step
            if isinstance(t, (int, float)):
                self.recent_steps.append((t, step))
        self.last_loss = _number(event.get("loss"), self.last_loss)
        self.last_lr = _number(event.get("lr"), self.last_lr)
        self.last_grad_norm = _number(event.get("grad_norm"), self.last_grad_norm)
        self.tokens_per_s = _number(event.get("tokens_per_s"), self.tokens_per_s)
        self.mem_peak_gib = _number(event.get("mem_peak_gib"), self.mem_peak_gib)

    def _take_start(self, event: dict[str, Any], t: Any) -> None:
        if self.segment_start_t is not None and self.last_t is not None:
            self.closed_segments_s += max(0.0, self.last_t - self.segment_start_t)
        if isinstance(t, (int, float)):
            self.segment_start_t = t
            if self.first_start_t is None:
                self.first_start_t = t
        total = event.get("steps_total")
        if isinstance(total, int):
            self.steps_total = total
        if isinstance(event.get("environment"), dict):
            self.environment = event["environment"]
        self.recent_steps.clear()

    def elapsed_s(self, now: float | None) -> float | None:
        """Training time over every segment; the open one runs to `now` while alive."""
        if self.segment_start_t is None:
            return None
        end = now if now is not None else (self.last_t or self.segment_start_t)
        return self.closed_segments_s + max(0.0, end - self.segment_start_t)

    def eta_s(self, now: float) -> float | None:
        """Seconds to steps_total at the recent pace, counted from the last step event."""
        if self.steps_total is None or len(self.recent_steps) < 2:
            return None
        (t0, s0), (t1, s1) = self.recent_steps[0], self.recent_steps[-1]
        if s1 <= s0 or t1 <= t0:
            return None
        per_step = (t1 - t0) / (s1 - s0)
        return max(0.0, (self.steps_total - s1) * per_step - max(0.0, now - t1))


    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["recent_steps"] = [list(pair) for pair in self.recent_steps]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventSummary:
        known = {f.name for f in fields(cls)}
        summary = cls(**{k: v for k, v in data.items() if k in known and k != "recent_steps"})
        summary.recent_steps.extend(tuple(pair) for pair in data.get("recent_steps", []))
        return summary


def _number(value: Any, default: float | None) -> float | None:
    return as_float(value) if value is not None else default


class SummaryCache:
    """One incremental reader per events file, so repeated listings read only new lines.

    For big files the reader's position and the summary are also kept on disk beside the
    events, so a new process (`tui-tune ls`) reads only what was appended since.
    """

    def __init__(self, persist: bool = True) -> None:
        self.persist = persist
        self._entries: dict[Path, tuple[tuple[int, int], EventFollower, EventSummary]] = {}

    def summary(self, events_path: Path) -> EventSummary:
        try:
            stat = os.stat(events_path)
            key = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            self._entries.pop(events_path, None)
            return EventSummary()
        entry = self._entries.get(events_path)
        if entry is not None and entry[0] == key:
            return entry[2]
        follower, summary = (entry[1], entry[2]) if entry else self._load(events_path)
        restarts = follower.restarts
        events = follower.poll()
        if follower.restarts != restarts:  # truncated or replaced: fold the new file afresh
            summary = EventSummary()
        summary.update(events)
        follower.release()
        self._entries[events_path] = (key, follower, summary)
        if events and self.persist and stat.st_size >= DISK_CACHE_MIN_BYTES:
            self._save(events_path, follower, summary)
        return summary

    def _load(self, events_path: Path) -> tuple[EventFollower, EventSummary]:
        stored = read_json(events_path.with_name(DISK_CACHE)) if self.persist else None
        if stored and stored.get("version") == CACHE_VERSION:
            follower = EventFollower.at_position(events_path, stored.get("position") or {})
            if follower.resumed:
                try:
                    return follower, EventSummary.from_dict(stored.get("summary") or {})
                except TypeError:
                    pass
        return EventFollower(events_path), EventSummary()

    def _save(self, events_path: Path, follower: EventFollower, summary: EventSummary) -> None:
        try:
            write_json_atomic(events_path.with_name(DISK_CACHE), {
                "version": CACHE_VERSION, "position": follower.position(),
                "summary": summary.to_dict()})
        except OSError:
            pass  # a read-only runs folder just means no cache
