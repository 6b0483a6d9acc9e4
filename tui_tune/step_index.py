"""A run's step metrics as fixed-size binary records beside events.jsonl (`.step-index`).

Opening a 1,000,000-step history by decoding its JSON lines costs seconds (msgspec at about a
microsecond a line, then numpy columns); reading the same numbers from fixed-size records
costs a tenth of a second. So the worker's EventWriter appends, for every step line it writes,
one record: where the line starts and ends in events.jsonl and its metric values exactly as a
reader decodes them from that line (`Wire` numbers, "nan"/"inf" spelled out, null as NaN).

events.jsonl stays the record: the index is derived, deletable (only speed is lost) and
never trusted blindly. A reader takes the records only where their byte ranges rise through
the file and spot lines decoded from events.jsonl hold the records' values; the bytes between
records (start, evals, samples, logs, checkpoints) are read from events.jsonl, and the first
stretch there that holds a step line ends the usable part (see tui/history_cache.py).

Layout: one line of JSON, {"version": 1, "columns": [...]}, then records of
2 + len(columns) little-endian float64: line start, line end, then the columns' values. The
columns are the step metrics (events.METRICS) the first step line holds; a later step line
with a metric outside them ends the indexing (the reader decodes from there).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from tui_tune.events import METRICS, reader_struct
from tui_tune.rundir import RunDir

VERSION = 1
STEP_COLUMNS = ("step", *METRICS["step"], "t")  # what a record may hold, in this order
_STEP_WIRE = msgspec.json.Decoder(reader_struct("IndexedStep", STEP_COLUMNS))
SPOT_CHECKS = 16  # lines decoded again from events.jsonl before the records are trusted
READ_ROWS = 1 << 16  # records read at a time (peak memory: the columns plus one block)


def wire_float(value: Any) -> float:
    """A `Wire` value as the monitor's columns hold it (numbers, "nan"/"inf" and numeric
    text as floats; null, absent and anything else as NaN)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def line_values(line: bytes, columns: Sequence[str]) -> list[float] | None:
    """The columns' values of one step line, decoded as readers decode it (None: a line a
    reader would not decode as an event)."""
    try:
        event = _STEP_WIRE.decode(line)
    except msgspec.DecodeError:
        return None
    return [wire_float(getattr(event, name)) for name in columns]


class StepIndexWriter:
    """Appends a record per step line; used by events.EventWriter after each flush.

    Never fails the caller: an index we cannot write (disk full, a read-only folder) or a
    step line it cannot hold just stops the indexing; readers decode the rest."""

    def __init__(self, events: Path):
        self.path = RunDir(Path(events).parent).step_index
        self.events = Path(events)
        self.columns: tuple[str, ...] | None = None
        self.stopped = False
        self._handle: Any = None

    def add(self, lines: Sequence[tuple[bytes, dict[str, Any] | None]], end: int) -> None:
        """`lines` (the line's bytes, the event for a step line else None) were just written
        as one block ending at byte `end` of events.jsonl."""
        if self.stopped or not any(event is not None for _, event in lines):
            return
        try:
            records = self._records(lines, end)
            if records:
                handle = self._open()
                handle.write(np.asarray(records, dtype="<f8").tobytes())
                handle.flush()
        except (OSError, ValueError):
            self.stopped = True
        if self.stopped:
            self.close()

    def _records(self, lines: Sequence[tuple[bytes, dict[str, Any] | None]], end: int
                 ) -> list[list[float]]:
        position = end - sum(len(data) for data, _ in lines)
        records = []
        for data, event in lines:
            start, position = position, position + len(data)
            if event is None:
                continue
            columns = self.columns or self._columns_of(event)
            values = line_values(data, columns)
            if values is None or not set(event).intersection(STEP_COLUMNS) <= set(columns):
                self.stopped = True  # a metric the records have no room for (or a line no
                break  # reader decodes): the records end here, readers decode the rest
            self.columns = columns
            records.append([float(start), float(position), *values])
        return records

    @staticmethod
    def _columns_of(event: dict[str, Any]) -> tuple[str, ...]:
        return tuple(name for name in STEP_COLUMNS if name == "step" or name in event)

    def _open(self) -> Any:
        """The index file, opened for appending once: an existing one is continued only if
        it holds the same columns and ends where events.jsonl still has its lines (a resume);
        anything else is replaced."""
        if self._handle is not None:
            return self._handle
        existing = read_header(self.path)
        if existing is not None and existing[0] == self.columns and \
                _last_record_agrees(self.path, existing, self.events):
            self._handle = open(self.path, "ab")  # noqa: SIM115 (lives as long as the writer)
            return self._handle
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "wb") as handle:
            handle.write(_header(self.columns or ()))
        os.replace(temporary, self.path)
        self._handle = open(self.path, "ab")  # noqa: SIM115
        return self._handle

    def close(self) -> None:
        if self._handle is not None:
            try:
                self._handle.close()
            except OSError:
                pass
            self._handle = None


def _header(columns: Sequence[str]) -> bytes:
    return json.dumps({"version": VERSION, "columns": list(columns)}).encode() + b"\n"


