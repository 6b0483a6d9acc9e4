"""Starting a new run or a sweep from an experiment: the one path the CLI and the app share.

start_run creates the run folder and launches it (launch() runs the launch checks under the
run's lock); a run that did not start is taken back, so a refused launch leaves nothing behind.
start_sweep checks every member before anything is queued, queues them and starts the detached
runner, which launches them one by one (runs/sweep_runner.py) with the same launch().
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tui_tune.config import Experiment, expand
from tui_tune.runs.control import end_processes
from tui_tune.runs.launch import LaunchError, launch
from tui_tune.runs.preflight import members_problems
from tui_tune.runs.procs import all_processes
from tui_tune.runs.store import RunStore
from tui_tune.runs.sweep import create_sweep, runner_process, start_runner, sweep_summary

TAKE_BACK_GRACE_S = 5.0  # a launcher that got going before the failure has nothing to save


def start_run(store: RunStore, experiment: Experiment, preset_name: str) -> Path:
    """Create, check and launch a run; returns its folder. LaunchError (the checks, or a run
    already running) or the OSError of a full or read-only disk when it did not start, and then
    its folder is gone again."""
    run_dir = store.create(experiment, preset_name)
    try:
        launch(run_dir)
    except BaseException:  # Ctrl-C while the data files are read included
        _take_back(run_dir)
        raise
    return run_dir


def start_sweep(store: RunStore, experiment: Experiment, preset_name: str) -> tuple[Path, int]:
    """Check every member, queue them and start the runner; returns (sweep folder, number of
    runs). LaunchError before anything is written when a member could not start here."""
    members = list(expand(experiment))
    problems = members_problems(members)
    if problems:
        raise LaunchError(problems)
    sweep_dir = create_sweep(store, experiment, preset_name)
    try:
        start_runner(sweep_dir)
    except BaseException:
        if runner_process(sweep_dir) is None:  # no runner: nothing will ever start them
            for run_dir in _members(store, sweep_dir):
                shutil.rmtree(run_dir, ignore_errors=True)
            shutil.rmtree(sweep_dir, ignore_errors=True)
        raise
    return sweep_dir, len(members)


def _take_back(run_dir: Path) -> None:
    """Remove a run that failed to start; a launcher that got going before the failure (run.json
    could not be written) is ended first, so no process outlives its folder."""
    end_processes(all_processes(run_dir), TAKE_BACK_GRACE_S)
    shutil.rmtree(run_dir, ignore_errors=True)


def _members(store: RunStore, sweep_dir: Path) -> list[Path]:
    return [store.root / run_id for run_id in sweep_summary(store, sweep_dir).run_ids]
