"""Listing runs for the runs screen in stages, so that a thousand runs show at once.

First every run by its id (which starts with its creation time), the newest screenfuls as
run.json describes them (name, preset, status as last written: one small file each); then the
details (events, live processes, loss sparkline) from RunStore.summary,
the rows on screen first, in chunks the screen applies as they come. Only RunStore's public
methods are used, so how a summary is computed stays the runs layer's business.

The first stage (`first_rows`) is a few milliseconds of file checks for a thousand runs, meant
for the UI thread: in a worker thread each check waits to get the interpreter back, and while
the UI thread builds the first screen that made the same work take 0.2-0.4 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tui_tune.rundir import RunDir
from tui_tune.runs.listing import RunSummary, run_notes, run_tags, scan_run_dirs, swept_values

if TYPE_CHECKING:  # the rest of the runs layer (and pydantic with it) is imported by the
    from tui_tune.runs.store import RunStore  # worker once the first rows are out

CHUNK_S = 0.2  # details gathered for at most this long before the screen gets them
FIRST_ROWS = 80  # rows taken as the visible ones until the screen says which are


def quick_summary(run_dir: Path, read: bool = True) -> RunSummary:
    """A row from run.json alone (or, with read=False, from the id alone): no progress yet."""
    from tui_tune.runs.files import read_json
    info = (read_json(RunDir(run_dir).run_json) or {}) if read else {}
    created = info.get("created_at")
    created = float(created) if isinstance(created, (int, float)) \
        and not isinstance(created, bool) else id_time(run_dir.name)
    return RunSummary(run_id=run_dir.name, path=run_dir, name=_text(info.get("name")) or
                      run_dir.name, preset=_text(info.get("preset")) or "?",
                      status=_text(info.get("status")) or ("?" if read else "..."), step=0,
                      steps_total=None,
                      last_loss=None, tokens_per_s=None, elapsed_s=None, eta_s=None,
                      started_at=created, created_at=created,
                      sweep_id=_text(info.get("sweep_id")), swept=swept_values(info),
                      notes=run_notes(info), tags=run_tags(info))


def id_time(run_id: str) -> float | None:
    """The creation time a run id starts with (<UTC yyyymmdd-hhmmss>-...), if it does."""
    stamp = run_id[:8] + run_id[9:15]
    if len(stamp) != 14 or not stamp.isdigit() or run_id[8:9] != "-":
        return None
    fields = [int(stamp[i:j]) for i, j in ((0, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14))]
    try:  # (not strptime: ten times slower, and it imports its module on first use)
        return datetime(*fields, tzinfo=UTC).timestamp()
    except ValueError:
        return None


def newest_first(summaries: Iterable[RunSummary]) -> list[RunSummary]:
    """The order RunStore.list() uses: creation (else first start) time, then id."""
    return sorted(summaries, key=lambda s: (s.created_at or s.started_at or 0.0, s.run_id),
                  reverse=True)


@dataclass
class Listing:
    """What the screen is sent: every run in order, which rows changed, and whether every
    row has its details (a complete listing, as RunStore.list() would give)."""
    rows: list[RunSummary]
    changed: set[str]
    sparks: dict[str, str]
    warnings: list[str]
    complete: bool
    detailed: frozenset[str] = frozenset()  # rows with their details (the others: run.json)


@dataclass
class StagedLister:
    """Keeps what is known about each run between passes (one lister per screen)."""
    root: Path  # the runs folder
    open_store: Callable[[], RunStore]  # called once, when the first details are read
    sparkline: Callable[[Path], str]
    store: RunStore | None = None
    known: dict[str, RunSummary] = field(default_factory=dict)
    detailed: set[str] = field(default_factory=set)
    sparks: dict[str, str] = field(default_factory=dict)
    scanned: tuple[list[Path], list[str]] | None = None  # first_rows' scan, for the next pass

    def first_rows(self) -> Listing:
        """Every run, as its folder and (for the newest screenfuls) run.json describe it: the
        quick rows of the first pass, which then goes on with the details only."""
        found, warnings = self.scanned = scan_run_dirs(self.root)
        new = self._add_new({d.name: d for d in found})
        return self._listing(new, list(warnings), complete=not found)

    def passes(self, wanted_first: Callable[[], list[str]],
               stopped: Callable[[], bool]) -> Iterable[Listing]:
        """One pass over the runs folder, as a few listings: the quick rows (when a run is
        new), then details chunk by chunk, rows in `wanted_first()` before the others."""
        found, warnings = self.scanned or scan_run_dirs(self.root)
        warnings = list(warnings)
        self.scanned = None
        if self.store is not None:
            self.store.warnings = []  # this pass's own, as RunStore.run_dirs() starts them
        dirs = {d.name: d for d in found}
        new = self._add_new(dirs)
        if new or not dirs:
            yield self._listing(new, warnings, complete=not dirs)
        order = [s.run_id for s in newest_first(self.known[n] for n in dirs)]
        pending, position = set(dirs), 0
        changed: set[str] = set()
        started = time.monotonic()
        while pending:
            if stopped():
                return
            wanted = wanted_first() or order[:FIRST_ROWS]
            name = next((n for n in wanted if n in pending), None)
            if name is None:
                while order[position] not in pending:
                    position += 1
                name = order[position]
            pending.discard(name)
            if self._refresh(dirs[name], warnings):
                changed.add(name)
            shown_done = name in wanted and not pending.intersection(wanted)
            if changed and pending and (shown_done or time.monotonic() - started > CHUNK_S):
                yield self._listing(changed, warnings, complete=False)
                changed, started = set(), time.monotonic()
        if self.store is not None:
            warnings += [w for w in self.store.warnings if w not in warnings]
        yield self._listing(changed, warnings, complete=True)

    def _add_new(self, dirs: dict[str, Path]) -> set[str]:
        """Forget the runs that are gone, add quick rows for the new ones; their names."""
        for gone in set(self.known) - set(dirs):
            self.known.pop(gone)
            self.detailed.discard(gone)
            self.sparks.pop(gone, None)
        new = [name for name in dirs if name not in self.known]
        # run.json for the rows shown first (all of them, once the list has been shown)
        read = set(new) if self.known else set(sorted(new, reverse=True)[:FIRST_ROWS])
        for name in new:
            self.known[name] = quick_summary(dirs[name], read=name in read)
        return set(new)

    def _refresh(self, run_dir: Path, warnings: list[str]) -> bool:
        """Read one run's details; True when its row changed."""
        name = run_dir.name
        try:
            if self.store is None:
                self.store = self.open_store()
            summary = self.store.summary(run_dir)
        except Exception as error:  # noqa: BLE001 - one damaged run must not hide the others
            warnings.append(f"skipping {run_dir}: {type(error).__name__}: {error}")
            return False
        spark = self.sparkline(run_dir)
        was, was_spark = self.known.get(name), self.sparks.get(name)
        self.known[name] = summary
        self.sparks[name] = spark
        first = name not in self.detailed
        self.detailed.add(name)
        return first or was != summary or was_spark != spark

    def _listing(self, changed: set[str], warnings: list[str], complete: bool) -> Listing:
        rows = newest_first(self.known.values())
        if complete:  # runs whose details failed are left out, as RunStore.list() does
            rows = [s for s in rows if s.run_id in self.detailed]
        return Listing(rows, changed, dict(self.sparks), list(warnings), complete,
                       frozenset(self.detailed))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
