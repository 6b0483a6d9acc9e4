"""Fixtures for the app tests: a working folder with its own presets, config dir and runs,
and run directories with fixed, hand-written events (no clocks, no randomness), so that
snapshots are the same on every machine."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from tui_tune.config.presets import builtin_dir, experiment_toml, resolve

FIXED_T = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd with an empty ./presets, TUI_TUNE_CONFIG_DIR and TUI_TUNE_RUNS inside tmp_path."""
    (tmp_path / "presets").mkdir()
    (tmp_path / "config").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUI_TUNE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TUI_TUNE_RUNS", str(tmp_path / "runs"))
    return tmp_path


def step_event(step: int, loss: float, t0: float = FIXED_T) -> dict:
    return {"v": 1, "t": t0 + step, "kind": "step", "step": step, "epoch": step / 100,
            "loss": loss, "lr": 1e-3 * min(1.0, step / 10), "grad_norm": 1.0 + 0.5 * math.sin(step),
            "tokens": 512, "tokens_per_s": 4000.0 + 10 * (step % 7), "step_time_s": 0.125,
            "mem_allocated_gib": 0.5, "mem_reserved_gib": 0.75, "mem_peak_gib": 0.625}


def fixed_events(steps: int = 120, total: int = 200, status: str | None = "stopped",
                 scale: float = 1.0) -> list[dict]:
    events = [{"v": 1, "t": FIXED_T, "kind": "start", "run_id": "x", "world_size": 1,
               "devices": ["cpu"], "params_total": 900_000, "params_trainable": 900_000,
               "steps_total": total, "train_rows": 1000, "val_rows": 50}]
    for step in range(1, steps + 1):
        events.append(step_event(step, scale * 3.0 / (1 + step / 25)))
        if step % 40 == 0:
            events.append({"v": 1, "t": FIXED_T + step, "kind": "eval", "step": step,
                           "val_loss": scale * 3.2 / (1 + step / 30), "perplexity": 5.0,
                           "metric": "perplexity", "metric_value": 10.0 - step / 20})
            for a in (1, 2):
                events.append({"v": 1, "t": FIXED_T + step, "kind": "sample", "step": step,
                               "prompt": f"What is {a} + {step // 40}?",
                               "generation": str(a + step // 40 if step > 40 else 0),
                               "reference": str(a + step // 40)})
    if status:
        events.append({"v": 1, "t": FIXED_T + steps + 1, "kind": "end", "status": status})
    return events


def write_run(root: Path, run_id: str, preset: str = "demo-tiny", overrides=(),
              events: list[dict] | None = None, console: str = "",
              info: dict | None = None) -> Path:
    """A run directory as the runs layer writes it, with fixed times and contents (`info`:
    more run.json fields, e.g. a sweep member's sweep_id and sweep_values)."""
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    experiment = resolve(str(builtin_dir() / f"{preset}.toml"), list(overrides)).experiment
    (run_dir / "config.toml").write_text(experiment_toml(experiment), encoding="utf-8")
    info = {"run_id": run_id, "name": experiment.general.experiment_name, "preset": preset,
            "status": "queued", "created_at": FIXED_T, **(info or {})}
    (run_dir / "run.json").write_text(json.dumps(info), encoding="utf-8")
    events = fixed_events() if events is None else events
    with open(run_dir / "events.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(event) + "\n" for event in events)
    (run_dir / "console.log").write_text(console or "[info] loading model\n[info] training\n",
                                         encoding="utf-8")
    return run_dir


@pytest.fixture
def make_run(workdir: Path) -> Callable[..., Path]:
    def make(run_id: str, **kwargs) -> Path:
        return write_run(workdir / "runs", run_id, **kwargs)
    return make


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until `condition()` holds (the app loads runs in threads)."""
    steps = int(timeout / 0.05)
    for _ in range(steps):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


def _start(total: int = 200) -> dict:
    return {"v": 1, "t": FIXED_T, "kind": "start", "run_id": "x", "world_size": 1,
            "devices": ["cpu"], "params_total": 900_000, "params_trainable": 900_000,
            "steps_total": total, "train_rows": 1000, "val_rows": 50}


def confusion_counts(classes: int, step: int) -> list[list[int]]:
    """A fixed confusion matrix that gets better with the step: row i has 20 + i rows on the
    diagonal and 3 - step // 40 + i in every other cell."""
    return [[(20 if i == j else 3 - step // 40) + i for j in range(classes)]
            for i in range(classes)]


def classification_eval(step: int, labels: list[str]) -> dict:
    accuracy = 0.5 + step / 400
    return {"v": 1, "t": FIXED_T + step, "kind": "eval", "step": step,
            "val_loss": 1.2 / (1 + step / 30), "metric": "accuracy", "metric_value": accuracy,
            "accuracy": accuracy, "auc": 0.8, "logloss": 0.5, "f1": accuracy - 0.05,
            "confusion": confusion_counts(len(labels), step), "labels": labels}


def classification_events(labels: tuple[str, ...] = ("negative", "neutral", "positive"),
                          steps: int = 120) -> list[dict]:
    """A classification run as the worker writes it: evals with accuracy & co., the confusion
    matrix and class names; two samples per eval, the second one wrong."""
    events, labels = [_start()], list(labels)
    for step in range(1, steps + 1):
        events.append(step_event(step, 1.1 / (1 + step / 25)))
        if step % 40 == 0:
            events.append(classification_eval(step, labels))
            for k, (truth, predicted) in enumerate([(labels[0], labels[0]),
                                                    (labels[-1], labels[1])]):
                probabilities = {name: 0.8 if name == predicted else 0.2 / (len(labels) - 1)
                                 for name in labels}
                events.append({"v": 1, "t": FIXED_T + step, "kind": "sample", "step": step,
                               "prompt": f"review {k}: it was {truth}",
                               "generation": f"{predicted} (0.80)", "reference": truth,
                               "predicted": predicted, "truth": truth,
                               "probabilities": probabilities})
    events.append({"v": 1, "t": FIXED_T + steps + 1, "kind": "end", "status": "completed"})
    return events


def regression_events(steps: int = 120) -> list[dict]:
    """A regression run: MSE as its metric, samples with predicted and true values."""
    events = [_start()]
    for step in range(1, steps + 1):
        events.append(step_event(step, 9.0 / (1 + step / 10)))
        if step % 40 == 0:
            mse = 9.0 / (1 + step / 10)
            events.append({"v": 1, "t": FIXED_T + step, "kind": "eval", "step": step,
                           "val_loss": mse, "metric": "mse", "metric_value": mse, "mse": mse,
                           "mae": mse ** 0.5, "r2": 1 - mse / 9})
            for k, (predicted, truth) in enumerate([(2.75, 2.5), (3.0, 4.0)]):
                events.append({"v": 1, "t": FIXED_T + step, "kind": "sample", "step": step,
                               "prompt": f"warm and mild {k}", "generation": f"{predicted:g}",
                               "reference": f"{truth:g}", "predicted": [predicted],
                               "truth": [truth]})
    events.append({"v": 1, "t": FIXED_T + steps + 1, "kind": "end", "status": "completed"})
    return events


def token_events(steps: int = 120) -> list[dict]:
    """A token classification run: F1 as its metric; one tagged sample per eval, its last
    tag wrong until the last eval."""
    events = [_start()]
    words = ["John", "lives", "in", "New", "York"]
    truth = ["B-PER", "O", "O", "B-LOC", "I-LOC"]
    for step in range(1, steps + 1):
        events.append(step_event(step, 2.0 / (1 + step / 10)))
        if step % 40 == 0:
            f1 = step / 130
            events.append({"v": 1, "t": FIXED_T + step, "kind": "eval", "step": step,
                           "val_loss": 2.0 / (1 + step / 10), "metric": "f1",
                           "metric_value": f1, "f1": f1, "precision": f1, "recall": f1,
                           "accuracy": 0.9})
            predicted = truth if step == steps else [*truth[:-1], "O"]
            events.append({"v": 1, "t": FIXED_T + step, "kind": "sample", "step": step,
                           "prompt": " ".join(words),
                           "generation": " ".join(f"{w}/{t}" for w, t in zip(words, predicted)),
                           "reference": " ".join(f"{w}/{t}" for w, t in zip(words, truth)),
                           "words": words, "predicted": predicted, "truth": truth})
    events.append({"v": 1, "t": FIXED_T + steps + 1, "kind": "end", "status": "completed"})
    return events
