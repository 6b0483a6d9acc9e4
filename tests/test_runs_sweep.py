"""Sweeps on the tiny demo model: a detached runner runs the grid one run at a time."""

from __future__ import annotations

import itertools
import json

import pytest
from test_runs_process import demo_overrides, reached_step, wait_for

from tui_tune.config.presets import resolve
from tui_tune.runs.status import run_status
from tui_tune.runs.store import RunStore
from tui_tune.runs.sweep import create_sweep, list_sweeps, runner_process, start_runner, stop_sweep

pytestmark = pytest.mark.slow


def make_sweep(tmp_path, demo, *overrides):
    experiment = resolve("demo-tiny", demo_overrides(demo, *overrides)).experiment
    store = RunStore(tmp_path / "runs")
    return store, create_sweep(store, experiment, "demo-tiny")


def test_three_point_sweep_runs_sequentially_to_completion(tmp_path, demo_assets):
    store, sweep_dir = make_sweep(tmp_path, demo_assets, "training.max_steps=4",
                                  "sweep.training.lr=[0.001, 0.002, 0.004]")
    runs = json.loads((sweep_dir / "sweep.json").read_text())["runs"]
    assert len(runs) == 3 and all(run_status(store.root / r) == "queued" for r in runs)
    runner_pid = start_runner(sweep_dir)
    assert runner_process(sweep_dir).pid == runner_pid
    wait_for(lambda: list_sweeps(store)[0].done, 240, "the sweep to finish")
    assert [run_status(store.root / r) for r in runs] == ["completed"] * 3, \
        (sweep_dir / "runner.log").read_text()
    infos = [json.loads((store.root / r / "run.json").read_text()) for r in runs]
    for earlier, later in itertools.pairwise(infos):
        assert later["launched_at"] >= earlier["ended_at"]  # one after another
    lrs = [float(i["name"].rsplit("lr", 1)[1]) for i in infos]
    assert lrs == [0.001, 0.002, 0.004]
    assert {s.sweep_id for s in store.list()} == {sweep_dir.name}


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
