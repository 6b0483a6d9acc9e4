"""A run's events as numpy columns, parsed in bulk so a 1,000,000-event run opens in about a second.

msgspec decodes whole chunks of events.jsonl into small structs holding only the fields the
app shows (event_decoding.py); numbers then go into growable float64 arrays (column.py). Garbage lines are skipped (a chunk
that fails to decode falls back to line by line). Well-formed events with odd values are typed
here, once: a step or eval without a usable step number is left out (it has no place on the
x axis), and the rarer kinds keep only values of the type the screens expect (event_values).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np

from tui_tune.rundir import RunDir
from tui_tune.runs.event_values import (
    MAX_COUNT,
    MAX_MAGNITUDE,
    count,
    finite,
    measure,
    text,
    text_lines,
    timestamp,
)
from tui_tune.runs.follow import EventFollower
from tui_tune.tui.column import NAN, Column
from tui_tune.tui.confusion import Confusion
from tui_tune.tui.event_decoding import (
    CHUNK_BYTES,
    EVAL_COLUMNS,
    STEP_COLUMNS,
    LeanDecoder,
    RawEvent,
    decode_chunk,
)


@dataclass
class Sample:
    """One sample event. Labelling runs add the structured fields (events.Sample), each
    None where the event holds nothing of the expected type."""

    step: int
    prompt: str
    generation: str
    reference: str
    predicted: str | float | list | None = None  # a label, values, labels or tags
    truth: str | float | list | None = None
    words: list[str] | None = None  # token classification: one tag per word
    probabilities: dict[str, float] | None = None  # classification: class -> probability
    context: str | None = None  # extractive QA: the context, and the predicted and true
    span: tuple[int, int] | None = None  # answers' [start, end) characters in it (None: none)
    truth_span: tuple[int, int] | None = None
    judge_score: float | None = None  # metric llm_judge: the judge's score and its reason
    judge_reason: str | None = None
    rejected: str | None = None  # dpo: the rejected answer (reference is the chosen one)
    completions: list[tuple[str, float | None]] | None = None  # grpo: (text, reward), a few
    images: list[str] | None = None  # multimodal: the row's image files (absolute paths)


@dataclass
class RunSeries:
    """Everything the monitor shows about one run, built from its events."""

    steps: dict[str, Column] = field(default_factory=lambda: {c: Column() for c in STEP_COLUMNS})
    evals: dict[str, Column] = field(default_factory=lambda: {c: Column(64)
                                                              for c in EVAL_COLUMNS})
    samples: list[Sample] = field(default_factory=list)
    logs: deque = field(default_factory=lambda: deque(maxlen=500))
    checkpoints: list[tuple[int, str, str]] = field(default_factory=list)
    start: dict[str, Any] = field(default_factory=dict)
    end: dict[str, Any] = field(default_factory=dict)
    metric_name: str = ""
    confusion: Confusion | None = None  # the latest eval's (classification runs)
    exact: tuple[int, int] | None = None  # the latest eval's answers exactly right, of how many
    events: int = 0
    step_lines: int = 0  # step events read, placed on the x axis or not (history_cache)
    last_start_t: float | None = None  # the latest `start` (a resume starts a new segment)
    environment: dict[str, Any] = field(default_factory=dict)  # the latest start's (events.py)
    # the step of a checkpoint or end event after the last step event (a run stopped at step
    # 111 logs its last step at 110, with log_every_steps = 10); None once steps follow
    reached_step: int | None = None

    def step_values(self, name: str) -> np.ndarray:
        return self.steps[name].values

    def eval_values(self, name: str) -> np.ndarray:
        return self.evals[name].values

    @property
    def last_step(self) -> int:
        """The step the run got to: its last logged step, or the step of a later checkpoint
        or end (what a stop saved, and what resume goes on from)."""
        steps = self.step_values("step")
        logged = int(steps[-1]) if steps.size else 0
        return max(logged, self.reached_step) if self.reached_step is not None else logged

    def add(self, events: list[RawEvent], steps_too: bool = True) -> None:
        """Append decoded events; numeric columns in bulk, the rare kinds one by one.
        `steps_too=False`: the step columns come from elsewhere (history_cache)."""
        self.events += len(events)
        steps = [e for e in events if e.kind == "step"]
        self.step_lines += len(steps)
        if steps and steps_too:
            _extend_placed(self.steps, steps)
        evals = [e for e in events if e.kind == "eval"]
        if evals and _extend_placed(self.evals, evals):
            self.metric_name = text(evals[-1].metric) or self.metric_name
            self.confusion = next(
                (matrix for e in reversed(evals) if e.confusion is not None
                 and (matrix := Confusion.read(e.step, e.confusion, e.labels))), self.confusion)
            self.exact = next(((right, total) for e in reversed(evals)
                               if (right := count(e.exact_count)) is not None
                               and (total := count(e.exact_total)) and right <= total),
                              self.exact)
        if len(steps) + len(evals) < len(events):
            for event in [e for e in events if e.kind not in ("step", "eval")]:
                self._add_other(event)
        self._note_reached(events)

    def _note_reached(self, events: list[RawEvent]) -> None:
        for event in reversed(events):
            if event.kind == "step":
                self.reached_step = None
                return
            if event.kind in ("checkpoint", "end") and (step := count(event.step)) is not None:
                self.reached_step = step
                return

    def _add_other(self, e: RawEvent) -> None:
        if e.kind == "sample":
            self.samples.append(_sample(e))
        elif e.kind == "log":
            self.logs.append((text(e.level) or "info", text(e.message) or ""))
        elif e.kind == "checkpoint":
            self.checkpoints.append((count(e.step) or 0, text(e.path) or "",
                                     text(e.reason) or ""))
        elif e.kind == "start":
            self.last_start_t = timestamp(e.t)
            self.start = self.start or _start_facts(e)
            if isinstance(e.environment, dict):
                self.environment = e.environment
        elif e.kind == "end":
            self.end = {"status": text(e.status), "error_type": text(e.error_type),
                        "message": text(e.message), "traceback": text_lines(e.traceback),
                        "t": timestamp(e.t), "mem_peak_gib": finite(e.mem_peak_gib)}


    def extend_from(self, newer: RunSeries) -> None:
        """Append a later part of the same run (the live tail, or the recent part loaded first)."""
        for name in STEP_COLUMNS:
            self.steps[name].extend(newer.steps[name].values)
        for name in EVAL_COLUMNS:
            self.evals[name].extend(newer.evals[name].values)
        self.samples.extend(newer.samples)
        self.logs.extend(newer.logs)
        self.checkpoints.extend(newer.checkpoints)
        self.start = self.start or newer.start
        self.end = newer.end or self.end
        self.last_start_t = newer.last_start_t or self.last_start_t
        self.environment = newer.environment or self.environment
        self.metric_name = newer.metric_name or self.metric_name
        self.confusion = newer.confusion or self.confusion
        self.exact = newer.exact or self.exact
        self.events += newer.events
        self.step_lines += newer.step_lines
        if newer.steps["step"].size or newer.reached_step is not None:
            self.reached_step = newer.reached_step


def _sample(e: RawEvent) -> Sample:
    """A sample event's fields, the structured ones kept only where they hold what
    events.Sample says (a hand-written line may hold anything)."""
    words = e.words if isinstance(e.words, list) else None
    probabilities = e.probabilities if isinstance(e.probabilities, dict) else {}
    probabilities = {str(k): p for k, v in probabilities.items()
                     if (p := measure(v)) is not None} or None
    context = e.context if isinstance(e.context, str) else None
    return Sample(count(e.step) or 0, text(e.prompt) or "", text(e.generation) or "",
                  text(e.reference) or "", _label(e.predicted), _label(e.truth),
                  [text(w) or "" for w in words] if words is not None else None, probabilities,
                  context, _span(e.span, context), _span(e.truth_span, context),
                  measure(e.judge_score), text(e.judge_reason), text(e.rejected),
                  _completions(e.completions), _images(e.images))


def _images(value: Any) -> list[str] | None:
    """A multimodal row's image paths: the texts of a list (one text is taken as one path;
    numbers and other values are no paths and are left out)."""
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, str) and v.strip()] or None


def _completions(value: Any) -> list[tuple[str, float | None]] | None:
    """grpo's sampled completions: {text, reward} objects (others are left out)."""
    if not isinstance(value, list):
        return None
    return [(text(c.get("text")) or "", measure(c.get("reward"))) for c in value
            if isinstance(c, dict)] or None


