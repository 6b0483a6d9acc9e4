"""On a CUDA machine: a run launched through accelerate uses the GPU it was given, NVML sees
it, and stop frees it (no process of the run left)."""

from __future__ import annotations

import pytest
from test_runs_process import console, create_run, reached_step, wait_for

from tui_tune.monitor import gpu_count, sample_gpus
from tui_tune.runs.control import stop
from tui_tune.runs.files import read_run_json
from tui_tune.runs.follow import read_events
from tui_tune.runs.launch import launch
from tui_tune.runs.procs import all_processes

pytestmark = [pytest.mark.gpu, pytest.mark.slow, pytest.mark.skipif(
    gpu_count() == 0, reason="needs a CUDA GPU (NVML sees none)")]


def test_gpu_run_uses_its_gpu_and_stop_frees_it(tmp_path, demo_assets):
    run_dir = create_run(tmp_path, demo_assets, "training.max_steps=5000",
                         'environment.mixed_precision="bf16"', "environment.gpus=[0]")
    launch(run_dir)
    info = read_run_json(run_dir)
    assert "--cpu" not in info["argv"] and info["cuda_visible_devices"] == "0"
    assert info["argv"][info["argv"].index("--mixed_precision") + 1] == "bf16"
    wait_for(reached_step(run_dir, 3), 180, "the first steps")
    start = next(e for e in read_events(run_dir / "events.jsonl") if e["kind"] == "start")
    assert "cpu" not in str(start["devices"]).lower(), start["devices"]
    readings = sample_gpus()
    assert readings and readings[0].mem_used_gib > 0 and readings[0].mem_total_gib > 10
    print("GPU while training:", readings[0])
    procs = all_processes(run_dir)
    assert stop(run_dir, grace_s=60) == "stopped", console(run_dir)
    assert not [p for p in procs if p.is_running() and p.status() != "zombie"]
    assert list((run_dir / "checkpoints").glob("step-*"))
