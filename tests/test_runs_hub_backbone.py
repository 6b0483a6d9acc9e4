"""A hub backbone (the built-in `lora` preset's) is refused before launch when it is neither in
the Hugging Face cache nor downloadable now: one check naming general.backbone and what to do,
not a minute of the hub client's retries in the worker (issue 21 minor 18)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import constants

from tui_tune.config.presets import resolve
from tui_tune.runs.preflight import preflight

HUB_ID = "Qwen/Qwen2.5-0.5B"


@pytest.fixture
def empty_cache(tmp_path, monkeypatch, preset_workdir) -> Path:
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return cache


def cache_model(cache: Path, repo_id: str) -> None:
    """The files the hub client leaves in its cache after downloading a model's config."""
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    snapshot = folder / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")


def backbone_problems(backbone: str = HUB_ID) -> list[str]:
    exp = resolve("demo-tiny", [f'general.backbone="{backbone}"']).experiment
    return [p.message for p in preflight(exp, cuda_devices=0) if p.key == "general.backbone"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_and_not_cached_is_one_problem_saying_what_to_do(empty_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (message,) = backbone_problems()
    assert HUB_ID in message and "HF_HUB_OFFLINE is set" in message
    assert f"hf download {HUB_ID}" in message and "local model folder" in message


def test_an_unreachable_hub_is_named(empty_cache, monkeypatch):
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    (message,) = backbone_problems()
    assert "cannot be reached" in message and "127.0.0.1" in message


def test_a_cached_or_reachable_hub_model_passes(empty_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache_model(empty_cache, HUB_ID)
    assert backbone_problems() == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert backbone_problems("Qwen/Qwen2.5-7B") == []
    assert backbone_problems("demo/model") == []  # a local folder is never looked up


def test_run_lora_offline_is_refused_before_launch(tmp_path):
    env = {**os.environ, "TUI_TUNE_RUNS": str(tmp_path / "runs"), "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf")}
    (tmp_path / "demo" / "data").mkdir(parents=True)
    (tmp_path / "demo" / "data" / "train.jsonl").write_text('{"prompt": "a", "answer": "b"}\n')
    result = subprocess.run([sys.executable, "-m", "tui_tune", "run", "lora", "--detach"],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
                            check=False)
    assert result.returncode != 0
    backbone = [line for line in result.stderr.splitlines() if "general.backbone" in line]
    assert len(backbone) == 1 and "not downloaded here" in backbone[0], result.stderr
    assert not any((tmp_path / "runs").glob("*/events.jsonl"))
