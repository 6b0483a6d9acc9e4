"""Sweeps on the tiny demo model: a detached runner runs the grid one run at a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
import pytest
from test_runs_process import demo_overrides, reached_step, wait_for

from tui_tune.config.presets import resolve
from tui_tune.runs.files import update_run_json
from tui_tune.runs.procs import marker_env
from tui_tune.runs.store import RunStore
from tui_tune.runs.sweep import create_sweep, runner_process, start_runner, stop_sweep
from tui_tune.runs.sweep_runner import SweepRunner

pytestmark = pytest.mark.slow


def make_sweep(tmp_path, demo, *overrides):
    experiment = resolve("demo-tiny", demo_overrides(demo, *overrides)).experiment
    store = RunStore(tmp_path / "runs")
    return store, create_sweep(store, experiment, "demo-tiny")


def test_stopping_a_sweep_stops_its_run_and_cancels_the_queue(tmp_path, demo_assets):
    store, sweep_dir = make_sweep(tmp_path, demo_assets, "training.max_steps=500",
                                  "sweep.training.lr=[0.001, 0.002]")
    first, second = json.loads((sweep_dir / "sweep.json").read_text())["runs"]
    start_runner(sweep_dir)
    wait_for(reached_step(store.root / first, 1), 150, "the first run to train")
    runner = runner_process(sweep_dir)
    statuses = stop_sweep(store, sweep_dir, grace_s=60)
    assert statuses == {first: "stopped", second: "stopped"}
    assert not runner.is_running() or runner.status() == "zombie"
    assert not (store.root / second / "events.jsonl").exists()


def test_a_forged_sweep_json_never_gets_another_process_signalled(tmp_path, demo_assets):
    store, sweep_dir = make_sweep(tmp_path, demo_assets, "sweep.training.lr=[0.001, 0.002]")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        data = json.loads((sweep_dir / "sweep.json").read_text())
        data.update(runner_pid=bystander.pid,
                    runner_start_time=psutil.Process(bystander.pid).create_time())
        (sweep_dir / "sweep.json").write_text(json.dumps(data))
        assert runner_process(sweep_dir) is None
        stop_sweep(store, sweep_dir, grace_s=1)
        assert bystander.poll() is None  # still alive: never signalled
    finally:
        bystander.kill()
        bystander.wait()


def test_a_restarted_runner_gives_each_gpu_one_run(tmp_path, demo_assets):
    """One run per listed GPU; a runner started again (`sweep --continue`) learns which GPU a
    still-running member holds from its run.json instead of starting a second run on it."""
    store, sweep_dir = make_sweep(tmp_path, demo_assets, "environment.gpus=[0, 1]",
                                  "sweep.training.lr=[0.001, 0.002, 0.004]")
    first, second, third = json.loads((sweep_dir / "sweep.json").read_text())["runs"]
    assert json.loads((sweep_dir / "sweep.json").read_text())["gpus"] == [0, 1]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                               start_new_session=True,
                               env={**os.environ, **marker_env(store.root / first)})
    try:
        update_run_json(store.root / first, launched_at=time.time(), pid=sleeper.pid,
                        pid_start_time=psutil.Process(sleeper.pid).create_time(),
                        cuda_visible_devices="0")
        runner = SweepRunner(sweep_dir)
        assert runner._free_slots([0, 1], [first], [second, third]) == [(second, [1])]
        assert runner._free_slots([0, 1], [], [second, third]) == [(second, [0]), (third, [1])]
        assert SweepRunner(sweep_dir)._free_slots(None, [first], [second]) == []
    finally:
        sleeper.kill()
        sleeper.wait()
