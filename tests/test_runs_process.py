"""Real detached runs of the tiny demo model, through the Python API: stopping a two-process
run reaches every rank; a worker killed outright becomes `died`. (Surviving the launcher,
Ctrl-C, stop and resume are covered through the CLI in test_runs_cli_live.py.)

Each launch costs ~9 s before the first step, so every test uses one short run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from worker_env import worker_env

from tui_tune.config.presets import resolve
from tui_tune.runs.control import stop
from tui_tune.runs.follow import read_events
from tui_tune.runs.launch import launch
from tui_tune.runs.procs import all_processes, rank_records
from tui_tune.runs.status import run_state, run_status
from tui_tune.runs.store import RunStore

pytestmark = pytest.mark.slow


def demo_overrides(demo: Path, *more: str) -> list[str]:
    return [f'general.backbone="{demo / "model"}"',
            f'dataset.train_file="{demo / "data" / "train.jsonl"}"',
            "training.eval_every_steps=1000", "logging.log_every_steps=1", *more]


def create_run(tmp_path: Path, demo: Path, *overrides: str) -> Path:
    experiment = resolve("demo-tiny", demo_overrides(demo, *overrides)).experiment
    # spaces, quotes and non-ASCII in the path: the argv is a list, never a shell string
    return RunStore(tmp_path / "my runs (ä) 'x'").create(experiment, "demo-tiny")


def wait_for(predicate, timeout_s: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def reached_step(run_dir: Path, step: int):
    """True once the run logged `step`; fails at once (with console.log) if the run ended first."""
    def check() -> bool:
        summary = RunStore(run_dir.parent).summary(run_dir)
        if summary.step >= step:
            return True
        if summary.status not in ("running", "queued"):
            raise AssertionError(f"run ended ({summary.status}) before step {step}:\n"
                                 + console(run_dir))
        return False
    return check


def finished(run_dir: Path):
    return lambda: run_status(run_dir) != "running"


def console(run_dir: Path) -> str:
    return (run_dir / "console.log").read_text(errors="replace")[-3000:]


def steps_of(run_dir: Path) -> list[int]:
    return [e["step"] for e in read_events(run_dir / "events.jsonl") if e["kind"] == "step"]


def test_stop_reaches_every_rank_of_a_two_process_run(tmp_path, demo_assets):
    run_dir = create_run(tmp_path, demo_assets, "training.max_steps=400",
                         "environment.num_processes=2")
    launch(run_dir)
    wait_for(reached_step(run_dir, 2), 150, "the first steps")
    ranks = wait_for(lambda: len(rank_records(run_dir)) == 2 and rank_records(run_dir), 30,
                     "both ranks to register")
    procs = all_processes(run_dir)
    assert {r["pid"] for r in ranks} <= {p.pid for p in procs}
    assert stop(run_dir, grace_s=60) == "stopped", console(run_dir)
    alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, alive
    assert sorted((run_dir / "checkpoints").glob("step-*"))


def test_killed_worker_becomes_died_with_the_console_tail(tmp_path, demo_assets):
    run_dir = create_run(tmp_path, demo_assets, "training.max_steps=400")
    launch(run_dir)
    wait_for(reached_step(run_dir, 2), 120, "the first steps")
    (rank,) = rank_records(run_dir)
    os.kill(rank["pid"], signal.SIGKILL)
    wait_for(finished(run_dir), 60, "the launcher to notice")
    state = run_state(run_dir)
    assert state.status == "died"
    assert "console.log ends with" in state.reason and "accelerate" in state.reason
    assert not all_processes(run_dir)


RESUME_ON_GO = ("import sys\n"
                "from pathlib import Path\n"
                "from tui_tune.runs.launch import LaunchError, resume\n"
                "print('ready', flush=True)\n"
                "sys.stdin.readline()\n"
                "try:\n"
                "    print('started', resume(Path(sys.argv[1])), flush=True)\n"
                "except LaunchError as error:\n"
                "    print('refused', error, flush=True)\n")


def test_two_resumes_at_the_same_moment_start_one_worker(tmp_path, demo_assets):
    """Two processes resume one run at once (released together after their imports): one
    starts it, the other is refused; one worker trains; a CLI resume is refused too."""

    from tui_tune.runs.procs import host_processes, marked_processes

    run_dir = create_run(tmp_path, demo_assets, "training.max_steps=400")
    racers = [subprocess.Popen([sys.executable, "-c", RESUME_ON_GO, str(run_dir)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               env=worker_env()) for _ in range(2)]
    try:
        assert [r.stdout.readline().strip() for r in racers] == ["ready", "ready"]
        for racer in racers:
            racer.stdin.write("go\n")
        for racer in racers:
            racer.stdin.flush()
        answers = sorted((r.communicate(timeout=120)[0].strip() for r in racers), reverse=True)
        assert [a.split()[0] for a in answers] == ["started", "refused"], answers
        assert "is already running" in answers[1]
        wait_for(reached_step(run_dir, 2), 150, "the first steps")
        workers = [r for r in host_processes()
                   if r.run_dir == str(run_dir.resolve()) and r.role == "worker"]
        assert len(workers) == 1, workers
        cli = subprocess.run([sys.executable, "-m", "tui_tune", "resume", "--detach",
                              str(run_dir)], env={**worker_env(), "TUI_TUNE_RUNS":
                                                  str(run_dir.parent)},
                             capture_output=True, text=True, timeout=120, check=False)
        assert cli.returncode == 2 and "is already running" in cli.stderr, cli.stderr
    finally:
        assert stop(run_dir, grace_s=60) == "stopped", console(run_dir)
    assert not marked_processes(str(run_dir.resolve()))


def test_a_run_whose_folder_is_deleted_ends_and_ps_showed_it(tmp_path, demo_assets):
    """Deleting the run directory under a training run: the worker notices at its next log step
    and ends, the launcher with it; before that `tui-tune ps` listed both."""

    from tui_tune.runs.procs import marked_processes

    run_dir = create_run(tmp_path, demo_assets, "training.max_steps=20000")
    launch(run_dir)
    wait_for(reached_step(run_dir, 2), 150, "the first steps")
    listing = subprocess.run([sys.executable, "-m", "tui_tune", "ps"], env=worker_env(),
                             capture_output=True, text=True, timeout=60, check=False).stdout
    roles = {line.split()[2] for line in listing.splitlines() if str(run_dir.resolve()) in line}
    assert {"launcher", "worker"} <= roles, listing
    procs = marked_processes(str(run_dir.resolve()))
    shutil.rmtree(run_dir)
    try:
        wait_for(lambda: not marked_processes(str(run_dir.resolve())), 120,
                 "the worker to notice its folder is gone")
    finally:
        for proc in procs:
            if proc.is_running():
                proc.kill()
