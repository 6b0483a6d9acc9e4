"""Which processes belong to a run, found safely: a pid counts only with its recorded start time.

A run's processes are the launcher (run.json pid + pid_start_time), every rank the worker
recorded in ranks/rank-<R>.json, their descendants, and anything left in the launcher's session
(helpers orphaned when their parent died). Pids get reused, so each recorded pid is checked
against the start time written next to it.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import psutil

from tui_tune.runs.files import read_json, read_run_json

START_TIME_TOLERANCE_S = 1.0


def start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def live_process(pid: object, recorded_start: object) -> psutil.Process | None:
    """The process with this pid if it is still the one recorded (same start time, not a zombie)."""
    if not isinstance(pid, int) or not isinstance(recorded_start, (int, float)) or pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - recorded_start) > START_TIME_TOLERANCE_S:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.Error, OSError):
        return None


def launcher_process(run_dir: Path) -> psutil.Process | None:
    info = read_run_json(run_dir)
    if info.get("host") not in (None, socket.gethostname()):
        return None
    return live_process(info.get("pid"), info.get("pid_start_time"))


def rank_records(run_dir: Path) -> list[dict]:
    records = []
    for path in sorted((Path(run_dir) / "ranks").glob("rank-*.json")):
        record = read_json(path)
        if record is not None:
            records.append(record)
    return records


def rank_processes(run_dir: Path) -> list[psutil.Process]:
    """Ranks of this run alive on this machine (ranks on other nodes are not ours to see)."""
    here = socket.gethostname()
    found = []
    for record in rank_records(run_dir):
        if record.get("host") not in (None, here):
            continue
        proc = live_process(record.get("pid"), record.get("start_time"))
        if proc is not None:
            found.append(proc)
    return found


def main_processes(run_dir: Path) -> list[psutil.Process]:
    """The launcher and the ranks: cheap to check, enough to tell whether a run is alive."""
    launcher = launcher_process(run_dir)
    return ([launcher] if launcher else []) + rank_processes(run_dir)


def all_processes(run_dir: Path) -> list[psutil.Process]:
    """Every process of the run: launcher, ranks, their descendants, leftovers in its session."""
    roots = main_processes(run_dir)
    found: dict[int, psutil.Process] = {p.pid: p for p in roots}
    for proc in roots:
        try:
            for child in proc.children(recursive=True):
                found.setdefault(child.pid, child)
        except psutil.Error:
            continue
    for proc in _session_members(read_run_json(run_dir)):
        found.setdefault(proc.pid, proc)
    return [p for p in found.values() if _is_running(p)]


def _session_members(info: dict) -> list[psutil.Process]:
    """Processes still in the launcher's session (it was started as a session leader)."""
    sid, started = info.get("pid"), info.get("pid_start_time")
    if not isinstance(sid, int) or not isinstance(started, (int, float)):
        return []
    if info.get("host") not in (None, socket.gethostname()):
        return []
    members = []
    for proc in psutil.process_iter(["create_time"]):
        try:
            if proc.pid != os.getpid() and os.getsid(proc.pid) == sid \
                    and proc.info["create_time"] >= started - START_TIME_TOLERANCE_S:
                members.append(proc)
        except (OSError, psutil.Error):
            continue
    return members


def _is_running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def signal_all(procs: list[psutil.Process], sig: int = signal.SIGKILL) -> None:
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.Error:
            continue


def wait_gone(procs: list[psutil.Process], timeout_s: float) -> None:
    """Wait until each process has exited. A zombie counts as gone: a launcher started by another
    process (the app) stays a zombie until that parent reaps it, which may take a while."""
    deadline = time.monotonic() + timeout_s
    left = list(procs)
    while left and time.monotonic() < deadline:
        try:
            psutil.wait_procs(left, timeout=0.2)  # reaps our own children at once
        except psutil.Error:
            pass
        left = [p for p in left if _is_running(p)]
