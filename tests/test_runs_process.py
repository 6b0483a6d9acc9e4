"""Real detached runs of the tiny demo model: survive their launcher, stop, resume, die.

Each launch costs ~9 s before the first step, so every test uses one short run and the checks
that can share a run share it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tui_tune.config.presets import resolve
from tui_tune.runs.follow import read_events
from tui_tune.runs.launch import launch, resume, stop
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
    return RunStore(tmp_path / "runs").create(experiment, "demo-tiny")


def wait_for(predicate, timeout_s: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def reached_step(run_dir: Path, step: int):
    return lambda: RunStore(run_dir.parent).summary(run_dir).step >= step


def finished(run_dir: Path):
    return lambda: run_status(run_dir) != "running"


def console(run_dir: Path) -> str:
    return (run_dir / "console.log").read_text(errors="replace")[-3000:]


def steps_of(run_dir: Path) -> list[int]:
    return [e["step"] for e in read_events(run_dir / "events.jsonl") if e["kind"] == "step"]


def test_run_outlives_the_process_that_launched_it(tmp_path, demo_assets):
    run_dir = create_run(tmp_path, demo_assets, "training.max_steps=15")
    script = ("import sys, time; from pathlib import Path; from tui_tune.runs.launch import launch;"
              "launch(Path(sys.argv[1])); print('launched', flush=True); time.sleep(600)")
    parent = subprocess.Popen([sys.executable, "-c", script, str(run_dir)],
                              stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert parent.stdout.readline().strip() == "launched"
    parent.send_signal(signal.SIGKILL)  # the app or CLI vanishing mid-run
    parent.wait()
    assert run_status(run_dir) == "running"
    wait_for(finished(run_dir), 180, "the run to finish")
    state = run_state(run_dir)
    assert state.status == "completed", console(run_dir)
    assert steps_of(run_dir)[-1] == 15
    assert (run_dir / "final").is_dir()
    summary = RunStore(run_dir.parent).summary(run_dir)
    assert (summary.step, summary.steps_total) == (15, 15) and summary.last_loss is not None


def test_stop_checkpoints_then_resume_continues_the_step_count(tmp_path, demo_assets):
    run_dir = create_run(tmp_path, demo_assets, "training.max_steps=40")
    launch(run_dir)
    wait_for(reached_step(run_dir, 3), 120, "the first steps")
    procs = all_processes(run_dir)
    assert len(procs) >= 2  # launcher + worker
    assert stop(run_dir, grace_s=60) == "stopped", console(run_dir)
    assert not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not all_processes(run_dir)
    checkpoints = sorted((run_dir / "checkpoints").glob("step-*"))
    assert checkpoints, "stopping must leave a checkpoint"
    stopped_at = steps_of(run_dir)[-1]
    assert stopped_at < 40

    resume(run_dir)
    assert run_status(run_dir) == "running"
    wait_for(finished(run_dir), 180, "the resumed run to finish")
    assert run_status(run_dir) == "completed", console(run_dir)
    steps = steps_of(run_dir)
    after = steps[steps.index(stopped_at) + 1:]
    assert after and after[0] == stopped_at + 1 and after[-1] == 40
    assert json.loads((run_dir / "run.json").read_text())["launches"] == 2


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
