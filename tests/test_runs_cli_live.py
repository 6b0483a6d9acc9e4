"""`tui-tune run | watch | resume` on real tiny runs, as a user over SSH would use them.

One run survives the CLI that started it being killed; another is stopped with Ctrl-C in the
live view (inside a pseudo-terminal) and then resumed to the end.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tui_tune.runs.control import stop
from tui_tune.runs.follow import read_events
from tui_tune.runs.procs import all_processes
from tui_tune.runs.status import run_status
from tui_tune.runs.store import RunStore
from tui_tune.runs.sweep import SWEEPS_DIR, list_sweeps

pytestmark = pytest.mark.slow


def demo_sets(demo, *more):
    sets = [f'general.backbone="{demo / "model"}"',
            f'dataset.train_file="{demo / "data" / "train.jsonl"}"',
            "training.eval_every_steps=1000", "logging.log_every_steps=1", *more]
    return [arg for value in sets for arg in ("--set", value)]


def tui_tune(*args, cwd, **kwargs):
    return [sys.executable, "-m", "tui_tune", *args], {"cwd": cwd, **kwargs}


def wait_for_step(store: RunStore, step: int, timeout_s: float = 150.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = store.list()
        if runs and runs[0].step >= step:
            return runs[0].path
        time.sleep(0.3)
    raise AssertionError(f"no run reached step {step} in {timeout_s} s")


def steps_of(run_dir) -> list[int]:
    return [e["step"] for e in read_events(run_dir / "events.jsonl") if e["kind"] == "step"]


def test_run_survives_its_cli_being_killed_and_watch_follows_it(tmp_path, demo_assets):
    argv, kw = tui_tune("run", "demo-tiny", *demo_sets(demo_assets, "training.max_steps=25"),
                        cwd=tmp_path)
    cli = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, **kw)
    store = RunStore(tmp_path / "runs")
    run_dir = wait_for_step(store, 1)
    cli.send_signal(signal.SIGKILL)  # the terminal or SSH session vanishing
    cli.communicate()
    assert run_status(run_dir) == "running"

    argv, kw = tui_tune("watch", run_dir.name[:12], cwd=tmp_path)
    watch = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=240,
                           stdin=subprocess.DEVNULL, **kw)
    assert watch.returncode == 0, watch.stderr
    assert "step 25/25" in watch.stdout and "completed" in watch.stderr
    assert steps_of(run_dir)[-1] == 25 and (run_dir / "final").is_dir()
    argv, kw = tui_tune("ls", cwd=tmp_path)
    listing = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60, **kw).stdout
    assert run_dir.name in listing and "completed" in listing and "25/25" in listing


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


def ctrl_c_then(tmp_path, demo_assets, answer: bytes, max_steps: int = 30) -> int:
    """Start attached in a pseudo-terminal, press Ctrl-C, answer the prompt; the exit code."""
    leader, follower = pty.openpty()
    argv, kw = tui_tune("run", "demo-tiny",
                        *demo_sets(demo_assets, f"training.max_steps={max_steps}"), cwd=tmp_path)
    cli = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower,
                           start_new_session=True,
                           env={**os.environ, "COLUMNS": "120", "TERM": "xterm"}, **kw)
    os.close(follower)
    try:
        read_until(leader, b"loss", 150)
        wait_for_step(RunStore(tmp_path / "runs"), 3)
        cli.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground CLI only
        read_until(leader, b"[s]top", 30)
        os.write(leader, answer + b"\n")
        read_until(leader, b": stopped" if answer == b"s" else b"detached", 120)
        return cli.wait(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
        os.close(leader)


def stop_with_ctrl_c(tmp_path, demo_assets) -> None:
    assert ctrl_c_then(tmp_path, demo_assets, b"s") == 3  # exit code follows the status: stopped


def test_ctrl_c_then_detach_leaves_the_run_training(tmp_path, demo_assets):
    assert ctrl_c_then(tmp_path, demo_assets, b"d", max_steps=400) == 0
    (summary,) = RunStore(tmp_path / "runs").list()
    try:
        assert summary.status == "running"
        step = summary.step
        wait_for_step(RunStore(tmp_path / "runs"), step + 2, 60)  # still training
    finally:
        assert stop(summary.path, grace_s=60) == "stopped"


def test_ctrl_c_stops_with_a_checkpoint_and_resume_continues(tmp_path, demo_assets):
    stop_with_ctrl_c(tmp_path, demo_assets)
    (summary,) = RunStore(tmp_path / "runs").list()
    run_dir = summary.path
    assert summary.status == "stopped"
    assert not all_processes(run_dir)
    assert list((run_dir / "checkpoints").glob("step-*"))
    stopped_at = steps_of(run_dir)[-1]
    assert stopped_at < 30

    argv, kw = tui_tune("resume", run_dir.name, cwd=tmp_path)
    resumed = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=240,
                             stdin=subprocess.DEVNULL, **kw)
    assert resumed.returncode == 0, resumed.stderr
    assert run_status(run_dir) == "completed"
    steps = steps_of(run_dir)
    after = steps[steps.index(stopped_at) + 1:]
    assert after and after[0] == stopped_at + 1 and after[-1] == 30
    assert json.loads((run_dir / "run.json").read_text())["launches"] == 2


def test_an_attached_run_that_fails_exits_1_with_the_reason(tmp_path, demo_assets):
    # weights the preflight cannot judge (it reads config.json only): the worker fails loading
    broken = tmp_path / "broken-model"
    shutil.copytree(demo_assets / "model", broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    argv, kw = tui_tune("run", "demo-tiny",
                        *demo_sets(demo_assets, f'general.backbone="{broken}"'), cwd=tmp_path)
    result = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=240,
                            stdin=subprocess.DEVNULL, **kw)
    assert result.returncode == 1, result.stderr
    assert ": failed" in result.stderr and "SafetensorError" in result.stderr, result.stderr
    (summary,) = RunStore(tmp_path / "runs").list()
    assert summary.status == "failed" and not all_processes(summary.path)


def test_a_detached_sweep_outlives_its_cli_and_completes(tmp_path, demo_assets):
    argv, kw = tui_tune("sweep", "demo-tiny", *demo_sets(demo_assets, "training.max_steps=2",
                                                         "sweep.training.lr=[0.001, 0.002]"),
                        "--detach", cwd=tmp_path)
    started = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL, **kw)
    assert started.returncode == 0, started.stderr  # the CLI is gone; the runner is not
    store = RunStore(tmp_path / "runs")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list_sweeps(store)[0].done:
        time.sleep(1.0)  # done: no run queued or running, and the runner has exited
    assert [s.status for s in store.list()] == ["completed"] * 2
    sweep_dir, = (tmp_path / "runs" / SWEEPS_DIR).iterdir()
    runs = json.loads((sweep_dir / "sweep.json").read_text())["runs"]
    assert {s.sweep_id for s in store.list()} == {sweep_dir.name}
    infos = [json.loads((store.root / r / "run.json").read_text()) for r in runs]
    assert infos[1]["launched_at"] >= infos[0]["ended_at"]  # one after another
    assert [float(i["name"].rsplit("lr", 1)[1]) for i in infos] == [0.001, 0.002]
    argv, kw = tui_tune("sweep", "--list", cwd=tmp_path)
    listed = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60, **kw)
    assert listed.stdout.count("completed") == 2 and "runner ended" in listed.stdout


def test_run_detach_returns_at_once_and_cli_stop_ends_the_run(tmp_path, demo_assets):
    argv, kw = tui_tune("run", "demo-tiny", *demo_sets(demo_assets, "training.max_steps=400"),
                        "--detach", cwd=tmp_path)
    started = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL, **kw)
    assert started.returncode == 0 and "detached" in started.stderr, started.stderr
    run_dir = wait_for_step(RunStore(tmp_path / "runs"), 2)
    procs = all_processes(run_dir)
    argv, kw = tui_tune("stop", run_dir.name[:15], cwd=tmp_path)
    stopped = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120, **kw)
    assert stopped.returncode == 0 and f"{run_dir.name}: stopped" in stopped.stderr
    assert not [p for p in procs if p.is_running() and p.status() != "zombie"]
    assert list((run_dir / "checkpoints").glob("step-*"))
