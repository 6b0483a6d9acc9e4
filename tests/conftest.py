"""Shared fixtures: the offline demo assets (built once per session) and run directories."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

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
