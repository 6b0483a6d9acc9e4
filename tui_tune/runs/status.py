"""The status of a run, judged from its files and live processes (never from one pid alone).

queued: created, never launched. running: a launcher or rank of the current launch is alive.
completed / stopped / failed / oom: the worker's `end` event (or run.json, written with it) after
the latest launch. died: launched, no process left, no `end`: the console.log tail says why.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_tune.events import END_STATUSES
from tui_tune.rundir import RunDir
from tui_tune.runs.files import read_run_json, tail_text
from tui_tune.runs.procs import main_processes
from tui_tune.runs.summary import EventSummary, shared_summary

STATUSES = ("queued", "running", "completed", "stopped", "failed", "oom", "died")
LIVE_STATUSES = ("running",)
EXIT_CODES = {"completed": 0, "running": 0, "queued": 0, "stopped": 3, "failed": 1,
              "oom": 4, "died": 5}
CLOCK_SLACK_S = 2.0  # an end event may carry a time rounded a little before launched_at


@dataclass
class RunState:
    status: str
    reason: str = ""  # why a run failed, went out of memory or died
    pids: tuple[int, ...] = ()


def run_status(run_dir: Path) -> str:
    return run_state(Path(run_dir)).status


def run_state(run_dir: Path, info: dict[str, Any] | None = None,
              summary: EventSummary | None = None) -> RunState:
    """Status of one run; pass run.json and an events summary when already at hand."""
    run_dir = Path(run_dir)
    info = read_run_json(run_dir) if info is None else info
    alive = main_processes(run_dir)
    if alive:
        return RunState("running", pids=tuple(p.pid for p in alive))
    if summary is None:
        summary = shared_summary(RunDir(run_dir).events)
    launched_at = info.get("launched_at")
    ended = _end_after(summary.end, launched_at) or _run_json_end(info, launched_at)
    if ended is not None:
        return RunState(ended["status"], end_reason(ended))
    if launched_at is None and summary.segment_start_t is None:
        return RunState("queued")
    host = info.get("host")
    if isinstance(host, str) and host != socket.gethostname():
        return RunState("running", f"launched on {host}: its processes cannot be checked "
                        "from this machine")
    return RunState("died", _died_reason(run_dir))


def _end_after(end: dict[str, Any] | None, launched_at: Any) -> dict[str, Any] | None:
    if end is None or end.get("status") not in END_STATUSES:
        return None
    if isinstance(launched_at, (int, float)) and isinstance(end.get("t"), (int, float)) \
            and end["t"] < launched_at - CLOCK_SLACK_S:
        return None  # the end of an earlier launch: this one never finished
    return end


def _run_json_end(info: dict[str, Any], launched_at: Any) -> dict[str, Any] | None:
    """The worker writes run.json's status with its end event; use it if events were lost."""
    if info.get("status") not in END_STATUSES:
        return None
    ended_at = _timestamp(info.get("ended_at"))
    if isinstance(launched_at, (int, float)) and (ended_at is None
                                                 or ended_at < launched_at - CLOCK_SLACK_S):
        return None
    return {"status": info["status"], "message": info.get("reason")}


def _timestamp(value: Any) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        from datetime import datetime
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


OOM_HINT = ("to fit, lower training.batch_size (raise training.grad_accumulation to keep the "
            "effective batch) or tokenizer.max_length, or turn on "
            "architecture.gradient_checkpointing")


def end_reason(end: dict[str, Any]) -> str:
    """Why an end event's run failed or went out of memory, whole (with what to change)."""
    parts = [str(end[k]) for k in ("error_type", "error", "message", "error_message")
             if end.get(k)]
    reason = ": ".join(parts)
    if end.get("status") == "oom":
        phase = f" during {end['phase']}" if end.get("phase") else ""
        reason = f"out of memory{phase}: {reason or 'no details'}\n{OOM_HINT}"
    return reason


def _died_reason(run_dir: Path) -> str:
    from tui_tune.runs.log_noise import without_noise
    tail = "\n".join(without_noise(tail_text(RunDir(run_dir).console_log, lines=40))[0]
                     .splitlines()[-8:])
    return ("its processes ended without an end event; console.log ends with:\n" + tail
            if tail else "its processes ended without an end event and console.log is empty")
