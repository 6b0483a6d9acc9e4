"""Classification and regression runs stop and resume with the uninterrupted losses and
metrics (LoRA with dropout: the RNG state counts), and a sweep runs them."""

from __future__ import annotations

import json

import pytest
from conftest import read_events, run_worker
from test_runs_process import wait_for
from test_train_resume import losses, stop_at_step

from tui_tune.config.presets import resolve
from tui_tune.runs.status import run_status
from tui_tune.runs.store import RunStore
from tui_tune.runs.sweep import create_sweep, list_sweeps, start_runner

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("train-labels-resume")]

SETTINGS = ['adapter.method="lora"', "adapter.dropout=0.1", "training.max_steps=24",
            "training.eval_every_steps=12", "logging.log_every_steps=1", "training.lr=0.003",
            "training.batch_size=16", "training.evaluate_before_training=false"]
KINDS = {"classification": ("demo-classify", "sentiment.jsonl"),
         "regression": ("demo-regress", "weather.jsonl")}


def settings(demo, kind: str) -> list[str]:
    _, data = KINDS[kind]
    return [f'dataset.train_file="{demo / "data" / data}"', *SETTINGS]


@pytest.fixture(scope="module", params=sorted(KINDS))
def pair(request, tmp_path_factory, make_run_dir, demo_assets):
    """(uninterrupted run, run stopped at step 8 and resumed) of one problem type."""
    kind = request.param
    preset, _ = KINDS[kind]
    root = tmp_path_factory.mktemp(kind)
    whole = make_run_dir(root / "whole", settings(demo_assets, kind), preset=preset)
    result = run_worker(whole)
    assert result.returncode == 0, result.stderr[-3000:]
    stopped = stop_at_step(make_run_dir(root / "stopped", settings(demo_assets, kind),
                                        preset=preset), 8)
    end = read_events(stopped, "end")[-1]
    assert end["status"] == "stopped" and end["step"] < 24
    result = run_worker(stopped, "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    return whole, stopped


def test_resume_matches_the_uninterrupted_losses_and_metrics(pair):
    whole, resumed = pair
    assert read_events(resumed, "start")[1]["resumed_from_step"] >= 8
    assert read_events(resumed, "end")[-1]["status"] == "completed"
    assert sorted(losses(resumed)) == list(range(1, 25)) == sorted(losses(whole))
    for step, loss in losses(whole).items():
        assert losses(resumed)[step] == pytest.approx(loss, rel=1e-5, abs=1e-6), step
    last_whole, last_resumed = read_events(whole, "eval")[-1], read_events(resumed, "eval")[-1]
    assert last_whole["step"] == last_resumed["step"] == 24
    for name in ("val_loss", "metric_value"):
        assert last_resumed[name] == pytest.approx(last_whole[name], rel=1e-5), name
    assert (resumed / "final" / "adapter_model.safetensors").is_file()


def test_a_classification_sweep_runs_each_point(tmp_path, demo_assets):
    experiment = resolve("demo-classify", [
        f'general.backbone="{demo_assets / "model"}"',
        f'dataset.train_file="{demo_assets / "data" / "sentiment.jsonl"}"',
        "training.max_steps=4", "training.eval_every_steps=4",
        "training.evaluate_before_training=false", "sweep.training.lr=[0.001, 0.003]"]).experiment
    store = RunStore(tmp_path / "runs")
    sweep_dir = create_sweep(store, experiment, "demo-classify")
    runs = json.loads((sweep_dir / "sweep.json").read_text())["runs"]
    start_runner(sweep_dir)
    wait_for(lambda: list_sweeps(store)[0].done, 300, "the sweep to finish")
    assert [run_status(store.root / r) for r in runs] == ["completed"] * 2, \
        (sweep_dir / "runner.log").read_text()
    for run in runs:
        last = read_events(store.root / run, "eval")[-1]
        assert last["metric"] == "accuracy" and len(last["confusion"]) == 3
