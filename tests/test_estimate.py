"""The memory and time estimate (tui_tune/runs/estimate/, `tui-tune estimate`): its accuracy
against the GPU peaks measured in benchmarks/RESULTS.md, exact counts from safetensors
headers, what fits, the time from earlier runs, and the estimate in `start` and `ls --json`."""

from __future__ import annotations

import json
import re
import socket
import struct
from pathlib import Path

import pytest

from benchmarks.bench_trainer import GPU_BASE, GPU_CASES
from benchmarks.gpu_model import SHAPE
from tui_tune.cli import main as cli_main
from tui_tune.config.presets import builtin_dir, experiment_toml, resolve
from tui_tune.runs.estimate import Settings, ShapeError, estimate, estimate_run, read_shape
from tui_tune.runs.estimate.fit import largest_batch
from tui_tune.runs.estimate.shape import count_safetensors, shape_from_config

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "RESULTS.md"
# TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T's config.json (the values that matter)
TINYLLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
             "intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32,
             "num_key_value_heads": 4, "vocab_size": 32000, "max_position_embeddings": 2048,
             "rms_norm_eps": 1e-05, "tie_word_embeddings": False, "hidden_act": "silu",
             "torch_dtype": "float32"}
GPU_ROWS = {"gpu full bf16": "full", "gpu lora r16": "lora", "gpu qlora nf4": "qlora"}


def measured_peaks() -> dict[str, float]:
    """The worker's measured peak per GPU case in RESULTS.md's GPU table."""
    found = re.findall(r"\| trainer (gpu [^:]+): worker tokens/s \|[^\n]*peak ([\d.]+) GiB",
                       RESULTS.read_text(encoding="utf-8"))
    return {label: float(peak) for label, peak in found}


def tinyllama_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tinyllama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINYLLAMA))
    return folder


def bench_experiment(folder: Path, label: str, *more: str):
    sets = [f'general.backbone="{folder}"', *GPU_BASE, *GPU_CASES[label], *more]
    return resolve(str(builtin_dir() / "demo-tiny.toml"), sets).experiment


def test_the_bench_model_has_tinyllamas_shape():
    assert {k: TINYLLAMA[k] for k in SHAPE if k != "max_position_embeddings"} \
        == {k: v for k, v in SHAPE.items() if k != "max_position_embeddings"}
    assert shape_from_config(TINYLLAMA).total_params == 1_100_048_384  # TinyLlama's count


@pytest.mark.parametrize("label", list(GPU_ROWS))
def test_estimate_is_within_15_percent_of_the_measured_gpu_peak(tmp_path, label):
    """The bench's own settings (GPU_BASE + the case), TinyLlama's config.json, no weights."""
    measured = measured_peaks()[label]
    exp = bench_experiment(tinyllama_dir(tmp_path), label)
    assert exp.adapter.method == GPU_ROWS[label]
    peak = estimate(read_shape(exp.general.backbone), Settings.from_experiment(exp, 1)).peak_gib
    assert abs(peak / measured - 1) <= 0.15, (label, peak, measured)


def write_safetensors(path: Path, tensors: dict[str, list[int]]) -> None:
    """A real safetensors file (header + zero bytes), written without torch."""
    header, offset = {}, 0
    for name, shape in tensors.items():
        size = 2 * (shape[0] * (shape[1] if len(shape) > 1 else 1))
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))


