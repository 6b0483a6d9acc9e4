"""start_run and start_sweep (runs/start.py), the one way the CLI and the app start things:
whatever did not start is taken back, processes included."""

from __future__ import annotations

import errno

import pytest

from tui_tune.config.presets import resolve
from tui_tune.monitor.gpu import gpu_count
from tui_tune.runs import launch as launch_module
from tui_tune.runs.launch import LaunchError
from tui_tune.runs.procs import marked_processes
from tui_tune.runs.start import start_run, start_sweep
from tui_tune.runs.store import RunStore


@pytest.fixture
def workdir(preset_workdir):
    return preset_workdir


def test_a_launcher_that_got_going_before_a_full_disk_is_ended_with_its_folder(
        workdir, monkeypatch):
    """run.json cannot be written after the launcher was spawned: the caller is told, and
    neither the folder nor a process of the run is left (none would ever be recorded)."""
    started = []

    def disk_full(run_dir, **fields):
        started.append(run_dir)
        raise OSError(errno.ENOSPC, "No space left on device", str(run_dir / "run.json"))

    monkeypatch.setattr(launch_module, "update_run_json", disk_full)
    store = RunStore()
    with pytest.raises(OSError, match="No space left"):
        start_run(store, resolve("demo-tiny").experiment, "demo-tiny")
    [run_dir] = started
    assert marked_processes(str(run_dir)) == []
    assert not run_dir.exists() and list(store.root.iterdir()) == []


def test_a_sweep_that_cannot_start_writes_nothing(workdir):
    experiment = resolve("demo-tiny", ['sweep.environment.mixed_precision=["bf16", "fp16"]',
                                       'dataset.train_file="missing.jsonl"']).experiment
    store = RunStore()
    with pytest.raises(LaunchError) as info:
        start_sweep(store, experiment, "demo-tiny")
    keys = [p.key for p in info.value.problems]
    assert keys.count("dataset.train_file") == 1  # said once for both members
    assert ("environment.mixed_precision" in keys) == (gpu_count() == 0)  # the fp16 member
    assert not store.root.exists() or list(store.root.iterdir()) == []
