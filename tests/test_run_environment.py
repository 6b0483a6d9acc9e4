"""Every start event records what the run ran on; `tui-tune ls --json` shows the latest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tui_tune.config.presets import resolve
from tui_tune.events import ENVIRONMENT_FIELDS, encode, make_event
from tui_tune.runs.store import RunStore
from tui_tune.train.environment import run_environment, source_commit

GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="git is not installed")


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], check=True, capture_output=True, text=True).stdout.strip()


def repo_with_package(folder: Path, package_at: str) -> Path:
    """A git repository with one commit holding a tui_tune package at `package_at`."""
    package = folder / package_at / "tui_tune"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("__version__ = 'x'\n")
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "one")
    return package


@needs_git
def test_source_commit_is_the_checkout_that_tui_tune_runs_from(tmp_path):
    package = repo_with_package(tmp_path, ".")
    assert source_commit(package) == (git(tmp_path, "rev-parse", "HEAD"), False)
    (package / "__init__.py").write_text("__version__ = 'y'\n")
    assert source_commit(package)[1] is True


@needs_git
def test_an_installed_copy_inside_some_repository_has_no_commit(tmp_path):
    """A venv's site-packages inside a project checkout is not tui-tune's own source."""
    package = repo_with_package(tmp_path, ".venv/lib/python3.11/site-packages")
    assert source_commit(package) == (None, None)
    assert source_commit(tmp_path / "not-a-repo" / "tui_tune") == (None, None)


def test_environment_names_this_interpreter_and_libraries_and_never_fails(monkeypatch):
    import torch
    import transformers

    monkeypatch.setenv("PATH", "")  # no git at all: the commit is just unknown
    env = run_environment()
    assert set(env) == set(ENVIRONMENT_FIELDS)
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["torch"] == torch.__version__ and env["transformers"] == transformers.__version__
    assert env["git_commit"] is None and env["tui_tune"]
    if not torch.cuda.is_available():
        assert env["cuda"] is None and env["gpus"] == [] and env["driver"] is None


def ls_json(cwd: Path) -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "tui_tune", "ls", "--json"], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=True,
                          env={**os.environ}, stdin=subprocess.DEVNULL)
    return json.loads(done.stdout)


def test_ls_json_shows_what_the_latest_start_ran_on(preset_workdir):
    store = RunStore()
    run_dir = store.create(resolve("demo-tiny").experiment, "demo-tiny")
    start = {"run_id": run_dir.name, "world_size": 1, "devices": ["cpu"], "params_total": 1,
             "params_trainable": 1, "steps_total": 4, "train_rows": 1, "val_rows": 1}
    first = {"python": "3.11.7", "torch": "2.13.0+cpu", "cuda": None, "gpus": []}
    resumed = {"python": "3.12.1", "torch": "2.13.0", "cuda": "12.8", "driver": "570.1",
               "gpus": ["NVIDIA H100 80GB HBM3"], "git_commit": "abc123"}
    events = [make_event("start", **start, environment=first),
              make_event("end", status="stopped"),
              make_event("start", **start, environment=resumed),  # a resume on a GPU box
              make_event("end", status="completed")]
    (run_dir / "events.jsonl").write_text("".join(encode(e) for e in events))
    rows = ls_json(preset_workdir)
    assert rows[0]["run_id"] == run_dir.name and rows[0]["environment"] == resumed
    (run_dir / "events.jsonl").write_text(encode(make_event("start", **start)))  # an old run
    assert ls_json(preset_workdir)[0]["environment"] is None