def test_parameter_counts_are_exact_from_the_safetensors_headers(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": 8, "intermediate_size": 16,
        "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10}))
    write_safetensors(folder / "model-00001-of-00002.safetensors", {
        "model.embed_tokens.weight": [10, 8], "model.layers.0.self_attn.q_proj.weight": [8, 8],
        "model.layers.0.input_layernorm.weight": [8]})
    write_safetensors(folder / "model-00002-of-00002.safetensors", {
        "model.layers.0.mlp.down_proj.weight": [8, 16], "lm_head.weight": [10, 8]})
    assert count_safetensors(folder) == {"embed": 80, "linear": 64 + 128, "head": 80, "other": 8}
    shape = read_shape(str(folder))
    assert shape.total_params == 80 + 192 + 80 + 8
    assert "safetensors" in shape.source
    assert shape_from_config(json.loads((folder / "config.json").read_text())).total_params \
        != shape.total_params  # the config alone would count a whole block, tied


def test_a_hub_id_is_read_from_the_hugging_face_cache_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ShapeError, match=r"org/tiny.*general.backbone.*cache"):
        read_shape("org/tiny")
    snapshot = tmp_path / "hub" / "models--org--tiny" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(TINYLLAMA))
    (tmp_path / "hub" / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--tiny" / "refs" / "main").write_text("abc123")
    assert read_shape("org/tiny").layers == 22


def test_what_makes_it_fit_comes_largest_saving_first(tmp_path):
    """1.1B full fine-tuning, batch 8 x 2048, does not fit 40 GiB: each change alone, sorted
    by saving, and the largest batch is the last that fits."""
    exp = bench_experiment(tinyllama_dir(tmp_path), "gpu full bf16")
    result = estimate_run(exp, [], budget_gib=40.0)
    assert result.memory.total_gib > 40
    savings = [c.saving_gib for c in result.changes if not c.combined]
    assert savings == sorted(savings, reverse=True) and len(savings) >= 4
    kinds = {key for c in result.changes for key in c.settings}
    assert {"architecture.gradient_checkpointing", "architecture.backbone_dtype",
            "training.batch_size", "tokenizer.max_length"} <= kinds
    shape, settings = result.shape, result.memory.settings
    batch = largest_batch(shape, settings, 40.0)
    assert result.largest_batch == batch
    assert estimate(shape, settings.but(batch_size=batch + 1)).total_gib > 40.0
    if batch:
        assert estimate(shape, settings.but(batch_size=batch)).total_gib <= 40.0
    checkpointed = next(c for c in result.changes
                        if c.settings == {"architecture.gradient_checkpointing": True})
    assert checkpointed.saving_gib > 20  # 36 GiB of activations become 22 blocks' inputs


def test_sharding_divides_the_static_memory_across_gpus(tmp_path):
    exp = bench_experiment(tinyllama_dir(tmp_path), "gpu full bf16")
    shape, s = read_shape(exp.general.backbone), Settings.from_experiment(exp, 1)
    one = estimate(shape, s)
    parts = {p.name: p.gib for p in one.parts}
    ddp = estimate(shape, s.but(world_size=8))
    fsdp = estimate(shape, s.but(world_size=8, backend="fsdp"))
    assert ddp.peak_gib > one.peak_gib  # DDP: a full copy each, plus the gradient buckets
    assert fsdp.peak_gib < one.peak_gib - 0.8 * parts["optimizer states"]


def write_earlier_run(root: Path, backbone: str, method: str, tokens_per_s: float,
                      host: str) -> None:
    run = root / f"20260101-000000-{method}-{tokens_per_s:.0f}"
    run.mkdir(parents=True)
    (run / "config.toml").write_text(
        f'[general]\nbackbone = "{backbone}"\n[adapter]\nmethod = "{method}"\n')
    (run / "run.json").write_text(json.dumps({"host": host, "status": "completed"}))
    events = [{"v": 1, "t": 1.0, "kind": "start", "run_id": run.name, "world_size": 1,
               "devices": ["cuda:0"], "params_total": 1, "params_trainable": 1,
               "steps_total": 2, "train_rows": 1, "val_rows": 1, "mem_estimate_gib": 9.86},
              {"v": 1, "t": 2.0, "kind": "step", "step": 2, "epoch": 1.0, "loss": 1.0,
               "lr": 0.1, "grad_norm": 1.0, "tokens": 10, "tokens_per_s": tokens_per_s,
               "step_time_s": 0.1, "mem_allocated_gib": 5.0, "mem_reserved_gib": 11.0,
               "mem_peak_gib": 9.99}]
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def test_time_comes_from_this_hosts_earlier_runs_of_the_backbone_and_method(tmp_path):
    folder = tinyllama_dir(tmp_path)
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"prompt": "x" * 400, "answer": "y" * 400}) + "\n"
                            for _ in range(1000)))
    exp = bench_experiment(folder, "gpu qlora nf4", f'dataset.train_file="{data}"',
                           "training.max_steps=100")
    root = tmp_path / "runs"
    write_earlier_run(root, str(folder), "qlora", 20000.0, socket.gethostname())
    write_earlier_run(root, str(folder), "qlora", 10000.0, socket.gethostname())
    write_earlier_run(root, str(folder), "full", 99999.0, socket.gethostname())
    write_earlier_run(root, str(folder), "qlora", 77777.0, "another-host")
    t = estimate_run(exp, [], runs_root=root).time
    assert (t.speed.low, t.speed.high) == (10000.0, 20000.0)
    assert "2 earlier runs" in t.speed.source
    assert t.data.rows == 1000 and t.data.train_rows == 990  # validation_size 0.01
    assert t.data.mean_tokens == 200 + 4  # 800 characters / 4, + the markers
    assert t.steps == 100 and t.tokens == 100 * 8 * 204
    assert t.seconds == (pytest.approx(t.tokens / 20000), pytest.approx(t.tokens / 10000))
    flops = estimate_run(exp, [], runs_root=tmp_path / "none").time
    assert flops.speed.source.startswith("FLOPs model") and "MFU 20%-40%" in flops.speed.source


