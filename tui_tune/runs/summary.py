"""What listing a run needs from its events: progress, last loss, speed, time, the final `end`.

`EventSummary` folds events in one pass and can be fed more later, so a growing file is read
only once: `SummaryCache` keeps one follower + summary per events file and skips files whose
size and mtime did not change. A big file is read one block at a time (the follower's raw
mode) and each line decoded into the few fields a summary needs (`EventFields`: the metrics of
events.METRICS and what progress and time need), so a 1M-event file takes bounded memory; only
the latest `end` and `checkpoint` lines are decoded whole. Every field goes through
event_values, so no value in an event can make the summary fail.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import msgspec

from tui_tune.events import METRICS, reader_struct
from tui_tune.rundir import RunDir
from tui_tune.runs.event_values import count, finite, measure, timestamp
from tui_tune.runs.files import read_json, write_json_atomic
from tui_tune.runs.follow import EventFollower
from tui_tune.runs.stall import stalled_for

RATE_WINDOW = 20  # step events used for the steps/s behind the ETA
DISK_CACHE_MIN_BYTES = 1 << 20  # smaller files are re-read faster than a cache is checked
CACHE_VERSION = 7  # 2: streamed fields, 3: environment, 4: every metric, 5: metric_name,
# 6: mem_estimate_gib, 7: the step a checkpoint or end after the last step event reached
PROGRESS_KINDS = ("step", "eval", "start")  # what counts as progress for the stall rule
STEP_METRICS, EVAL_METRICS = tuple(METRICS["step"]), tuple(METRICS["eval"])
METRIC_NAMES = frozenset((*STEP_METRICS, *EVAL_METRICS))
# the fields a summary reads from every line, as whatever JSON value the line holds (typed by
# event_values); environment: start only, what the run ran on (events.ENVIRONMENT_FIELDS);
# metric: eval only, the name of metric_value (prediction.metric)
EventFields = reader_struct("EventFields", others=(
    "kind", "t", "step", *EVAL_METRICS, "metric", "steps_total", "environment",
    "mem_estimate_gib"))
FIELD_NAMES = EventFields.__struct_fields__
_DECODER = msgspec.json.Decoder(EventFields)
# the step metrics are read only from the last step lines of a block (decoding them from every
# line made a cold `ls` of a 1M-line run 30% slower); one not found there is looked for alone
StepMetrics = reader_struct("StepMetrics", others=("kind", *STEP_METRICS))
_STEP_DECODER = msgspec.json.Decoder(StepMetrics)
TAIL_STEP_LINES = 64  # step lines read back from a block's end for its latest metrics


def _latest(name: str) -> property:
    return property(lambda self: self.metrics.get(name), doc=f"The latest {name}, or None.")


@dataclass
class EventSummary:
    first_start_t: float | None = None
    segment_start_t: float | None = None  # the latest `start` (a resume opens a new segment)
    closed_segments_s: float = 0.0  # time spent in earlier start..last-event segments
    last_t: float | None = None
    last_progress_t: float | None = None  # the latest step, eval or start event
    steps_total: int | None = None
    step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)  # the latest of each, NaN included
    metric_name: str | None = None  # what the latest eval calls metric_value (accuracy, mse)
    last_checkpoint: dict[str, Any] | None = None
    end: dict[str, Any] | None = None  # the latest `end` event
    environment: dict[str, Any] | None = None  # from the latest `start` (events.py)
    mem_estimate_gib: float | None = None  # the latest start's estimated peak (runs/estimate)
    events: int = 0
    recent_steps: deque = field(default_factory=lambda: deque(maxlen=RATE_WINDOW))

    # the readings `ls`, `watch` and the runs screen show by name
    last_loss, last_lr = _latest("loss"), _latest("lr")
    last_grad_norm, tokens_per_s = _latest("grad_norm"), _latest("tokens_per_s")
    mem_peak_gib, last_val_loss = _latest("mem_peak_gib"), _latest("val_loss")

    def update(self, events: list[dict[str, Any]]) -> None:
        """Fold in events already parsed (dicts, as EventFollower.poll returns them)."""
        events = [e for e in events if isinstance(e, dict)]
        records = [EventFields(**{name: e.get(name) for name in FIELD_NAMES}) for e in events]

        def latest(kind: str) -> dict[str, Any] | None:
            return next((e for e in reversed(events) if e.get("kind") == kind), None)
        self._fold(records, latest)
        self._take_step_metrics(
            (StepMetrics(**{name: e.get(name) for name in StepMetrics.__struct_fields__})
             for e in reversed(events) if e.get("kind") == "step"), STEP_METRICS)

    def update_block(self, block: bytes) -> None:
        """Fold in a block of complete lines; lines that are not JSON objects are skipped."""
        try:
            records = _DECODER.decode_lines(block)
        except msgspec.DecodeError:  # some line is not an object: decode them one by one
            records = [r for r in map(_fields_or_none, block.split(b"\n")) if r is not None]
        self._fold(records, lambda kind: _latest_in_block(block, kind))
        missing = self._take_step_metrics(_last_step_lines(block), STEP_METRICS)
        if missing:  # not in the last lines (grad_norm null all along): through the block
            narrow = _narrow_decoder(missing)
            try:
                steps = narrow.decode_lines(block)
            except msgspec.DecodeError:
                steps = [r for r in (_decoded_or_none(narrow, line)
                                     for line in block.split(b"\n")) if r is not None]
            self._take_step_metrics((r for r in reversed(steps) if r.kind == "step"), missing)

    def _fold(self, records: list[EventFields],
              latest: Callable[[str], dict[str, Any] | None]) -> None:
        """Order matters only around `start` (segments, rate window) and for the latest value
        of each reading, so step events are not visited one by one: the block is scanned
        backwards until every reading is found."""
        events = [r for r in records if type(r.kind) is str]
        self.events += len(events)
        if not events:
            return
        known_at, known_t = 0, self.last_t  # the latest valid time before index known_at
        last_start = -1
        kinds = {}
        for i in [i for i, r in enumerate(events) if r.kind != "step"]:
            event = events[i]
            kinds[event.kind] = i
            if event.kind == "start":
                before = _time_before(events, i, known_at, known_t)
                self._take_start(event, before)
                t = timestamp(event.t)
                known_at, known_t, last_start = i + 1, t if t is not None else before, i
            elif event.kind == "eval":
                self._take_metrics(event, EVAL_METRICS)
                self.metric_name = _name(event.metric) or self.metric_name
        self.last_t = _time_before(events, len(events), known_at, known_t)
        self._take_steps(events, last_start)
        self.last_progress_t = next(
            (t for r in reversed(events) if r.kind in PROGRESS_KINDS
             and (t := timestamp(r.t)) is not None), self.last_progress_t)
        for kind, attr in (("end", "end"), ("checkpoint", "last_checkpoint")):
            if kind in kinds:
                whole = latest(kind)
                setattr(self, attr, whole if whole is not None
                        else msgspec.structs.asdict(events[kinds[kind]]))
        self._take_reached(events, kinds)

    def _take_reached(self, events: list[EventFields], kinds: dict[str, int]) -> None:
        """A checkpoint or end after the last step event holds the step the run got to (a
        run stopped at step 111 logged its last step at 110): the step shown is that one."""
        marker = max((kinds[k] for k in ("checkpoint", "end") if k in kinds), default=-1)
        if marker < 0 or any(r.kind == "step" for r in events[marker + 1:]):
            return
        step = count(events[marker].step)
        if step is not None and step > self.step:
            self.step = step

    def _take_start(self, event: EventFields, last_t: float | None) -> None:
        if self.segment_start_t is not None and last_t is not None:
            self.closed_segments_s += max(0.0, last_t - self.segment_start_t)
        t = timestamp(event.t)
        if t is not None:
            self.segment_start_t = t
            if self.first_start_t is None:
                self.first_start_t = t
        total = count(event.steps_total)
        if total:
            self.steps_total = total
        if isinstance(event.environment, dict):
            self.environment = event.environment
        self.mem_estimate_gib = finite(event.mem_estimate_gib)
        self.recent_steps.clear()

    def _take_metrics(self, event: EventFields, names: tuple[str, ...]) -> list[str]:
        """Keep each metric the event holds a number for (NaN and inf included); the names
        it holds none for (missing, null, text) are returned."""
        missing = []
        for name in names:
            value = measure(getattr(event, name))
            if value is None:
                missing.append(name)
            else:
                self.metrics[name] = value
        return missing

    def _take_step_metrics(self, newest_first: Iterable[Any], names: tuple[str, ...]
                           ) -> tuple[str, ...]:
        """The latest number of each step metric, from step records newest first; the names
        none of them holds a number for are returned."""
        missing = names
        for event in newest_first:
            missing = self._take_metrics(event, missing)
            if not missing:
                break
        return tuple(missing)

    def _take_steps(self, events: list[EventFields], last_start: int) -> None:
        """The latest valid step number, and the rate window after the last start, scanning
        backwards (usually only the last few events)."""
        need_step, recent = True, []
        for i in range(len(events) - 1, -1, -1):
            event = events[i]
            if event.kind != "step":
                continue
            step = count(event.step)
            if need_step and step is not None:
                self.step, need_step = step, False
            if i > last_start and len(recent) < RATE_WINDOW and step is not None:
                t = timestamp(event.t)
                if t is not None:
                    recent.append((t, step))
            if not need_step and (len(recent) == RATE_WINDOW or i < last_start):
                break
        self.recent_steps.extend(reversed(recent))

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

    def shown_times(self, running: bool, now: float) -> tuple[float | None, float | None]:
        """(elapsed, ETA) as every view shows them (runs list, monitor, `ls`): elapsed over the
        launches' running time only, running on to `now` while alive; the ETA only for a
        running run that is not stalled."""
        eta = self.eta_s(now) if running and self.stalled_s(now) is None else None
        return self.elapsed_s(now if running else None), eta

    def stalled_s(self, now: float) -> float | None:
        """Seconds without progress, when that is far beyond this run's pace (runs/stall.py)."""
        return stalled_for([t for t, _ in self.recent_steps], self.last_progress_t, now)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["recent_steps"] = [list(pair) for pair in self.recent_steps]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventSummary:
        """A summary from the disk cache, each value checked like an event's (the file may have
        been edited or damaged)."""
        def whole(name: str) -> dict[str, Any] | None:
            value = data.get(name)
            return value if isinstance(value, dict) else None
        summary = cls(
            first_start_t=timestamp(data.get("first_start_t")),
            segment_start_t=timestamp(data.get("segment_start_t")),
            closed_segments_s=finite(data.get("closed_segments_s")) or 0.0,
            last_t=timestamp(data.get("last_t")),
            last_progress_t=timestamp(data.get("last_progress_t")),
            steps_total=count(data.get("steps_total")) or None, step=count(data.get("step")) or 0,
            metrics={name: value for name, stored in (whole("metrics") or {}).items()
                     if name in METRIC_NAMES and (value := measure(stored)) is not None},
            metric_name=_name(data.get("metric_name")),
            mem_estimate_gib=finite(data.get("mem_estimate_gib")),
            last_checkpoint=whole("last_checkpoint"), end=whole("end"),
            events=count(data.get("events")) or 0)
        pairs = data.get("recent_steps")
        for pair in pairs if isinstance(pairs, list) else []:
            if isinstance(pair, list) and len(pair) == 2:
                t, step = timestamp(pair[0]), count(pair[1])
                if t is not None and step is not None:
                    summary.recent_steps.append((t, step))
        return summary


