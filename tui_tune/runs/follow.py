"""The one reader of a growing events.jsonl, for the app, the CLI and run listing.

The worker appends whole lines in buffered batches, so a poll may see half a line: it is kept
until its newline arrives. Truncation (size shrinks, or the bytes before our position change)
and replacement (new inode) restart reading from the top of the new content. Two modes:
`poll()` parses lines into dicts (in bulk: one decode over many lines, because per-line Python
work dominates otherwise); `poll_blocks()`, the raw mode, hands out the complete lines unparsed,
so a reader decodes only the fields it needs into its own struct (events.reader_struct): the run
summary (runs/summary.py) and the monitor's series (tui/run_data.py) are folds over it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

try:  # msgspec parses these lines 2-3x faster than the json module; fall back when absent
    from msgspec.json import decode as _decode_json
except ImportError:  # pragma: no cover - msgspec is a dependency, this keeps a broken env usable
    _decode_json = json.loads

READ_CHUNK = 8 << 20  # bytes per read; bounds memory when catching up on a big file
FINGERPRINT = 64  # bytes before the read position, compared to notice in-place rewrites


class EventFollower:
    """Follow one events file: `poll()` returns the events appended since the last call."""

    def __init__(self, path: str | os.PathLike[str], from_start: bool = True):
        self.path = Path(path)
        self.from_start = from_start
        self.skipped_lines = 0  # lines that were not events (garbage, foreign JSON)
        self.restarts = 0  # truncations and replacements noticed
        self._handle: Any = None
        self._inode: tuple[int, int] | None = None
        self._offset = 0  # bytes consumed from the file, the partial line included
        self._partial = b""
        self._fingerprint = b""
        self._pending: list[dict[str, Any]] = []
        self._blocks: list[bytes] | None = None  # set while poll_blocks hands out raw lines
        self._first_open = True
        self._skip_existing = not from_start  # only content present at the first look
        self.resumed = False  # set by at_position

    # -- public ---------------------------------------------------------------------------
    def poll(self, max_events: int | None = None) -> list[dict[str, Any]]:
        """New events since the last call (at most max_events; the rest wait for the next)."""
        while max_events is None or len(self._pending) < max_events:
            if not self._read_some():
                break
        if max_events is None or len(self._pending) <= max_events:
            batch, self._pending = self._pending, []
        else:
            batch, self._pending = self._pending[:max_events], self._pending[max_events:]
        return batch

    def poll_blocks(self) -> Iterator[bytes]:
        """Raw mode: the complete lines appended since the last call, unparsed, one read
        (<= 8 MiB and a line) at a time, so readers that decode only the fields they need go
        through a big file in bounded memory. `restarts` grows when the file was truncated or
        replaced: check it before using each block (what came before belongs to the old file)."""
        if self._pending:
            raise RuntimeError("poll_blocks after poll(max_events) left events pending")
        self._blocks = []
        try:
            while self._read_some():
                blocks, self._blocks = self._blocks, []
                yield from blocks
        finally:
            self._blocks = None

    def position(self) -> dict[str, Any]:
        """Where this follower stands, so another process can go on from here (`at_position`)."""
        offset = self.offset
        return {"inode": list(self._inode) if self._inode else None, "offset": offset,
                "fingerprint": _bytes_before(self.path, offset).hex()}

    @classmethod
    def at_position(cls, path: str | os.PathLike[str], position: dict[str, Any]) -> EventFollower:
        """A follower that continues where `position()` was taken, if the file is still that
        file (same inode, same bytes before the offset); else one reading from the start.
        `.resumed` tells which."""
        follower = cls(path)
        follower.resumed = False
        try:
            inode, offset = tuple(position["inode"]), int(position["offset"])
            fingerprint = bytes.fromhex(position["fingerprint"])
            stat = os.stat(path)
        except (KeyError, TypeError, ValueError, OSError):
            return follower
        if (stat.st_dev, stat.st_ino) == inode and stat.st_size >= offset \
                and _bytes_before(follower.path, offset) == fingerprint:
            follower._inode, follower._offset, follower._fingerprint = inode, offset, fingerprint
            follower._first_open = follower._skip_existing = False
            follower.resumed = True
        return follower

    @classmethod
    def at_offset(cls, path: str | os.PathLike[str], offset: int) -> EventFollower:
        """A follower that goes on from byte `offset` of the file as it is now, whose bytes
        before it the caller has read itself (the app reads a big file's recent part first).
        Truncation or replacement from now on counts as a restart, as always."""
        follower = cls(path)
        follower._first_open = follower._skip_existing = False
        try:
            stat = os.stat(path)
        except OSError:
            return follower  # when a file appears, reading it is a restart
        follower._inode, follower._offset = (stat.st_dev, stat.st_ino), offset
        if stat.st_size >= offset:
            follower._fingerprint = _bytes_before(follower.path, offset)
        return follower

    @property
    def offset(self) -> int:
        """Bytes of the file turned into events (or skipped) so far."""
        return self._offset - len(self._partial)

    def release(self) -> None:
        """Close the file but remember the position: the next poll reopens and goes on."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # -- reading --------------------------------------------------------------------------
    def _read_some(self) -> bool:
        """Read one chunk of new bytes into pending events; False when nothing new is there."""
        try:
            stat = os.stat(self.path)
        except OSError:
            self._skip_existing = False  # a file that appears later is read from its start
            return False
        identity = (stat.st_dev, stat.st_ino)
        if self._handle is None and identity == self._inode and not self._reopen():
            return False
        if self._handle is None or identity != self._inode:
            if self._handle is not None and self._drain_old_handle():
                return True
            self._open(identity, stat.st_size)
            if self._handle is None:
                return False
        elif stat.st_size < self._offset or not self._fingerprint_matches():
            self._restart()
        if stat.st_size <= self._offset:
            return False
        self._handle.seek(self._offset)
        data = self._handle.read(READ_CHUNK)
        if not data:
            return False
        self._offset += len(data)
        self._take(data)
        return True

    def _reopen(self) -> bool:
        try:
            self._handle = open(self.path, "rb")  # noqa: SIM115 (held across polls)
        except OSError:
            return False
        return True

    def _drain_old_handle(self) -> bool:
        """Before switching to a replacement file, read what was left in the old one."""
        self._handle.seek(self._offset)
        data = self._handle.read(READ_CHUNK)
        if data:
            self._offset += len(data)
            self._take(data)
            return True
        return False

    def _open(self, identity: tuple[int, int], size: int) -> None:
        self.close()
        try:
            self._handle = open(self.path, "rb")  # noqa: SIM115 (held across polls)
        except OSError:
            return
        if not self._first_open:
            self.restarts += 1
        self._inode = identity
        self._offset, self._partial, self._fingerprint = 0, b"", b""
        if self._skip_existing:
            self._offset = self._last_line_start(size)
        self._first_open = self._skip_existing = False

    def _restart(self) -> None:
        self.restarts += 1
        self._offset, self._partial, self._fingerprint = 0, b"", b""

    def _last_line_start(self, size: int) -> int:
        """Where the last (possibly unfinished) line begins, so it is not cut in half."""
        position = size
        while position > 0:
            step = min(65536, position)
            self._handle.seek(position - step)
            block = self._handle.read(step)
            newline = block.rfind(b"\n")
            if newline >= 0:
                return position - step + newline + 1
            position -= step
        return 0

    def _fingerprint_matches(self) -> bool:
        if not self._fingerprint:
            return True
        start = self._offset - len(self._fingerprint)
        self._handle.seek(start)
        return self._handle.read(len(self._fingerprint)) == self._fingerprint

    def _take(self, data: bytes) -> None:
        self._fingerprint = (self._fingerprint + data)[-FINGERPRINT:]
        data = self._partial + data if self._partial else data
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data
            return
        self._partial = data[cut + 1:]
        if self._blocks is not None:
            self._blocks.append(data[:cut])
        else:
            self._pending.extend(self._parse(data[:cut]))

    def _parse(self, block: bytes) -> list[dict[str, Any]]:
        """Parse newline-separated JSON lines: in one call when all are clean, else line by line."""
        try:
            records = _decode_json(b"[" + block.replace(b"\n", b",") + b"]")
        except Exception:  # noqa: BLE001 - json.JSONDecodeError or msgspec.DecodeError: some line is bad
            records = [_loads_or_none(line) for line in block.split(b"\n")]
        events = [r for r in records if type(r) is dict and type(r.get("kind")) is str]
        self.skipped_lines += len(records) - len(events)
        return events


def _bytes_before(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            return os.pread(handle.fileno(), min(FINGERPRINT, offset), max(0, offset - FINGERPRINT))
    except OSError:
        return b""


def _loads_or_none(line: bytes) -> Any:
    try:
        return _decode_json(line)
    except Exception:  # noqa: BLE001 - not JSON, or not UTF-8
        return None


def read_events(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every event in a file, read once (a finished run, an export, a test)."""
    with EventFollower(path) as follower:
        return follower.poll()
