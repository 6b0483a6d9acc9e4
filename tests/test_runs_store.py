"""RunStore and run status on real directories and real (short-lived) processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib

import psutil
import pytest

from tui_tune.config.presets import resolve
from tui_tune.events import encode, make_event
from tui_tune.runs.files import update_run_json
from tui_tune.runs.procs import marker_env
from tui_tune.runs.status import run_state, run_status
from tui_tune.runs.store import RunNotFound, RunStore


@pytest.fixture
def workdir(preset_workdir):
    return preset_workdir


def demo_experiment(*overrides):
    return resolve("demo-tiny", list(overrides)).experiment


def write_events(run_dir, *events):
    with open(run_dir / "events.jsonl", "a") as handle:
        handle.write("".join(encode(e) for e in events))


def start_event(t, total=100):
    return {**make_event("start", run_id="x", world_size=1, devices=["cpu"], params_total=1,
                         params_trainable=1, steps_total=total, train_rows=10, val_rows=1),
            "t": t}


def step_event(t, step, loss=1.5):
    return {**make_event("step", step=step, epoch=0.1, loss=loss, lr=1e-3, grad_norm=0.5,
                         tokens=step * 100, tokens_per_s=1234.0, step_time_s=0.1,
                         mem_allocated_gib=0, mem_reserved_gib=0, mem_peak_gib=0), "t": t}


def dead_process():
    """pid + start time of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = psutil.Process(proc.pid).create_time()
    proc.wait()
    return proc.pid, started


def test_create_freezes_config_and_makes_unique_ids(workdir):
    store = RunStore()
    first = store.create(demo_experiment(), "demo-tiny")
    second = store.create(demo_experiment(), "demo-tiny")
    assert first.parent == workdir / "runs"
    assert re.fullmatch(r"\d{8}-\d{6}-demo-tiny", first.name)
    assert second.name != first.name and second.name.startswith(first.name[:15])
    config = tomllib.loads((first / "config.toml").read_text())
    assert config["dataset"]["train_file"] == str(workdir / "demo/data/train.jsonl")
    assert config["general"]["backbone"] == str(workdir / "demo/model")
    info = json.loads((first / "run.json").read_text())
    assert info["status"] == "queued" and info["preset"] == "demo-tiny"
    assert run_status(first) == "queued"


def test_hub_ids_and_missing_files_stay_as_written(workdir):
    exp = demo_experiment('general.backbone="Qwen/Qwen2.5-0.5B"',
                          'dataset.validation_file="nope.csv"', 'dataset.validation_strategy="custom"')
    run_dir = RunStore().create(exp, "demo-tiny")
    config = tomllib.loads((run_dir / "config.toml").read_text())
    assert config["general"]["backbone"] == "Qwen/Qwen2.5-0.5B"
    assert config["dataset"]["validation_file"] == "nope.csv"


def test_runs_root_from_environment(workdir, monkeypatch):
    monkeypatch.setenv("TUI_TUNE_RUNS", str(workdir / "elsewhere"))
    run_dir = RunStore().create(demo_experiment(), "demo-tiny")
    assert run_dir.parent == workdir / "elsewhere"
    assert RunStore(workdir / "other").root == workdir / "other"


def test_listing_reads_progress_newest_first(workdir):
    store = RunStore()
    old = store.create(demo_experiment(), "demo-tiny")
    new = store.create(demo_experiment(), "demo-tiny")
    now = time.time()
    update_run_json(old, launched_at=now - 100)
    write_events(old, start_event(now - 99), step_event(now - 90, 10),
                 step_event(now - 80, 20, loss=0.75), {**make_event("end", status="completed"),
                                                        "t": now - 79})
    listed = store.list()
    assert [s.run_id for s in listed] == [new.name, old.name]
    done = listed[1]
    assert (done.status, done.step, done.steps_total, done.last_loss) == \
        ("completed", 20, 100, 0.75)
    assert done.tokens_per_s == 1234.0 and done.elapsed_s == pytest.approx(20, abs=0.01)
    assert done.eta_s is None and listed[0].status == "queued"


def test_dead_launch_without_end_is_died_with_console_tail(workdir):
    run_dir = RunStore().create(demo_experiment(), "demo-tiny")
    pid, started = dead_process()
    update_run_json(run_dir, launched_at=time.time() - 5, pid=pid, pid_start_time=started)
    write_events(run_dir, start_event(time.time() - 4), step_event(time.time() - 3, 1))
    (run_dir / "console.log").write_text("loading\nRuntimeError: boom\n")
    state = run_state(run_dir)
    assert state.status == "died"
    assert "RuntimeError: boom" in state.reason


def test_end_of_an_earlier_launch_does_not_count_for_a_new_one(workdir):
    run_dir = RunStore().create(demo_experiment(), "demo-tiny")
    now = time.time()
    write_events(run_dir, start_event(now - 100), {**make_event("end", status="stopped"),
                                                   "t": now - 90})
    update_run_json(run_dir, launched_at=now - 100)
    assert run_status(run_dir) == "stopped"
    update_run_json(run_dir, launched_at=now - 10)  # resumed, then vanished before `start`
    assert run_status(run_dir) == "died"


def test_pid_counts_only_with_its_start_time(workdir):
    run_dir = RunStore().create(demo_experiment(), "demo-tiny")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                               env={**os.environ, **marker_env(run_dir)})
    try:
        started = psutil.Process(sleeper.pid).create_time()
        update_run_json(run_dir, launched_at=time.time(), pid=sleeper.pid,
                        pid_start_time=started)
        assert run_state(run_dir).status == "running"
        update_run_json(run_dir, pid_start_time=started - 3600)  # same pid, other process
        assert run_status(run_dir) == "died"
        update_run_json(run_dir, pid=None, pid_start_time=None)
        (run_dir / "ranks").mkdir()
        (run_dir / "ranks" / "rank-0.json").write_text(json.dumps(
            {"rank": 0, "pid": sleeper.pid, "start_time": started, "host": None}))
        assert run_status(run_dir) == "running"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert run_status(run_dir) == "died"


