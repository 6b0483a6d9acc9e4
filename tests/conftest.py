"""Shared fixtures: the offline demo assets (built once per session) and run directories."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from worker_env import worker_env

from tui_tune.config.presets import builtin_dir, experiment_toml, resolve


@pytest.fixture(scope="session")
def demo_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with model/ (tokenizer + tiny Llama) and data/ (train.jsonl, chained.jsonl)."""
    from tui_tune.train.demo import prepare

    return prepare(tmp_path_factory.mktemp("demo"))


def write_run_dir(run_dir: Path, demo: Path, overrides: Iterable[str] = (),
                  preset: str = "demo-tiny") -> Path:
    """A run directory whose config.toml is the preset with absolute demo paths + overrides."""
    path = builtin_dir() / f"{preset}.toml"
    sets = [f'general.backbone="{demo / "model"}"',
            f'dataset.train_file="{demo / "data" / "train.jsonl"}"', *overrides]
    experiment = resolve(str(path), sets).experiment
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.toml").write_text(experiment_toml(experiment), encoding="utf-8")
    return run_dir


@pytest.fixture(scope="session")
def make_run_dir(demo_assets: Path) -> Callable[..., Path]:
    """make_run_dir(run_dir, overrides=[...], preset="demo-tiny") -> run_dir with config.toml.

    Overrides are `--set` strings such as "training.max_steps=20"; paths in them should be
    absolute (DEMO is demo_assets, e.g. f'dataset.train_file="{demo_assets}/data/x.jsonl"').
    """
    def make(run_dir: Path, overrides: Iterable[str] = (), preset: str = "demo-tiny") -> Path:
        return write_run_dir(Path(run_dir), demo_assets, overrides, preset)
    return make


def run_worker(run_dir: Path, *extra: str, timeout: float = 300):
    """`python -m tui_tune.train RUN_DIR ...` to completion; returns the CompletedProcess.
    Forked from a process that imported the worker's libraries once (tests/worker_fork.py)."""
    import subprocess
    import sys

    from worker_fork import forked_worker

    argv, env = [str(run_dir), *extra], worker_env()
    done = forked_worker(argv, env, timeout)
    if done is not None:
        return done
    return subprocess.run([sys.executable, "-m", "tui_tune.train", *argv], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def completed_run(run_dir: Path) -> Path:
    """run_worker, asserting the run completed (its stderr tail is the failure message)."""
    result = run_worker(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.fixture
def preset_workdir(tmp_path, monkeypatch):
    """cwd holding the demo-tiny preset's relative files (a one-row data file and a model folder
    with only a config.json), with runs in ./runs: enough to resolve, validate, pass the launch
    preflight and create runs without training."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUI_TUNE_RUNS", raising=False)
    (tmp_path / "demo" / "data").mkdir(parents=True)
    (tmp_path / "demo" / "data" / "train.jsonl").write_text('{"prompt": "1+1", "answer": "2"}\n')
    (tmp_path / "demo" / "model").mkdir()
    (tmp_path / "demo" / "model" / "config.json").write_text("{}")
    return tmp_path


def read_events(run_dir: Path, kind: str | None = None) -> list[dict]:
    from tui_tune.events import decode

    path = Path(run_dir) / "events.jsonl"
    events = [e for e in map(decode, path.read_text().splitlines()) if e] if path.exists() else []
    return [e for e in events if kind is None or e["kind"] == kind]


@pytest.fixture(scope="session")
def talking_run(tmp_path_factory, make_run_dir) -> Path:
    """A completed demo-tiny causal LM run (shortened, one checkpoint kept) that inference,
    serve-model, chat and the LLM judge's tests share; their modules share the xdist group
    "serve" so it is trained once."""
    folder = tmp_path_factory.mktemp("talking")
    run_dir = make_run_dir(folder / "runs" / "talker", [
        "training.max_steps=60", "training.eval_every_steps=60", "training.keep_checkpoints=1"])
    return completed_run(run_dir)


def greedy_answers(run_dir: Path, questions: list[str]) -> tuple[list[str], list[str]]:
    """(each question's generation prompt as text, its answer) the way `tui-tune predict` and
    evaluation make them (run's prediction settings, final/), to compare chat and serving to."""
    import torch

    from tui_tune.train.generation import generate_answers
    from tui_tune.train.model import load_tokenizer
    from tui_tune.train.predict import trained_model
    from tui_tune.train.setup import read_experiment
    from tui_tune.train.tasks import task_for
    from tui_tune.train.tasks.causal_lm import prompt_examples

    exp = read_experiment(run_dir)
    tokenizer = load_tokenizer(exp)
    cpu = torch.device("cpu")
    model = trained_model(exp, task_for(exp), tokenizer, None, Path(run_dir) / "final", cpu)
    examples = prompt_examples([{"prompt": q} for q in questions], exp, tokenizer)
    answers = generate_answers(model, tokenizer, examples, exp.prediction, cpu, 1)
    return [tokenizer.decode(e.prompt_ids) for e in examples], answers
