"""Our worker against transformers' Trainer: same model, data, batch, steps and threads.

CPU: the demo model (full fine-tuning and LoRA). GPU (--gpu): a random-initialised ~1B Llama
in bf16 full, LoRA, QLoRA 4-bit and DoRA. Each side runs in its own fresh process, back to back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, Result
from tui_tune.config.presets import builtin_dir, experiment_toml, resolve
from tui_tune.events import decode

CPU_STEPS, CPU_SKIP = 60, 10
GPU_STEPS, GPU_SKIP = 30, 10


def write_run(folder: Path, preset: str, sets: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    exp = resolve(str(builtin_dir() / f"{preset}.toml"), sets).experiment
    (folder / "config.toml").write_text(experiment_toml(exp))
    return folder


def worker_numbers(run_dir: Path, skip: int, env: dict) -> dict:
    subprocess.run([sys.executable, "-m", "tui_tune.train", str(run_dir)], env=env, cwd=ROOT,
                   check=True, capture_output=True)
    events = [decode(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    steps = [e for e in events if e and e["kind"] == "step"][skip:]
    end = next(e for e in events if e and e["kind"] == "end")
    if end["status"] != "completed":
        raise RuntimeError(f"worker run {run_dir} ended {end}")
    seconds = sum(e["step_time_s"] for e in steps)
    return {"tokens_per_s": sum(e["tokens"] for e in steps) / seconds,
            "mem_peak_gib": max(e["mem_peak_gib"] for e in steps)}


def trainer_numbers(run_dir: Path, steps: int, skip: int, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.trainer_baseline", str(run_dir),
                          str(steps), str(skip)], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(label: str, run_dir: Path, steps: int, skip: int, env: dict) -> list[Result]:
    ours = worker_numbers(run_dir, skip, env)
    theirs = trainer_numbers(run_dir, steps, skip, env)
    ratio = ours["tokens_per_s"] / theirs["tokens_per_s"]
    return [
        Result(f"trainer {label}: worker tokens/s", ours["tokens_per_s"], "tok/s", "",
               f"peak {ours['mem_peak_gib']:.2f} GiB"),
        Result(f"trainer {label}: Trainer tokens/s", theirs["tokens_per_s"], "tok/s", "",
               f"peak {theirs['mem_peak_gib']:.2f} GiB"),
        Result(f"trainer {label}: worker / Trainer", ratio, "x", ">= 1.0"),
    ]


def bench_env() -> dict:
    threads = str(os.cpu_count() or 1)
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "OMP_NUM_THREADS": threads, "PYTHONPATH": path,
            "TOKENIZERS_PARALLELISM": "false"}


def run() -> list[Result]:
    from tui_tune.train.demo import prepare

    work = Path(tempfile.mkdtemp(prefix="bench-trainer-"))
    demo = prepare(work / "demo")
    base = [f'general.backbone="{demo / "model"}"',
            f'dataset.train_file="{demo / "data" / "train.jsonl"}"',
            f"training.max_steps={CPU_STEPS}", "training.eval_every_steps=100000",
            "training.save_checkpoint=\"disable\"", "logging.log_every_steps=1",
            "training.warmup_ratio=0", "prediction.num_samples=0"]
    lora = ["adapter.method=\"lora\"", "adapter.r=16", "adapter.alpha=32", "training.lr=1e-3"]
    results = []
    for label, sets in (("cpu full", base), ("cpu lora", base + lora)):
        run_dir = write_run(work / label.replace(" ", "-"), "demo-tiny", sets)
        results += compare(label, run_dir, CPU_STEPS, CPU_SKIP, bench_env())
    return results


def run_gpu() -> list[Result]:
    from benchmarks.gpu_model import prepare_gpu_assets

    work = Path(tempfile.mkdtemp(prefix="bench-trainer-gpu-"))
    model_dir, data_file = prepare_gpu_assets(work)
    base = [f'general.backbone="{model_dir}"', f'dataset.train_file="{data_file}"',
            f"training.max_steps={GPU_STEPS}", "training.eval_every_steps=100000",
            "training.save_checkpoint=\"disable\"", "logging.log_every_steps=1",
            "training.warmup_ratio=0", "prediction.num_samples=0", "training.batch_size=8",
            "tokenizer.max_length=2048", "environment.mixed_precision=\"bf16\"",
            "architecture.gradient_checkpointing=false", "dataset.validation_size=0.01"]
    cases = {
        "gpu full bf16": ["adapter.method=\"full\"", "architecture.backbone_dtype=\"float32\""],
        "gpu lora r16": ["adapter.method=\"lora\"", "adapter.r=16", "adapter.alpha=32"],
        "gpu qlora nf4": ["adapter.method=\"qlora\"", "adapter.r=16", "adapter.alpha=32",
                          "architecture.backbone_dtype=\"int4\"",
                          "architecture.gradient_checkpointing=true"],
        "gpu dora r16": ["adapter.method=\"dora\"", "adapter.r=16", "adapter.alpha=32"],
    }
    results = []
    for label, sets in cases.items():
        run_dir = write_run(work / label.replace(" ", "-"), "demo-tiny", base + sets)
        results += compare(label, run_dir, GPU_STEPS, GPU_SKIP, bench_env())
    return results


if __name__ == "__main__":
    for result in (run_gpu() if "--gpu" in sys.argv else run()):
        print(result.row())