def test_malformed_and_foreign_entries_never_break_listing(workdir, caplog):
    store = RunStore()
    good = store.create(demo_experiment(), "demo-tiny")
    broken = store.create(demo_experiment(), "demo-tiny")
    (broken / "run.json").write_text("{not json")
    write_events(broken, step_event(time.time(), 3))
    with open(broken / "events.jsonl", "a") as handle:
        handle.write("garbage\n\x00\x01\n[1]\n")
    (store.root / "notes.txt").write_text("hello")
    (store.root / "random-folder").mkdir()
    (store.root / "random-folder" / "x.bin").write_bytes(b"\x00")
    (store.root / ".DS_Store").write_bytes(b"\x00")
    odd = store.root / "20260101-000000-odd"
    odd.mkdir()
    (odd / "run.json").write_text('["a list, not an object"]')
    with caplog.at_level("WARNING", logger="tui_tune.runs"):
        listed = store.list()
    assert {s.run_id for s in listed} == {good.name, broken.name, odd.name}
    assert next(s for s in listed if s.run_id == broken.name).step == 3
    assert any("notes.txt" in w for w in store.warnings)
    assert any("random-folder" in w for w in store.warnings)
    assert any("not readable JSON" in w for w in store.warnings)
    assert not any(".DS_Store" in w for w in store.warnings)
    assert caplog.records


def test_resolve_by_unique_prefix(workdir):
    store = RunStore()
    run_dir = store.create(demo_experiment(), "demo-tiny")
    store.create(demo_experiment(), "other")
    assert store.resolve(run_dir.name) == run_dir
    assert store.resolve(run_dir.name[:16] + "demo") == run_dir
    with pytest.raises(RunNotFound, match="matches 2 runs"):
        store.resolve(run_dir.name[:8])
    with pytest.raises(RunNotFound, match="no run matches"):
        store.resolve("1999")
    assert store.resolve(str(run_dir)) == run_dir


def test_listing_reads_only_new_events(workdir):
    store = RunStore()
    run_dir = store.create(demo_experiment(), "demo-tiny")
    now = time.time()
    write_events(run_dir, start_event(now - 10), step_event(now - 9, 1))
    assert store.list()[0].step == 1
    write_events(run_dir, step_event(now - 8, 2))
    assert store.list()[0].step == 2
    (run_dir / "events.jsonl").write_text(encode(step_event(now, 7)))  # rewritten shorter
    assert store.list()[0].step == 7


def test_a_new_process_continues_from_the_disk_cache_of_a_big_file(workdir):
    run_dir = RunStore().create(demo_experiment(), "demo-tiny")
    now = time.time()
    write_events(run_dir, start_event(now - 1000, total=100000),
                 *(step_event(now - 1000 + i * 0.01, i) for i in range(1, 6001)))
    assert (run_dir / "events.jsonl").stat().st_size > 1 << 20
    assert RunStore().list()[0].step == 6000
    assert (run_dir / ".summary-cache.json").is_file()
    # change an early line in place (same length): only a full re-read would see it
    text = (run_dir / "events.jsonl").read_text()
    (run_dir / "events.jsonl").write_text(text.replace('"steps_total":100000',
                                                       '"steps_total":999999', 1))
    write_events(run_dir, step_event(now, 6001))
    summary = RunStore().list()[0]  # a fresh store: nothing in memory
    assert (summary.step, summary.steps_total) == (6001, 100000)
    (run_dir / "events.jsonl").write_text(encode(step_event(now, 3)))  # rewritten: cache stale
    assert RunStore().list()[0].step == 3


def test_a_run_launched_on_another_machine_is_not_declared_dead(workdir):
    run_dir = RunStore().create(demo_experiment(), "demo-tiny")
    update_run_json(run_dir, host="node-7", launched_at=time.time(), pid=1, pid_start_time=1.0)
    state = run_state(run_dir)
    assert state.status == "running" and "node-7" in state.reason
    write_events(run_dir, {**make_event("end", status="failed", error="CUDA error"),
                           "t": time.time()})
    assert run_state(run_dir).status == "failed"


def test_run_json_readers_never_see_a_half_written_file(tmp_path):
    """The worker and the launcher rewrite run.json while the app and `ls` read it."""
    import threading

    from tui_tune.runs.files import read_json, write_json_atomic

    path = tmp_path / "run.json"
    write_json_atomic(path, {"n": 0})
    done = threading.Event()

    def writer():
        for n in range(1, 400):
            write_json_atomic(path, {"n": n, "padding": "x" * 20000})
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = broken = 0
    while not done.is_set():
        reads += 1
        broken += read_json(path) is None
    thread.join()
    assert reads > 10 and broken == 0
    assert read_json(path)["n"] == 399 and list(tmp_path.iterdir()) == [path]


def test_delete_refuses_what_is_not_a_run_directory(workdir):
    """The app deletes what the listing shows; even a path handed to delete directly is removed
    only when it is a run directory itself (a link or a plain folder stays)."""
    from tui_tune.runs.control import NotARun, delete

    store = RunStore()
    run_dir = store.create(demo_experiment(), "demo-tiny")
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    (store.root / "link").symlink_to(run_dir)
    for target in (elsewhere, store.root / "link", workdir / "runs" / ".."):
        with pytest.raises(NotARun):
            delete(target)
    assert (elsewhere / "keep.txt").exists() and run_dir.is_dir()
    delete(run_dir)
    assert not run_dir.exists()
