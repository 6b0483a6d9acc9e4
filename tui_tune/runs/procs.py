"""Which processes belong to a run, found safely: a recorded pid counts only when the process
proves it works for the run.

A run's processes are the launcher (run.json pid + pid_start_time), every rank the worker
recorded in ranks/rank-<R>.json, their descendants, and every process on this host carrying the
run's marker (helpers orphaned when their parent died, a second worker). Pids get reused and
run.json can be edited by hand, so a recorded pid counts only with its start time AND a proof:
the TUI_TUNE_RUN_DIR=<run dir> marker that launch puts in the environment of everything it
starts (read from /proc/PID/environ), or a worker command line naming the run directory.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from tui_tune.rundir import RunDir
from tui_tune.runs.files import read_json, read_run_json

START_TIME_TOLERANCE_S = 1.0
RUN_DIR_ENV = "TUI_TUNE_RUN_DIR"  # the marker: launch sets it, every descendant inherits it
WORKER_MODULE = "tui_tune.train"


def marker_env(run_dir: Path) -> dict[str, str]:
    """What launch adds to the environment of the processes it starts for this run."""
    return {RUN_DIR_ENV: os.path.realpath(run_dir)}


def process_run_dir(proc: psutil.Process) -> str | None:
    """The run directory a tui-tune process works for (its marker, else a worker's command
    line), or None for any other process and for processes we may not inspect."""
    try:
        marked = proc.environ().get(RUN_DIR_ENV)
        if marked:
            return marked
    except (psutil.Error, OSError):
        pass  # another user's process: its command line is still readable
    try:
        argv = proc.cmdline()
    except (psutil.Error, OSError):
        return None
    for i in range(1, len(argv) - 1):
        if argv[i] == WORKER_MODULE and argv[i - 1] in ("-m", "--module"):
            target = next((a for a in argv[i + 1:] if not a.startswith("-")), None)
            return _absolute(proc, target) if target else None
    return None


def _absolute(proc: psutil.Process, path: str) -> str:
    if not os.path.isabs(path):
        try:
            path = os.path.join(proc.cwd(), path)
        except (psutil.Error, OSError):
            pass
    return os.path.realpath(path)


def belongs_to(proc: psutil.Process, run_dir: Path) -> bool:
    """Proof that a process works for this run (a pid and start time alone prove nothing)."""
    return process_run_dir(proc) == os.path.realpath(run_dir)


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


def run_process(run_dir: Path, pid: object, recorded_start: object) -> psutil.Process | None:
    """A recorded pid of this run, if that process is alive and proves it belongs to the run."""
    proc = live_process(pid, recorded_start)
    return proc if proc is not None and belongs_to(proc, run_dir) else None


def launcher_process(run_dir: Path) -> psutil.Process | None:
    info = read_run_json(run_dir)
    if info.get("host") not in (None, socket.gethostname()):
        return None
    return run_process(run_dir, info.get("pid"), info.get("pid_start_time"))


def rank_records(run_dir: Path) -> list[dict]:
    records = []
    for path in RunDir(run_dir).rank_files():
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
        proc = run_process(run_dir, record.get("pid"), record.get("start_time"))
        if proc is not None:
            found.append(proc)
    return found


def main_processes(run_dir: Path) -> list[psutil.Process]:
    """The launcher and the ranks: cheap to check, enough to tell whether a run is alive."""
    launcher = launcher_process(run_dir)
    return ([launcher] if launcher else []) + rank_processes(run_dir)


def all_processes(run_dir: Path) -> list[psutil.Process]:
    """Every process of the run: launcher, ranks, their descendants, and whatever else on this
    host carries the run's marker (helpers left behind, a worker of another launch)."""
    roots = main_processes(run_dir)
    found: dict[int, psutil.Process] = {p.pid: p for p in roots}
    for proc in roots:
        try:
            for child in proc.children(recursive=True):
                found.setdefault(child.pid, child)
        except psutil.Error:
            continue
    for proc in marked_processes(os.path.realpath(run_dir)):
        found.setdefault(proc.pid, proc)
    return [p for p in found.values() if _is_running(p)]


def tui_tune_processes() -> list[tuple[psutil.Process, str]]:
    """Every tui-tune process on this host (launchers, ranks, their helpers) with its run
    directory, whether that directory still exists or not."""
    found, own = [], _self_and_ancestors()  # never this process, nor the shell it runs in
    for proc in psutil.process_iter():
        if proc.pid in own:
            continue
        run_dir = process_run_dir(proc)
        if run_dir is not None and _is_running(proc):
            found.append((proc, run_dir))
    return found


def _self_and_ancestors() -> set[int]:
    try:
        return {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    except psutil.Error:
        return {os.getpid()}


def marked_processes(real_run_dir: str) -> list[psutil.Process]:
    return [proc for proc, run_dir in tui_tune_processes() if run_dir == real_run_dir]


@dataclass
class HostProcess:
    """One row of `tui-tune ps`."""
    pid: int
    ppid: int
    role: str  # launcher (accelerate), worker (a rank) or helper (anything they started)
    run_dir: str
    started: float
    dir_exists: bool


def host_processes() -> list[HostProcess]:
    rows = []
    for proc, run_dir in tui_tune_processes():
        try:
            argv, ppid, started = proc.cmdline(), proc.ppid(), proc.create_time()
        except (psutil.Error, OSError):
            continue
        rows.append(HostProcess(proc.pid, ppid, _role(argv), run_dir, started,
                                os.path.isdir(run_dir)))
    return sorted(rows, key=lambda r: (r.run_dir, r.started, r.pid))


def _role(argv: list[str]) -> str:
    if WORKER_MODULE not in argv:
        return "helper"
    return "launcher" if any("accelerate" in a for a in argv[:4]) else "worker"


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
