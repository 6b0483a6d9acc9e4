"""Sweeps over the newer problem types' own settings: every point of a grid over dpo's beta,
grpo's lr and num_generations, seq2seq's max_target_length and QA's doc_stride becomes a run of
that type with the value swept in, and a dpo sweep runs to completion under the sweep runner
with `sweep --list` naming each point's preference accuracy (the runner itself does not depend
on the type: the other types' runs are launched by the same code)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from test_runs_process import wait_for

from tui_tune.config.presets import resolve
from tui_tune.runs.status import run_status
from tui_tune.runs.store import RunStore
from tui_tune.runs.sweep import create_sweep, list_sweeps, start_runner
from tui_tune.train.setup import read_experiment

# preset, backbone folder, data file, the swept settings and their values
CASES = {
    "dpo": ("demo-dpo", "model", "preference.jsonl", {"training.beta": [0.1, 0.3]}),
    "grpo": ("demo-grpo", "model", "train.jsonl", {"training.lr": [0.001, 0.002],
                                                   "training.num_generations": [2, 4]}),
    "seq2seq": ("demo-seq2seq", "seq2seq", "numbers.jsonl",
                {"tokenizer.max_target_length": [16, 32]}),
    "extractive_qa": ("demo-qa", "encoder", "qa.jsonl", {"dataset.doc_stride": [32, 64]}),
}


def sweep_of(kind: str, demo, root, *more: str):
    preset, backbone, data, grid = CASES[kind]
    experiment = resolve(preset, [
        f'general.backbone="{demo / backbone}"', f'dataset.train_file="{demo / "data" / data}"',
        *more, *(f"sweep.{key}={values}" for key, values in grid.items())]).experiment
    store = RunStore(root)
    sweep_dir = create_sweep(store, experiment, preset)
    return store, sweep_dir, json.loads((sweep_dir / "sweep.json").read_text())["runs"]


@pytest.mark.parametrize("kind", sorted(CASES))
def test_every_point_of_a_newer_types_grid_is_a_run_of_that_type(kind, tmp_path, demo_assets):
    store, _, runs = sweep_of(kind, demo_assets, tmp_path / "runs")
    grid = CASES[kind][3]
    points = [len(values) for values in grid.values()]
    assert len(runs) == (points[0] * points[1] if len(points) == 2 else points[0])
    seen = set()
    for run in runs:
        exp = read_experiment(store.root / run)
        assert exp.general.problem_type == kind
        values = json.loads((store.root / run / "run.json").read_text())["sweep_values"]
        for key, value in values.items():
            group, name = key.split(".")
            assert getattr(getattr(exp, group), name) == value
        seen.add(tuple(values[key] for key in grid))
    assert len(seen) == len(runs)  # each combination once


@pytest.mark.slow
@pytest.mark.xdist_group("sweep-types")
def test_a_dpo_sweep_over_beta_runs_and_lists_each_points_preference_accuracy(
        tmp_path, demo_assets):
    store, sweep_dir, runs = sweep_of(
        "dpo", demo_assets, tmp_path / "runs", "training.max_steps=2",
        "training.eval_every_steps=2", "training.evaluate_before_training=false",
        "prediction.num_samples=1")
    start_runner(sweep_dir)
    wait_for(lambda: list_sweeps(store)[0].done, 300, "the sweep to finish")
    assert [run_status(store.root / r) for r in runs] == ["completed"] * 2, \
        (sweep_dir / "runner.log").read_text()
    listing = subprocess.run(
        [sys.executable, "-m", "tui_tune", "--runs-dir", str(store.root), "sweep", "--list"],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    assert listing.returncode == 0, listing.stderr
    for run, beta in zip(runs, (0.1, 0.3)):
        last = [json.loads(line) for line in (store.root / run / "events.jsonl").open()
                if '"eval"' in line][-1]
        assert last["metric"] == "preference_accuracy"
        line = next(line for line in listing.stdout.splitlines() if run in line)
        assert f"beta={beta}" in line and "completed" in line
        shown = re.search(r"preference accuracy ([0-9.]+)", line)
        assert shown and float(shown.group(1)) == pytest.approx(
            last["preference_accuracy"], abs=0.005), line