def _name(value: Any) -> str | None:
    """A metric's name as events and the cache hold it: a short text, else None."""
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


def _time_before(events: list[EventFields], index: int, known_at: int,
                 known_t: float | None) -> float | None:
    """The latest valid event time before `index`, looking back no further than `known_at`
    (before which it is `known_t`): each event is looked at once per block."""
    for i in range(index - 1, known_at - 1, -1):
        t = timestamp(events[i].t)
        if t is not None:
            return t
    return known_t


def _fields_or_none(line: bytes) -> EventFields | None:
    return _decoded_or_none(_DECODER, line)


def _decoded_or_none(decoder: msgspec.json.Decoder, line: bytes) -> Any:
    try:
        return decoder.decode(line) if line.strip() else None
    except msgspec.DecodeError:
        return None


def _last_step_lines(block: bytes, limit: int = TAIL_STEP_LINES) -> Iterator[Any]:
    """The step metrics of the block's last `limit` step lines, newest first (a look at no
    more than 4 x limit lines, whatever their kind)."""
    end = len(block)
    for _ in range(4 * limit):
        if end <= 0 or limit <= 0:
            return
        start = block.rfind(b"\n", 0, end) + 1
        event = _decoded_or_none(_STEP_DECODER, block[start:end])
        end = start - 1
        if event is not None and event.kind == "step":
            limit -= 1
            yield event


