"""The worker's one writer of events.jsonl (and of its step index, step_index.py)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Self

from tui_tune.events import encode, make_event
from tui_tune.step_index import StepIndexWriter


class EventWriter:
    """Buffered append-only writer: cheap per event, flushed at least once a second.

    A daemon thread flushes on a timer so a slow step never holds events back for long. Each
    flush is one write of whole lines; where it ended in the file (O_APPEND puts it at the end,
    after anything another process appended) places the step lines' records in the index.
    """

    def __init__(self, path: Path, flush_every_s: float = 1.0, index: bool = True):
        self.path = Path(path)
        self._handle = open(self.path, "ab", buffering=0)  # noqa: SIM115 (lives as long as the writer)
        self._index = StepIndexWriter(self.path) if index else None
        self._buffer: list[tuple[bytes, dict[str, Any] | None]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._flush_every_s = flush_every_s
        self._thread = threading.Thread(target=self._flush_loop, daemon=True)
        self._thread.start()

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = make_event(kind, **fields)
        with self._lock:
            self._buffer.append((encode(event).encode("utf-8"),
                                 event if kind == "step" else None))
        if kind in ("end", "checkpoint", "start"):
            self.flush()
        return event

    def flush(self) -> None:
        with self._lock:
            if self._buffer and not self._handle.closed:
                data = b"".join(line for line, _ in self._buffer)
                written = 0
                while written < len(data):  # a regular file takes it in one write
                    written += self._handle.write(data[written:])
                if self._index is not None:
                    self._index.add(self._buffer, end=self._handle.tell())
                self._buffer.clear()

    def _flush_loop(self) -> None:
        while not self._closed.wait(self._flush_every_s):
            self.flush()

    def close(self) -> None:
        self.flush()
        self._closed.set()
        with self._lock:
            self._handle.close()
            if self._index is not None:
                self._index.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
