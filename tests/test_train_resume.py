"""SIGTERM mid-run: checkpoint + `stopped`; --resume continues with the uninterrupted losses."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import read_events, run_worker
from worker_env import worker_env
from worker_fork import start_worker

# one xdist worker per module, so its shared runs happen once under `make test` (-n 2)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("train-resume")]

# LoRA with dropout: the resumed losses match only if the RNG state is restored too
SETTINGS = ['adapter.method="lora"', "adapter.dropout=0.1", "training.max_steps=30",
            "training.eval_every_steps=10", "logging.log_every_steps=1", "training.lr=0.003",
            "training.batch_size=16"]


def losses(run_dir) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in read_events(run_dir, "step")}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, make_run_dir):
    run_dir = make_run_dir(tmp_path_factory.mktemp("runs") / "whole", SETTINGS)
    result = run_worker(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def stop_at_step(run_dir, step: int):
    """The worker on run_dir, sent SIGTERM once `step` is logged; asserts it ended cleanly."""
    proc = start_worker([str(run_dir)], worker_env()) or subprocess.Popen(
        [sys.executable, "-m", "tui_tune.train", str(run_dir)],
        env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if any(e["step"] >= step for e in read_events(run_dir, "step")):
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    output = b"".join(part or b"" for part in proc.communicate(timeout=120)).decode(
        errors="replace")
    assert proc.returncode == 0, output[-3000:]
    return run_dir


def whole_and_resumed(make_run_dir, root, sets: list[str], preset: str, stop_step: int):
    """(the run trained uninterrupted, the same run stopped by SIGTERM once stop_step is logged
    and resumed to the end): the pair every problem type's resume test compares."""
    whole = make_run_dir(root / "whole", sets, preset=preset)
    result = run_worker(whole)
    assert result.returncode == 0, result.stderr[-3000:]
    stopped = stop_at_step(make_run_dir(root / "stopped", sets, preset=preset), stop_step)
    assert read_events(stopped, "end")[-1]["status"] == "stopped"
    result = run_worker(stopped, "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    return whole, stopped


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, make_run_dir):
    """The same run, sent SIGTERM once step 12 is logged."""
    return stop_at_step(make_run_dir(tmp_path_factory.mktemp("runs") / "stopped", SETTINGS), 12)


def test_sigterm_checkpoints_and_ends_stopped(stopped):
    end = read_events(stopped, "end")[-1]
    assert end["status"] == "stopped"
    signal_ckpt = [c for c in read_events(stopped, "checkpoint") if c["reason"] == "signal"]
    assert len(signal_ckpt) == 1 and signal_ckpt[0]["step"] == end["step"] < 30
    assert (stopped / f"checkpoints/step-{end['step']}/adapter_model.safetensors").is_file()
    assert json.loads((stopped / "run.json").read_text())["status"] == "stopped"
    assert not (stopped / "final").exists()


def test_resume_matches_the_uninterrupted_losses(stopped, uninterrupted):
    stop_step = read_events(stopped, "end")[-1]["step"]
    result = run_worker(stopped, "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    kinds = [e["kind"] for e in read_events(stopped)]
    assert kinds.count("start") == 2 and kinds[-1] == "end"  # appended, not replaced
    assert read_events(stopped, "start")[1]["resumed_from_step"] == stop_step
    assert read_events(stopped, "end")[-1]["status"] == "completed"
    resumed, whole = losses(stopped), losses(uninterrupted)
    assert sorted(resumed) == list(range(1, 31)) == sorted(whole)
    for step in whole:
        assert resumed[step] == pytest.approx(whole[step], rel=1e-5, abs=1e-6), step
    assert (stopped / "final" / "adapter_model.safetensors").is_file()
