"""What the worker tells the outside world: events.jsonl (rank 0), rank files, run.json status."""

from __future__ import annotations

import json
import os
import resource
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import psutil

from tui_tune.events import EventWriter

GIB = 1024 ** 3


def env_rank() -> int:
    return int(os.environ.get("RANK", "0"))


class Reporter:
    """Rank 0 writes events; every rank writes its rank file; rank 0 writes the end status."""

    def __init__(self, run_dir: Path, rank: int | None = None):
        self.run_dir = Path(run_dir)
        self.rank = env_rank() if rank is None else rank
        self.is_main = self.rank == 0
        self.writer = EventWriter(self.run_dir / "events.jsonl") if self.is_main else None
        self.phase = "load"
        self.ended = False

    def event(self, kind: str, **fields: Any) -> None:
        if self.writer is not None:
            self.writer.write(kind, **fields)

    def log(self, message: str, level: str = "info") -> None:
        self.event("log", level=level, message=message)
        if self.is_main:
            print(f"[{level}] {message}", file=sys.stderr, flush=True)

    def write_rank_file(self) -> None:
        folder = self.run_dir / "ranks"
        folder.mkdir(parents=True, exist_ok=True)
        info = {"rank": self.rank, "pid": os.getpid(), "host": socket.gethostname(),
                "start_time": psutil.Process().create_time()}
        write_json_atomic(folder / f"rank-{self.rank}.json", info)

    def end(self, status: str, **fields: Any) -> None:
        """The one `end` event and the run.json status; later calls are ignored."""
        if self.ended:
            return
        self.ended = True
        self.event("end", status=status, **fields)
        if self.writer is not None:
            self.writer.close()
        if self.is_main:
            update_run_json(self.run_dir, status=status, ended_at=time.time())

    def fail(self, error: BaseException, status: str = "failed", **fields: Any) -> None:
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        tail = "".join(lines).rstrip().splitlines()[-12:]
        self.end(status, error_type=type(error).__name__, message=str(error),
                 traceback=tail, phase=self.phase, **fields)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def update_run_json(run_dir: Path, **fields: Any) -> None:
    """Read-modify-write run.json atomically (created if absent), keeping the launcher's keys."""
    path = Path(run_dir) / "run.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data.update(fields)
    write_json_atomic(path, data)


def memory_gib(device) -> dict[str, float]:
    """torch's CUDA numbers on a GPU; the process RSS (and its peak) on a CPU."""
    import torch

    if device.type == "cuda":
        return {"mem_allocated_gib": round(torch.cuda.memory_allocated(device) / GIB, 3),
                "mem_reserved_gib": round(torch.cuda.memory_reserved(device) / GIB, 3),
                "mem_peak_gib": round(torch.cuda.max_memory_allocated(device) / GIB, 3)}
    rss = psutil.Process().memory_info().rss / GIB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # Linux: KiB
    return {"mem_allocated_gib": round(rss, 3), "mem_reserved_gib": round(rss, 3),
            "mem_peak_gib": round(max(peak, rss), 3)}