def read_header(path: Path) -> tuple[tuple[str, ...], int] | None:
    """(columns, where the records begin), or None: no index, or not one we can read."""
    try:
        with open(path, "rb") as handle:
            line = handle.readline(1 << 16)
        meta = json.loads(line)
        columns = tuple(str(name) for name in meta["columns"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if meta.get("version") != VERSION or not line.endswith(b"\n") or "step" not in columns \
            or not set(columns) <= set(STEP_COLUMNS) or len(set(columns)) != len(columns):
        return None
    return columns, len(line)


def _last_record_agrees(path: Path, header: tuple[tuple[str, ...], int], events: Path) -> bool:
    """Does events.jsonl still hold the last whole record's line, with its values (a resumed
    run's file), rather than another file in its place? An index without records agrees."""
    columns, begin = header
    width = 2 + len(columns)
    rows = (path.stat().st_size - begin) // (8 * width)
    if rows <= 0:
        return True
    try:
        with open(path, "rb") as handle:
            handle.seek(begin + (rows - 1) * width * 8)
            record = np.frombuffer(handle.read(width * 8), dtype="<f8").tolist()
        with open(events, "rb") as handle:
            return _line_agrees(handle, int(record[0]), int(record[1]), columns, record[2:])
    except (OSError, ValueError, OverflowError, IndexError):
        return False  # not records we can follow: start the index anew


def _line_agrees(handle: Any, start: int, end: int, columns: Sequence[str],
                 expected: Sequence[float]) -> bool:
    """Is events.jsonl's [start, end) one whole line (a line ends before it) holding the
    `expected` values of `columns`?"""
    handle.seek(max(0, start - 1))
    data = handle.read(end - start + (1 if start else 0))
    line = data[1:] if start else data
    if (start and data[:1] != b"\n") or not line.endswith(b"\n"):
        return False
    values = line_values(line, columns)
    return values is not None and _same(values, expected)


def _same(values: Sequence[float], expected: Sequence[float]) -> bool:
    """Equal value by value, NaN equal to NaN."""
    return len(values) == len(expected) and all(
        a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(values, expected, strict=True))


@dataclass
class IndexedSteps:
    """The usable records of a step index: the step columns (raw values, as decoded) and the
    byte ranges of events.jsonl between and before them, which hold every other line."""

    store: dict[str, np.ndarray]  # each column, its first `rows` values filled (room after)
    starts: np.ndarray  # each record's line start and end in events.jsonl
    ends: np.ndarray

    def values(self, name: str) -> np.ndarray:
        return self.store[name][:self.rows]

    @property
    def rows(self) -> int:
        return int(self.ends.size)

    @property
    def covered(self) -> int:
        """Bytes of events.jsonl up to the end of the last record's line."""
        return int(self.ends[-1]) if self.ends.size else 0

    def gaps(self) -> list[tuple[int, int]]:
        """(start, end) of each stretch before or between records's lines (empty ones left
        out), in file order."""
        before = np.concatenate(([0], self.ends[:-1]))
        keep = self.starts > before
        return list(zip(before[keep].astype(np.int64).tolist(),
                        self.starts[keep].astype(np.int64).tolist(), strict=True))

    def head(self, rows: int) -> IndexedSteps:
        """The first `rows` records."""
        return IndexedSteps(self.store, self.starts[:rows], self.ends[:rows])


def read_step_index(run_dir: Path, stop: int, room: int = 0) -> IndexedSteps | None:
    """The records whose lines end by byte `stop` of events.jsonl, checked against it; None
    when there is no index or it does not agree with the file. Each column has room for
    `room` more values after the records' (a live run's columns grow in place)."""
    paths = RunDir(run_dir)
    header = read_header(paths.step_index)
    if header is None:
        return None
    names, begin = header
    width = 2 + len(names)
    try:
        with open(paths.step_index, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            rows = (handle.tell() - begin) // (8 * width)
            if rows <= 0:
                return None
            starts, ends = np.empty(rows), np.empty(rows)
            columns = {name: np.empty(rows + room) for name in names}
            handle.seek(begin)
            for first in range(0, rows, READ_ROWS):
                done = min(rows, first + READ_ROWS)
                block = np.fromfile(handle, dtype="<f8", count=(done - first) * width)
                if block.size < (done - first) * width:
                    return None  # shorter than it was a moment ago: replaced meanwhile
                block = block.reshape(-1, width)
                starts[first:done], ends[first:done] = block[:, 0], block[:, 1]
                for position, name in enumerate(names, start=2):
                    columns[name][first:done] = block[:, position]
    except (OSError, ValueError):
        return None
    usable = _rising_part(starts, ends, stop)
    if not usable:
        return None
    index = IndexedSteps(columns, starts[:usable], ends[:usable])
    if not _spot_lines_agree(paths.events, index, names):
        return None
    return index


def _rising_part(starts: np.ndarray, ends: np.ndarray, stop: int) -> int:
    """How many leading records are well-formed: lines of positive length, each starting at
    or after the one before ends, all ending by `stop`."""
    previous = np.concatenate(([0.0], ends[:-1]))
    good = (starts >= previous) & (ends > starts) & (ends <= stop) & (starts == np.floor(starts))
    bad = np.flatnonzero(~good)
    return int(bad[0]) if bad.size else int(starts.size)


def _spot_lines_agree(events: Path, index: IndexedSteps, names: Sequence[str]) -> bool:
    """Do some records' lines (the first, the last, evenly between) hold the records' values
    and start and end lines? A replaced or rewritten events.jsonl fails this."""
    rows = index.rows
    picks = sorted({int(i) for i in np.linspace(0, rows - 1, min(rows, SPOT_CHECKS))})
    try:
        with open(events, "rb") as handle:
            return all(_line_agrees(handle, int(index.starts[row]), int(index.ends[row]), names,
                                    [float(index.store[name][row]) for name in names])
                       for row in picks)
    except OSError:
        return False