@functools.cache
def _narrow_decoder(names: tuple[str, ...]) -> msgspec.json.Decoder:
    """A decoder of just these step metrics (and the kind), to look through a whole block."""
    return msgspec.json.Decoder(reader_struct("StepMetricsLeft", others=("kind", *names)))


def _latest_in_block(block: bytes, kind: str) -> dict[str, Any] | None:
    """The last line of `block` that is an event of this kind, decoded whole: found by its
    kind's text first (cheap), else by decoding every line (a kind spelled with escapes)."""
    needle, end = f'"{kind}"'.encode(), len(block)
    while (at := block.rfind(needle, 0, end)) >= 0:
        start = block.rfind(b"\n", 0, at) + 1
        stop = block.find(b"\n", at)
        event = _dict_or_none(block[start:stop if stop >= 0 else len(block)])
        if event is not None and event.get("kind") == kind:
            return event
        end = start
    for line in reversed(block.split(b"\n")):
        event = _dict_or_none(line)
        if event is not None and event.get("kind") == kind:
            return event
    return None


def _dict_or_none(line: bytes) -> dict[str, Any] | None:
    try:
        event = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return None
    return event if type(event) is dict else None


class SummaryCache:
    """One incremental reader per events file, so repeated listings read only new lines.

    For big files the reader's position and the summary are also kept on disk beside the
    events, so a new process (`tui-tune ls`) reads only what was appended since.
    """

    def __init__(self, persist: bool = True) -> None:
        self.persist = persist
        self._entries: dict[Path, tuple[tuple[int, int], EventFollower, EventSummary]] = {}
        self._lock = threading.Lock()  # the app reads statuses from more than one thread

    def summary(self, events_path: Path) -> EventSummary:
        with self._lock:
            return self._summary(Path(events_path))

    def _summary(self, events_path: Path) -> EventSummary:
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
        restarts, read = follower.restarts, False
        for block in follower.poll_blocks():
            if follower.restarts != restarts:  # truncated or replaced: fold the new file afresh
                restarts, summary = follower.restarts, EventSummary()
            summary.update_block(block)
            read = True
        follower.release()
        self._entries[events_path] = (key, follower, summary)
        if read and self.persist and stat.st_size >= DISK_CACHE_MIN_BYTES:
            self._save(events_path, follower, summary)
        return summary

    def _load(self, events_path: Path) -> tuple[EventFollower, EventSummary]:
        stored = read_json(_disk_cache(events_path)) if self.persist else None
        if stored and stored.get("version") == CACHE_VERSION:
            follower = EventFollower.at_position(events_path, stored.get("position") or {})
            summary = stored.get("summary")
            if follower.resumed and isinstance(summary, dict):
                return follower, EventSummary.from_dict(summary)
        return EventFollower(events_path), EventSummary()

    def _save(self, events_path: Path, follower: EventFollower, summary: EventSummary) -> None:
        try:
            write_json_atomic(_disk_cache(events_path), {
                "version": CACHE_VERSION, "position": follower.position(),
                "summary": summary.to_dict()})
        except OSError:
            pass  # a read-only runs folder just means no cache


def _disk_cache(events_path: Path) -> Path:
    """The cached summary beside the events (`tui-tune ls` in a new process reads it)."""
    return RunDir(events_path.parent).summary_cache


_SHARED = SummaryCache()


def shared_summary(events_path: Path) -> EventSummary:
    """A summary from the cache this process shares: repeated status checks of one run (a
    `logs -f` loop, a sweep runner, a stop) read only new lines, even where no disk cache can
    be written (a read-only runs folder)."""
    return _SHARED.summary(events_path)
