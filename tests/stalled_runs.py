"""A run that is alive (its launcher is a sleeping process) and whose last step is old, as a
hung NCCL collective or a stuck dataloader leaves it: for the stall tests of ls and the app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tui_tune.events import encode
from tui_tune.runs.procs import RUN_DIR_ENV


def step(t: float, step: int) -> dict:
    return {"v": 1, "t": t, "kind": "step", "step": step, "epoch": step / 100,
            "loss": 2.0 / (1 + step / 50),  # falling: a flat loss is a health warning of its own
            "lr": 1e-4, "grad_norm": 1.0, "tokens": 512, "tokens_per_s": 5000.0,
            "step_time_s": 0.5, "mem_allocated_gib": 0.1, "mem_reserved_gib": 0.1,
            "mem_peak_gib": 0.1}


def live_run(root: Path, name: str, last_step_age_s: float, steps: int = 40,
             gap_s: float = 1.0) -> tuple[Path, subprocess.Popen]:
    """`steps` step events `gap_s` apart, the last one `last_step_age_s` ago; the caller kills
    the returned launcher process."""
    run_dir = Path(root) / name
    run_dir.mkdir(parents=True)
    last = time.time() - last_step_age_s
    first = last - (steps - 1) * gap_s
    events = [{"v": 1, "t": first - 5, "kind": "start", "run_id": name, "world_size": 1,
               "devices": ["cpu"], "params_total": 1, "params_trainable": 1,
               "steps_total": 1000, "train_rows": 10, "val_rows": 0}]
    events += [step(first + i * gap_s, i + 1) for i in range(steps)]
    (run_dir / "events.jsonl").write_text("".join(encode(e) for e in events))
    (run_dir / "console.log").write_text(f"step {steps}/1000\n")
    launcher = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"],
                                start_new_session=True,  # carries the marker a launch sets
                                env={**os.environ, RUN_DIR_ENV: str(run_dir.resolve())})
    info = {"run_id": name, "name": name, "preset": "demo-tiny", "status": "running",
            "created_at": first - 10, "launched_at": first - 8, "pid": launcher.pid,
            "pid_start_time": psutil.Process(launcher.pid).create_time()}
    (run_dir / "run.json").write_text(json.dumps(info))
    return run_dir, launcher


def stop(launcher: subprocess.Popen) -> None:
    launcher.kill()
    launcher.wait(timeout=30)
