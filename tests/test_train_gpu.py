"""The worker on a CUDA GPU: bf16, torch memory numbers, QLoRA / 8-bit DoRA, out-of-memory."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from conftest import read_events, run_worker
from worker_env import worker_env

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu, pytest.mark.slow, pytest.mark.xdist_group("train-gpu"),
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs a CUDA GPU (torch.cuda.is_available() is False)")]


def test_bf16_run_learns_and_reports_cuda_memory(tmp_path, make_run_dir):
    run_dir = make_run_dir(tmp_path / "bf16", [
        'environment.mixed_precision="bf16"', "training.max_steps=120",
        "training.eval_every_steps=60", "logging.log_every_steps=10"])
    result = run_worker(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    start, steps = read_events(run_dir, "start")[0], read_events(run_dir, "step")
    assert start["devices"][0] != "cpu"
    assert steps[-1]["loss"] < 0.5 * steps[0]["loss"]
    assert 0 < steps[-1]["mem_allocated_gib"] <= steps[-1]["mem_peak_gib"] < 2
    # the end event carries the measured GPU peak the start's estimate is judged against
    end = read_events(run_dir, "end")[-1]
    assert steps[-1]["mem_peak_gib"] <= end["mem_peak_gib"] < 2
    assert start["mem_estimate_gib"] > 0
    print("cuda bf16 tokens/s:", [round(s["tokens_per_s"]) for s in steps])


@pytest.mark.parametrize("method,dtype,optimizer", [
    ("qlora", "int4", "paged_adamw_8bit"), ("qdora", "int8", "adamw_8bit")])
def test_quantized_adapters_train_on_cuda(tmp_path, make_run_dir, method, dtype, optimizer):
    run_dir = make_run_dir(tmp_path / method, [
        f'adapter.method="{method}"', f'architecture.backbone_dtype="{dtype}"',
        f'training.optimizer="{optimizer}"', 'environment.mixed_precision="bf16"',
        "training.max_steps=20", "training.eval_every_steps=20", "logging.log_every_steps=5"])
    result = run_worker(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_events(run_dir, "end")[-1]["status"] == "completed"
    assert (run_dir / "final" / "adapter_model.safetensors").is_file()


HOG = """
import signal, sys, torch
free, _ = torch.cuda.mem_get_info()
hold = torch.empty(free - int(float(sys.argv[1]) * 2**30), dtype=torch.uint8, device="cuda")
print("ready", flush=True)
signal.pause()
"""


def test_out_of_memory_ends_oom_with_phase_and_memory(tmp_path, make_run_dir):
    rows = tmp_path / "long.jsonl"
    rows.write_text("".join(json.dumps({"prompt": "1 + " * 400, "answer": "2"}) + "\n"
                            for _ in range(256)))
    run_dir = make_run_dir(tmp_path / "oom", [
        f'dataset.train_file="{rows}"', 'architecture.attn_implementation="eager"',
        "tokenizer.max_length=1024", "training.batch_size=128", "training.max_steps=2"])
    hog = subprocess.Popen([sys.executable, "-c", HOG, "2.5"], stdout=subprocess.PIPE)
    try:
        assert hog.stdout.readline().strip() == b"ready"
        result = run_worker(run_dir)
    finally:
        hog.kill()
        hog.wait()
    assert result.returncode != 0
    end = read_events(run_dir, "end")[-1]
    assert end["status"] == "oom", end
    assert end["phase"] in ("forward", "backward") and end["mem_peak_gib"] > 0
    assert json.loads((run_dir / "run.json").read_text())["status"] == "oom"
    time.sleep(0.5)


def test_fsdp_checkpoints_resume_and_final(tmp_path, make_run_dir):
    """One-process FSDP: accelerate's sharded save/load, the gathered final model, resume."""
    import shutil
    from pathlib import Path


    run_dir = make_run_dir(tmp_path / "fsdp", [
        'environment.distributed_backend="fsdp"', "environment.num_processes=2",
        "training.max_steps=10", "training.checkpoint_every_steps=5",
        "training.eval_every_steps=10", "logging.log_every_steps=1", "training.grad_clip=0.5"])
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    argv = [accelerate, "launch", "--use_fsdp", "--num_processes", "1", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "tui_tune.train",
            str(run_dir)]
    first = subprocess.run(argv, env=worker_env(), capture_output=True, text=True, timeout=300,
                           check=False)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    losses = {e["step"]: e["loss"] for e in read_events(run_dir, "step")}
    assert (run_dir / "checkpoints" / "step-5" / "accelerate").is_dir()
    from transformers import AutoModelForCausalLM
    AutoModelForCausalLM.from_pretrained(run_dir / "final")
    shutil.rmtree(run_dir / "checkpoints" / "step-10")
    again = subprocess.run([*argv, "--resume"], env=worker_env(), capture_output=True, check=False,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    resumed = read_events(run_dir, "step")[len(losses):]
    assert [e["step"] for e in resumed] == [6, 7, 8, 9, 10]
    for event in resumed:
        assert event["loss"] == pytest.approx(losses[event["step"]], rel=1e-4)
