"""`tui-tune --help` wall time against bare `python -c pass` on the same interpreter, and a
worker's start: process start to its `start` event (imports, model, data)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, Result, median_wall_time, python
from tui_tune.rundir import RunDir


def worker_start_s(run_dir: Path, env: dict[str, str]) -> float:
    """Seconds from starting `python -m tui_tune.train` to its start event (1 step, LoRA)."""
    for made in ("events.jsonl", "run.json", ".step-index", "final", "checkpoints", "ranks"):
        path = run_dir / made
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    began = time.time()
    subprocess.run([sys.executable, "-m", "tui_tune.train", str(run_dir)], cwd=ROOT, env=env,
                   capture_output=True, check=True, timeout=600)
    events = [json.loads(line) for line in RunDir(run_dir).events.read_text().splitlines()]
    return next(e["t"] for e in events if e["kind"] == "start") - began


def worker_starts() -> tuple[float, float]:
    """Median of 3 worker starts as shipped, and with torch's compiler imported anyway."""
    from benchmarks.bench_trainer import write_run
    from tui_tune.train.demo import prepare

    work = Path(tempfile.mkdtemp(prefix="bench-start-"))
    demo = prepare(work / "demo")
    run_dir = write_run(work / "run", "demo-tiny", [
        f'general.backbone="{demo / "model"}"',
        f'dataset.train_file="{demo / "data" / "train.jsonl"}"', "training.max_steps=1",
        'adapter.method="lora"', "training.evaluate_before_training=false",
        'training.save_checkpoint="disable"', "prediction.num_samples=0"])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("TORCHDYNAMO_DISABLE", None)
    shipped, compiler = [], []
    for _ in range(3):  # alternated: the machine's load moves both alike
        shipped.append(worker_start_s(run_dir, env))
        compiler.append(worker_start_s(run_dir, {**env, "TORCHDYNAMO_DISABLE": "0"}))
    shutil.rmtree(work, ignore_errors=True)
    return statistics.median(shipped), statistics.median(compiler)


def run() -> list[Result]:
    bare = median_wall_time(python("-c", "pass"))
    helptime = median_wall_time(python("-m", "tui_tune", "--help"))
    preset = median_wall_time(python("-m", "tui_tune", "preset", "show", "demo-tiny"))
    start, with_compiler = worker_starts()
    return [
        Result("python -c pass (reference)", bare, "s"),
        Result("tui-tune --help", helptime, "s", "< 0.5", f"{helptime / bare:.1f}x bare python"),
        Result("tui-tune preset show demo-tiny", preset, "s"),
        Result("worker start: process to start event, demo-tiny LoRA", start, "s", "",
               f"{with_compiler:.2f} s with torch's compiler imported (TORCHDYNAMO_DISABLE=0: "
               "bitsandbytes torch.compiles its kernels at import); median of 3"),
    ]


if __name__ == "__main__":
    for result in run():
        print(result.row())
