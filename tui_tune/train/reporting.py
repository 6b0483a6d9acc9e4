"""What the worker tells the outside world: events.jsonl (rank 0), rank files, run.json status."""

from __future__ import annotations

import functools
import os
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import psutil

from tui_tune.event_writer import EventWriter
from tui_tune.events import END_STATUSES, encode, make_event
from tui_tune.monitor.host import peak_rss_bytes
from tui_tune.rundir import RunDir
from tui_tune.runs.files import read_run_json, update_run_json, write_json_atomic
from tui_tune.runs.lock import hold_for_worker
from tui_tune.train.disk_full import disk_full_message, remove_partial_checkpoints

GIB = 1024 ** 3


def env_rank() -> int:
    return int(os.environ.get("RANK", "0"))


class Reporter:
    """Rank 0 writes events; every rank writes its rank file; rank 0 writes the end status."""

    def __init__(self, run_dir: Path, rank: int | None = None):
        self.run_dir = Path(run_dir)
        self.rank = env_rank() if rank is None else rank
        self.is_main = self.rank == 0
        self.writer = EventWriter(RunDir(self.run_dir).events) if self.is_main else None
        self.phase = "load"
        self.ended = False
        self._lock = hold_for_worker(self.run_dir)  # one launch per run: held until exit
        self._dir_id = _identity(self.run_dir)

    def event(self, kind: str, **fields: Any) -> None:
        if self.writer is not None:
            self.writer.write(kind, **fields)

    def log(self, message: str, level: str = "info") -> None:
        self.event("log", level=level, message=message)
        if self.is_main:
            print(f"[{level}] {message}", file=sys.stderr, flush=True)

    def run_dir_gone(self) -> bool:
        """Was the run directory deleted (or replaced) or events.jsonl removed? Then nobody can
        see or stop this run any more, and the worker should end instead of training on."""
        try:
            if _identity(self.run_dir) != self._dir_id:
                return True
        except FileNotFoundError:
            return True
        except OSError:
            return False  # cannot tell (a flaky network folder): keep training
        return self.writer is not None and not self.writer.path.exists()

    def write_rank_file(self, **more: Any) -> None:
        """ranks/rank-R.json: who this process is (pid + start time tell reuse apart)."""
        paths = RunDir(self.run_dir)
        paths.ranks.mkdir(parents=True, exist_ok=True)
        info = {"rank": self.rank, "pid": os.getpid(), "host": socket.gethostname(),
                "start_time": psutil.Process().create_time(), **more}
        write_json_atomic(paths.rank_file(self.rank), info)

    def end(self, status: str, **fields: Any) -> None:
        """The one `end` event and the run.json status; later calls are ignored."""
        if self.ended:
            return
        self.ended = True
        self.event("end", status=status, **fields)
        if self.writer is not None:
            self.writer.close()
        if self.is_main:
            update_run_json(self.run_dir, status=status, ended_at=time.time(),
                            reason=fields.get("message"))

    def fail(self, error: BaseException, status: str = "failed", **fields: Any) -> None:
        """An end event for a crash. A crash on another rank is reported by that rank (rank 0
        may hang in a collective and be killed), unless rank 0 already wrote an end."""
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        tail = "".join(lines).rstrip().splitlines()[-12:]
        disk_full = disk_full_message(error, self.run_dir)
        if disk_full and self.is_main:
            remove_partial_checkpoints(self.run_dir)  # room for the end event and run.json
        fields.update(error_type="OSError" if disk_full else type(error).__name__,
                      message=disk_full or str(error), traceback=tail, phase=self.phase)
        if self.is_main:
            self.end(status, **fields)
        elif not self.ended:
            self.ended = True
            self._end_from_other_rank(status, fields)

    def _end_from_other_rank(self, status: str, fields: dict[str, Any]) -> None:
        time.sleep(1.0)  # give rank 0 the chance to report first (its error may be the cause)
        if read_status(self.run_dir) in END_STATUSES:
            return
        with open(RunDir(self.run_dir).events, "a", encoding="utf-8") as handle:
            handle.write(encode(make_event("end", status=status, rank=self.rank, **fields)))
        update_run_json(self.run_dir, status=status, ended_at=time.time(),
                        reason=fields.get("message"))


def _identity(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def read_status(run_dir: Path) -> str | None:
    return read_run_json(run_dir).get("status")


@functools.lru_cache(maxsize=4)
def _process(pid: int) -> psutil.Process:
    """Built once per process: each psutil.Process() reads /proc/<pid>/stat (~70 us a step)."""
    return psutil.Process(pid)


def gpu_peak_gib(device) -> float | None:
    """The run's peak GPU memory (what runs/estimate predicts), for the end event; None on a
    CPU, whose process size is no GPU peak."""
    import torch

    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / GIB, 3)


def memory_gib(device) -> dict[str, float]:
    """torch's CUDA numbers on a GPU; the process RSS (and its peak) on a CPU."""
    import torch

    if device.type == "cuda":
        return {"mem_allocated_gib": round(torch.cuda.memory_allocated(device) / GIB, 3),
                "mem_reserved_gib": round(torch.cuda.memory_reserved(device) / GIB, 3),
                "mem_peak_gib": round(torch.cuda.max_memory_allocated(device) / GIB, 3)}
    rss = _process(os.getpid()).memory_info().rss / GIB
    peak = peak_rss_bytes() / GIB
    return {"mem_allocated_gib": round(rss, 3), "mem_reserved_gib": round(rss, 3),
            "mem_peak_gib": round(max(peak, rss), 3)}
