"""A long run's whole history without decoding every step line: from the worker's step index
(step_index.py) where it agrees with events.jsonl, else from the step columns the monitor
keeps in `.history-cache` after decoding a long history once.

The history cache is for runs without a usable index (written by hand, by an older tui-tune,
or an index cut short).

Decoding 1,000,000 step lines costs seconds (msgspec structs, then numpy columns); reading the
same columns from `.history-cache` beside the events costs a tenth of a second. Only the step
columns are kept: the rest of the covered bytes (evals, samples, logs, checkpoints: a few
hundred lines) is read again at every open, step lines decoded into an empty struct (a scan
several times faster than decoding them). The cache is trusted only where it matches the file:
the bytes it covers are still there (a hash of their head and of their end), and the scan
counts as many step lines as the cache holds. Anything else (no cache, an older file, a
folder we cannot write) is the plain decode.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from tui_tune.rundir import RunDir
from tui_tune.step_index import IndexedSteps, read_step_index
from tui_tune.tui.event_decoding import (
    CHUNK_BYTES,
    OTHER_KINDS,
    STEP_COLUMNS,
    decode_chunk,
    union_of,
)
from tui_tune.tui.run_data import RunSeries, clamp_magnitudes, load_prefix, placed

MIN_BYTES = 64 << 20  # smaller histories decode in well under a second: no cache
PROBE_BYTES = 64 << 10
GROWTH = 1 << 16  # room after a cached history's columns: the recent part and the live tail
VERSION = 1
# step lines as nothing but their kind: the scan that reads a cached history's other kinds
_SeenStep = msgspec.defstruct("SeenStep", [], tag="step", tag_field="kind",
                              namespace={"kind": "step"}, gc=False)
_SCAN = msgspec.json.Decoder(union_of((_SeenStep, *OTHER_KINDS)))


def load_history(path: Path, stop: int, chunk_bytes: int = CHUNK_BYTES, pause_s: float = 0.0
                 ) -> tuple[RunSeries, Callable[[], None] | None]:
    """load_prefix(path, stop), from the cache where it covers a part of it, and what writes
    the cache for the next open (None: not worth one). Call that after showing the history:
    the series may grow meanwhile, the cache keeps what was read here."""
    cached = _from_index(path, stop) or _read(path, stop)
    if cached is None:
        series, covered = load_prefix(path, stop, chunk_bytes, pause_s), 0
    else:
        series, covered = cached
        if covered < stop:
            series.extend_from(load_prefix(path, stop, chunk_bytes, pause_s, start=covered))
    if stop - covered < MIN_BYTES:
        return series, None
    columns = {name: column.values for name, column in series.steps.items()
               if column.allocated}  # views: later appends never write into them
    meta = {"version": VERSION, "stop": stop, "rows": series.steps["step"].size,
            "step_lines": series.step_lines}
    return series, lambda: _write(path, meta, columns)


def _from_index(path: Path, stop: int) -> tuple[RunSeries, int] | None:
    """(the series of the bytes the step index covers, how many bytes that is), or None:
    no index, or none that agrees with the file. Steps come from the records, every other
    line from the stretches between them."""
    index = read_step_index(path, stop, room=GROWTH)
    if index is None:
        return None
    others, index = _lines_between(path, index)
    if not index.rows:
        return None
    series = RunSeries()
    series.add(others, steps_too=False)
    on_axis = placed(index.values("step"))  # as run_data places decoded steps
    rows = int(on_axis.sum())
    for name, column in series.steps.items():
        values = index.values(name) if name in index.store else None
        if values is None or np.isnan(values).all():
            column.extend_nan(rows)
            continue
        if on_axis.all():
            store = index.store[name]  # read with room for the recent part and the live tail
        else:
            store = np.empty(rows + GROWTH)
            store[:rows] = values[on_axis]
        clamp_magnitudes(store[:rows])  # (a view: clamped in place)
        column.adopt(store, rows)
    series.events += index.rows
    series.step_lines += index.rows
    series.reached_step = None  # the last line covered is a step
    return series, index.covered


def _lines_between(path: Path, index: IndexedSteps) -> tuple[list[Any], IndexedSteps]:
    """The events in the stretches before and between the records' lines, and the records
    that stand: a stretch holding a step line (written without a record: another writer, or
    indexing stopped and resumed) ends the usable records before it."""
    gaps = index.gaps()
    pieces = _read_ranges(RunDir(path).events, gaps)
    events = _scan_lines(b"".join(pieces))
    if not any(e.kind == "step" for e in events):
        return events, index
    kept: list[Any] = []
    for (start, _), piece in zip(gaps, pieces, strict=True):
        found = _scan_lines(piece)
        if any(e.kind == "step" for e in found):
            return kept, index.head(int(np.searchsorted(index.starts, start)))
        kept += found
    return kept, index  # not reached: some stretch held the step


def _read_ranges(events: Path, ranges: list[tuple[int, int]], block: int = 1 << 20
                 ) -> list[bytes]:
    """The bytes of each (start, end) range, in order: one read per block of the file, so
    many short stretches close together cost one read."""
    pieces: list[bytes] = []
    held, held_at = b"", 0
    with open(events, "rb") as handle:
        for start, end in ranges:
            if not (held_at <= start and end <= held_at + len(held)):
                handle.seek(start)
                held, held_at = handle.read(max(end - start, block)), start
            pieces.append(held[start - held_at:end - held_at])
    return pieces


def _scan_lines(data: bytes) -> list[Any]:
    """Events of whole lines, step lines decoded into an empty struct (only counted)."""
    try:
        return _SCAN.decode_lines(data)
    except msgspec.DecodeError:  # a torn or foreign line: the one-by-one way
        return decode_chunk(data)


def _write(path: Path, meta: dict[str, Any], columns: dict[str, np.ndarray]) -> None:
    """Write the cache atomically: a line of JSON (what follows), then each column's float64
    values (little-endian, no zip: reading them back is a plain copy). A folder we cannot
    write just means no cache."""
    target = RunDir(path).history_cache
    temporary = target.with_name(target.name + ".tmp")
    try:
        meta = {**meta, **_fingerprint(path, meta["stop"]), "columns": list(columns)}
        with open(temporary, "wb") as handle:
            handle.write(json.dumps(meta).encode() + b"\n")
            handle.flush()
            for values in columns.values():
                np.ascontiguousarray(values, dtype="<f8").tofile(handle)
        os.replace(temporary, target)
    except OSError:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass


def _read(path: Path, stop: int) -> tuple[RunSeries, int] | None:
    """(the series of the cached bytes, how many bytes that is), or None: no usable cache."""
    try:
        with open(RunDir(path).history_cache, "rb") as handle:
            meta = json.loads(handle.readline(1 << 16))
            covered, rows = int(meta["stop"]), int(meta["rows"])
            names = [str(name) for name in meta["columns"]]
            if (meta.get("version") != VERSION or not 0 < covered <= stop or rows < 0
                    or "step" not in names or not set(names) <= set(STEP_COLUMNS)
                    or _fingerprint(path, covered) != {k: meta.get(k) for k in ("head", "end")}):
                return None
            columns = {name: np.empty(rows + GROWTH, dtype="<f8") for name in names}
            for values in columns.values():  # straight into room for the live tail
                if handle.readinto(memoryview(values[:rows]).cast("B")) != rows * 8:
                    return None  # cut short: not what was written
            if handle.read(1):
                return None  # too long: not what was written
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    series = _scan(path, covered)
    if series is None or series.step_lines != meta.get("step_lines"):
        return None  # the same bytes at both ends, yet not the same lines: decode it all
    for name, column in series.steps.items():
        if name in columns:
            column.adopt(columns[name], rows)
        else:
            column.extend_nan(rows)
    return series, covered


def _scan(path: Path, stop: int) -> RunSeries | None:
    """Every event but the steps' values in the first `stop` bytes (which lines are steps is
    counted, and where checkpoints fall among them)."""
    series = RunSeries()
    with open(RunDir(path).events, "rb") as handle:
        done = 0
        while done < stop:
            data = handle.read(min(CHUNK_BYTES, stop - done))
            if not data:
                return None
            cut = data.rfind(b"\n") + 1 if done + len(data) < stop else len(data)
            handle.seek(done + cut)
            done += cut
            events = _scan_lines(data[:cut])
            others = [e for e in events if e.kind != "step"]  # one pass over a million
            series.add(others, steps_too=False)
            series.events += len(events) - len(others)
            series.step_lines += len(events) - len(others)
            series._note_reached(events)  # a step after the last checkpoint or end
    return series


def _fingerprint(path: Path, stop: int) -> dict[str, str]:
    """Hashes of the first and the last PROBE_BYTES of the first `stop` bytes."""
    with open(RunDir(path).events, "rb") as handle:
        head = handle.read(min(PROBE_BYTES, stop))
        handle.seek(max(0, stop - PROBE_BYTES))
        end = handle.read(min(PROBE_BYTES, stop))
    if len(end) < min(PROBE_BYTES, stop):
        return {"head": "", "end": "short"}  # the file is shorter than the cache says
    return {"head": hashlib.sha1(head).hexdigest(), "end": hashlib.sha1(end).hexdigest()}