def _span(value: Any, context: str | None) -> tuple[int, int] | None:
    """[start, end) characters of the context; None unless it is one that fits in it."""
    if context is None or not isinstance(value, list) or len(value) != 2:
        return None
    start, end = (count(v) for v in value)
    if start is None or end is None or not start <= end <= len(context):
        return None
    return start, end


def _label(value: Any) -> str | float | list | None:
    """A predicted or true label, value, or list of them (labels as text, numbers as float)."""
    if isinstance(value, list):
        return [_label(item) for item in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return text(value)


def _start_facts(e: RawEvent) -> dict[str, Any]:
    """The first start event's facts, each of the type the header and run info expect."""
    devices = e.devices if isinstance(e.devices, list) else [] if e.devices is None \
        else [e.devices]
    return {"run_id": text(e.run_id), "steps_total": count(e.steps_total) or None,
            "world_size": count(e.world_size), "devices": [text(d) for d in devices],
            "method": text(e.method), "mem_estimate_gib": finite(e.mem_estimate_gib),
            **{k: count(getattr(e, k)) for k in ("params_total", "params_trainable",
                                                 "train_rows", "val_rows")},
            "t": timestamp(e.t)}


def placed(steps: np.ndarray) -> np.ndarray:
    """Which events have a place on the x axis: a step number in 0 .. MAX_COUNT (not NaN)."""
    return (steps >= 0) & (steps <= MAX_COUNT)


def clamp_magnitudes(values: np.ndarray) -> np.ndarray:
    """`values` with magnitudes beyond MAX_MAGNITUDE made +-inf, in place: a chart spanning
    -1e308..1e308 overflows."""
    with np.errstate(invalid="ignore"):
        huge = np.abs(values) > MAX_MAGNITUDE
    if huge.any():
        values[huge] = np.copysign(np.inf, values[huge])
    return values


def _extend_placed(columns: dict[str, Column], events: list[RawEvent]) -> int:
    """Append the events that have a step number (0 .. MAX_COUNT) to the columns; how many."""
    held = set(type(events[0]).__struct_fields__)  # a lean step struct: the keys seen
    values = {name: _column(events, name) for name in columns if name in held}
    on_axis = placed(values["step"])
    placed_count = int(on_axis.sum())
    if not on_axis.all():
        values = {name: column[on_axis] for name, column in values.items()}
    for name, column in columns.items():
        value = values.get(name)
        if value is not None and (column.allocated or not np.isnan(value).all()):
            column.extend(value)
        else:  # no reading of it so far: nothing stored
            column.extend_nan(placed_count)
    return placed_count


def _num(value: Any, default: float = NAN) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _column(events: list[RawEvent], name: str) -> np.ndarray:
    """One attribute of every event as float64 (fromiter: ~40% faster than a list first),
    magnitudes clamped (clamp_magnitudes)."""
    try:
        values = np.fromiter(map(attrgetter(name), events), np.float64, len(events))
    except (TypeError, ValueError):  # a stray non-number string
        values = np.array([_num(getattr(e, name)) for e in events], dtype=np.float64)
    return clamp_magnitudes(values)



def load_run(path: Path, follower: EventFollower | None = None
             ) -> tuple[RunSeries, EventFollower]:
    """Every event written so far, read block by block (memory stays flat), and the follower,
    which can go on from there."""
    follower = follower or EventFollower(RunDir(path).events)
    return fold_new(follower)[0], follower


def fold_new(follower: EventFollower) -> tuple[RunSeries, bool]:
    """(the events appended since the last call, restarted?): after a truncation or
    replacement the series holds the new file's events, from its start."""
    series, before = RunSeries(), follower.restarts
    restarts = before
    for block in follower.poll_blocks():
        if follower.restarts != restarts:  # what came before belongs to the old file
            series, restarts = RunSeries(), follower.restarts
        series.add(decode_chunk(block))
    return series, follower.restarts != before


def read_recent(path: Path, max_bytes: int = CHUNK_BYTES) -> tuple[RunSeries, int, int]:
    """The last `max_bytes` of events.jsonl: (series, where that part starts, where it ends).

    Lets a big run show its recent curve at once while the older history loads.
    """
    events = RunDir(path).events
    try:
        size = events.stat().st_size
    except FileNotFoundError:
        return RunSeries(), 0, 0
    start = max(0, size - max_bytes)
    with open(events, "rb") as handle:
        handle.seek(start)
        data = handle.read(size - start)
    if start > 0:
        skip = data.find(b"\n") + 1
        data, start = data[skip:], start + skip
    end = start + data.rfind(b"\n") + 1
    series = RunSeries()
    series.add(decode_chunk(data[:end - start]))
    if start > 0:  # the start event (steps total, devices) is the file's first line
        with open(events, "rb") as handle:
            head = handle.read(64 << 10)
        first = [e for e in decode_chunk(head[:head.rfind(b"\n") + 1]) if e.kind == "start"]
        if first:
            series._add_other(first[0])
    return series, start, end


def load_prefix(path: Path, stop: int, chunk_bytes: int = CHUNK_BYTES,
                pause_s: float = 0.0, start: int = 0) -> RunSeries:
    """Events in bytes `start` (a line's start) to `stop` (the older history, loaded after the
    recent part).

    `pause_s` sleeps between chunks: decoding holds the GIL, so a loader thread pauses to
    let the app thread draw.
    """
    series, decoder = RunSeries(), LeanDecoder()
    with open(RunDir(path).events, "rb") as handle:
        handle.seek(start)
        done = start
        while done < stop:
            if pause_s and done > start:
                time.sleep(pause_s)
            data = handle.read(min(chunk_bytes, stop - done))
            if not data:
                break
            cut = data.rfind(b"\n") + 1 if done + len(data) < stop else len(data)
            handle.seek(done + cut)
            events = decoder.decode(data[:cut])
            if done == start and cut:  # about as many lines ahead as this chunk had per byte
                for column in series.steps.values():
                    column.reserve(int(len(events) * (stop - start) / cut * 1.02) + 1024)
            done += cut
            series.add(events)
    return series