def test_cli_estimate_prints_json_and_a_table(tmp_path, capsys):
    preset = tmp_path / "big.toml"
    exp = bench_experiment(tinyllama_dir(tmp_path), "gpu lora r16")
    preset.write_text(experiment_toml(exp))
    assert cli_main(["estimate", str(preset), "--set", "training.batch_size=4", "--json",
                     "--gpu-gib", "24"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["memory"]["parts"]["activations"] > 10 and out["budget_gib"] == 24
    assert out["model"]["params"] == 1_100_048_384 and out["memory"]["phase"]
    assert out["time"]["error"].startswith("dataset.train_file")  # the preset's demo path
    assert cli_main(["estimate", str(preset), "--gpu-gib", "80"]) == 0
    table = capsys.readouterr().out
    assert "activations" in table and "logits and loss" in table and "fits" in table


def test_cli_estimate_without_a_config_json_is_one_line(tmp_path, capsys):
    assert cli_main(["estimate", "demo-tiny", "--set",
                     f'general.backbone="{tmp_path / "nowhere"}"']) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "general.backbone" in err


def test_ls_json_shows_the_estimate_beside_the_measured_peak(tmp_path, capsys):
    root = tmp_path / "runs"
    write_earlier_run(root, "m", "qlora", 100.0, socket.gethostname())
    assert cli_main(["ls", "--runs-dir", str(root), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["mem_estimate_gib"] == 9.86 and row["metrics"]["mem_peak_gib"] == 9.99


def test_ls_json_shows_the_estimates_error_against_the_gpu_peak_of_the_end_event(tmp_path,
                                                                                  capsys):
    root = tmp_path / "runs"
    write_earlier_run(root, "m", "qlora", 100.0, socket.gethostname())  # a GPU run
    write_earlier_run(root, "m", "qlora", 200.0, socket.gethostname())  # a CPU run
    gpu, cpu = sorted(root.iterdir())
    with open(gpu / "events.jsonl", "a") as events:
        events.write(json.dumps({"v": 1, "t": 3.0, "kind": "end", "status": "completed",
                                 "step": 2, "mem_peak_gib": 8.5}) + "\n")
    with open(cpu / "events.jsonl", "a") as events:
        events.write(json.dumps({"v": 1, "t": 3.0, "kind": "end", "status": "completed",
                                 "step": 2}) + "\n")
    assert cli_main(["ls", "--runs-dir", str(root), "--json"]) == 0
    rows = {row["run_id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows[gpu.name]["mem_measured_gib"] == 8.5
    assert rows[gpu.name]["mem_estimate_error"] == round((9.86 - 8.5) / 8.5, 4)
    # a CPU run's step peak is its process size: no GPU peak, no error, never a fake number
    assert rows[cpu.name]["mem_measured_gib"] is None
    assert rows[cpu.name]["mem_estimate_error"] is None
