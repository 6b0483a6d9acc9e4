"""The attached `tui-tune run` on a real tiny run: plain progress without a terminal, and the
Ctrl-C question (stop or detach) inside a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest

from tui_tune.runs.procs import all_processes
from tui_tune.runs.status import run_status
from tui_tune.runs.store import RunStore

pytestmark = pytest.mark.slow


def demo_sets(demo, *more):
    sets = [f'general.backbone="{demo / "model"}"',
            f'dataset.train_file="{demo / "data" / "train.jsonl"}"',
            "training.eval_every_steps=1000", "logging.log_every_steps=1", *more]
    return [arg for value in sets for arg in ("--set", value)]


def test_attached_run_without_terminal_prints_progress_and_exits_by_status(tmp_path, demo_assets):
    result = subprocess.run(
        [sys.executable, "-m", "tui_tune", "run", "demo-tiny",
         *demo_sets(demo_assets, "training.max_steps=6")], cwd=tmp_path, capture_output=True,
        text=True, stdin=subprocess.DEVNULL, timeout=240)
    assert result.returncode == 0, result.stderr
    assert "step 6/6" in result.stdout and "loss" in result.stdout
    assert "completed" in result.stderr
    (summary,) = RunStore(tmp_path / "runs").list()
    assert summary.status == "completed"
    watch = subprocess.run([sys.executable, "-m", "tui_tune", "watch", summary.run_id[:10]],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
    assert watch.returncode == 0 and "completed" in watch.stderr


def read_until(fd: int, needle: bytes, timeout_s: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and needle not in seen:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    assert needle in seen, seen[-2000:]
    return seen


def test_ctrl_c_in_the_live_view_asks_and_stops_the_run(tmp_path, demo_assets):
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "tui_tune", "run", "demo-tiny",
         *demo_sets(demo_assets, "training.max_steps=500")], cwd=tmp_path,
        stdin=follower, stdout=follower, stderr=follower, start_new_session=True,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"})
    os.close(follower)
    try:
        read_until(leader, b"loss", 150)
        store = RunStore(tmp_path / "runs")
        wait_deadline = time.monotonic() + 120
        while store.list()[0].step < 2 and time.monotonic() < wait_deadline:
            time.sleep(0.5)
        run_dir = store.list()[0].path
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends to the CLI
        read_until(leader, b"[s]top", 30)
        os.write(leader, b"s\n")
        read_until(leader, b": stopped", 120)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    assert run_status(run_dir) == "stopped"
    assert not all_processes(run_dir)
    assert list((run_dir / "checkpoints").glob("step-*"))
