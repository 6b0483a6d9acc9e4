"""Two ranks on the CPU (gloo): world size 2, different shards, one agreed stop, a completed resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import read_events
from worker_env import worker_env

pytestmark = [
    pytest.mark.slow, pytest.mark.xdist_group("train-ddp"),
    pytest.mark.skipif(__import__("torch").cuda.device_count() == 1,
                       reason="one GPU: two nccl ranks cannot share it; the gloo CPU run covers "
                       "two ranks")]

ACCELERATE = str(Path(sys.executable).with_name("accelerate"))


def launch(run_dir: Path, *extra: str) -> subprocess.Popen:
    argv = [ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
            "-m", "tui_tune.train", str(run_dir), *extra]
    return subprocess.Popen(argv, env=worker_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory, make_run_dir):
    """Stopped by a SIGTERM to rank 1 alone at step >= 4, then resumed to the end."""
    run_dir = make_run_dir(tmp_path_factory.mktemp("runs") / "ddp", [
        "training.max_steps=16", "training.eval_every_steps=8", "logging.log_every_steps=1"])
    proc = launch(run_dir)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if any(e["step"] >= 4 for e in read_events(run_dir, "step")):
            break
        time.sleep(0.1)
    rank1 = json.loads((run_dir / "ranks" / "rank-1.json").read_text())
    os.kill(rank1["pid"], signal.SIGTERM)
    first = proc.communicate(timeout=180)[0].decode(errors="replace")
    stopped_end = read_events(run_dir, "end")[-1]
    ranks = [json.loads((run_dir / "ranks" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    resumed = launch(run_dir, "--resume")
    second = resumed.communicate(timeout=240)[0].decode(errors="replace")
    return run_dir, stopped_end, ranks, (proc.returncode, first), (resumed.returncode, second)


def test_both_ranks_see_world_size_two_and_different_shards(two_rank_run):
    run_dir, _, ranks, _, _ = two_rank_run
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["world_size"] == 2 for r in ranks)
    assert ranks[0]["pid"] != ranks[1]["pid"]
    assert set(ranks[0]["first_batch"]).isdisjoint(ranks[1]["first_batch"])
    assert read_events(run_dir, "start")[0]["world_size"] == 2


def test_a_signal_to_one_rank_stops_both_with_a_checkpoint(two_rank_run):
    run_dir, end, _, (code, output), _ = two_rank_run
    assert code == 0, output[-3000:]
    assert end["status"] == "stopped"
    reasons = [c["reason"] for c in read_events(run_dir, "checkpoint") if c["step"] == end["step"]]
    assert "signal" in reasons
    newest = max((run_dir / "checkpoints").glob("step-*"), key=lambda p: int(p.name[5:]))
    assert (newest / "rng-0.pt").is_file() and (newest / "rng-1.pt").is_file()  # one per rank


def test_the_two_rank_run_resumes_and_completes(two_rank_run):
    run_dir, _, _, _, (code, output) = two_rank_run
    assert code == 0, output[-3000:]
    assert read_events(run_dir, "end")[-1]["status"] == "completed"
    assert max(e["step"] for e in read_events(run_dir, "step")) == 16
    assert (run_dir / "final" / "model.safetensors").is_file()
