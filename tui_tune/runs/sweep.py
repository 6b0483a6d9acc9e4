"""Sweeps: a preset's [sweep] grid queued as N runs under one sweep id, run by a detached runner.

runs/.sweeps/<sweep-id>/sweep.json lists the member runs in order, the GPUs to spread them over
(when environment.gpus lists several, one run per free GPU; otherwise one run at a time) and
the runner's pid + start time. The runner (`python -m tui_tune.runs.sweep_runner SWEEP_DIR`)
has its own session, so it survives the app and the terminal; stop_sweep ends it and its runs.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from tui_tune.config import Experiment, expand
from tui_tune.runs.files import read_json, update_run_json, write_json_atomic
from tui_tune.runs.procs import live_process, start_time, wait_gone
from tui_tune.runs.status import run_status
from tui_tune.runs.store import RunNotFound, RunStore

SWEEPS_DIR = ".sweeps"
SWEEP_JSON = "sweep.json"
RUNNER_MODULE = "tui_tune.runs.sweep_runner"


@dataclass
class SweepSummary:
    sweep_id: str
    path: Path
    preset: str
    run_ids: list[str]
    statuses: dict[str, str]  # run id -> status
    runner_alive: bool

    @property
    def done(self) -> bool:
        return not self.runner_alive and all(s not in ("running", "queued")
                                             for s in self.statuses.values())


def sweeps_root(store: RunStore) -> Path:
    return store.root / SWEEPS_DIR


def parallel_gpus(exp: Experiment) -> list[int] | None:
    """GPU ids to give one run each, when the preset lists several GPUs; else None (serial)."""
    gpus = exp.environment.gpus
    return list(gpus) if isinstance(gpus, list) and len(gpus) > 1 else None


def create_sweep(store: RunStore, experiment: Experiment, preset_name: str) -> Path:
    """Queue one run per grid point (validated before anything is written) and a sweep.json."""
    members = list(expand(experiment))
    grid = {k: list(v) for k, v in experiment.sweep.items()}
    combos = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    sweep_dir = _new_sweep_dir(sweeps_root(store), f"{stamp}-{preset_name}")
    run_ids = [store.create(member, preset_name, sweep_id=sweep_dir.name,
                            label=member.general.experiment_name, sweep_values=values or None).name
               for member, values in zip(members, combos, strict=True)]
    write_json_atomic(sweep_dir / SWEEP_JSON, {
        "sweep_id": sweep_dir.name, "preset": preset_name, "runs": run_ids,
        "grid": grid,
        "gpus": parallel_gpus(experiment), "created_at": time.time(),
        "host": socket.gethostname()})
    return sweep_dir


def _new_sweep_dir(root: Path, base: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        candidate = root / (base if n == 1 else f"{base}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a sweep directory for {base} in {root}")


def start_runner(sweep_dir: Path) -> int:
    """Start the detached sweep runner; returns its pid."""
    from tui_tune.runs.children import adopt

    sweep_dir = Path(sweep_dir).resolve()
    with open(sweep_dir / "runner.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", RUNNER_MODULE, str(sweep_dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True)
    adopt(process)
    _update(sweep_dir, runner_pid=process.pid,
            runner_start_time=start_time(process.pid) or time.time(), stop_requested=False)
    return process.pid


def _update(sweep_dir: Path, **fields: object) -> dict:
    data = read_json(sweep_dir / SWEEP_JSON) or {}
    data.update(fields)
    write_json_atomic(sweep_dir / SWEEP_JSON, data)
    return data


def runner_process(sweep_dir: Path) -> psutil.Process | None:
    """The sweep's runner, if alive and proven to be it: the recorded pid and start time prove
    nothing alone (a forged sweep.json must not get another process signalled), so its command
    line must be `-m tui_tune.runs.sweep_runner SWEEP_DIR`."""
    data = read_json(Path(sweep_dir) / SWEEP_JSON) or {}
    proc = live_process(data.get("runner_pid"), data.get("runner_start_time"))
    return proc if proc is not None and _runs_sweep(proc, Path(sweep_dir)) else None


def _runs_sweep(proc: psutil.Process, sweep_dir: Path) -> bool:
    try:
        argv = proc.cmdline()
    except (psutil.Error, OSError):
        return False
    module = argv.index(RUNNER_MODULE) if RUNNER_MODULE in argv else -1
    return 0 < module < len(argv) - 1 and argv[module - 1] == "-m" \
        and os.path.realpath(argv[module + 1]) == os.path.realpath(sweep_dir)


def sweep_summary(store: RunStore, sweep_dir: Path) -> SweepSummary:
    data = read_json(sweep_dir / SWEEP_JSON) or {}
    run_ids = [r for r in data.get("runs", []) if isinstance(r, str)]
    statuses = {r: (run_status(store.root / r) if (store.root / r).is_dir() else "deleted")
                for r in run_ids}
    return SweepSummary(sweep_dir.name, sweep_dir, str(data.get("preset", "?")), run_ids,
                        statuses, runner_process(sweep_dir) is not None)


def list_sweeps(store: RunStore) -> list[SweepSummary]:
    root = sweeps_root(store)
    dirs = sorted((p for p in root.iterdir() if (p / SWEEP_JSON).is_file()),
                  reverse=True) if root.is_dir() else []
    return [sweep_summary(store, d) for d in dirs]


def resolve_sweep(store: RunStore, sweep_id_or_prefix: str) -> Path:
    root = sweeps_root(store)
    names = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    matches = [n for n in names if n == sweep_id_or_prefix] or \
        [n for n in names if n.startswith(sweep_id_or_prefix)]
    if len(matches) != 1:
        raise RunNotFound(f"no single sweep matches '{sweep_id_or_prefix}' "
                          f"({len(matches)} found); `tui-tune sweep --list` shows them.")
    return root / matches[0]


def stop_sweep(store: RunStore, sweep_dir: Path, grace_s: float = 60.0) -> dict[str, str]:
    """Stop the runner (no more launches) and every running member; queued ones stay queued."""
    from tui_tune.runs.control import stop

    _update(sweep_dir, stop_requested=True)
    runner = runner_process(sweep_dir)
    if runner is not None:
        runner.send_signal(signal.SIGTERM)  # it stops its running members, then exits
        wait_gone([runner], grace_s + 30)
        if runner_process(sweep_dir) is not None:
            runner.kill()
    summary = sweep_summary(store, sweep_dir)
    for run_id, status in summary.statuses.items():
        if status == "running":
            stop(store.root / run_id, grace_s=grace_s)
        elif status == "queued":
            update_run_json(store.root / run_id, status="stopped", ended_at=time.time(),
                            reason="the sweep was stopped before this run started")
    return sweep_summary(store, sweep_dir).statuses
