"""The training worker end to end on the demo model: learning, events, final weights, failures."""

from __future__ import annotations

import json
import math

import pytest
from conftest import completed_run, read_events, run_worker

from tui_tune.events import contract_problems
from tui_tune.rundir import RunDir

# one xdist worker per module, so its shared runs happen once under `make test` (-n 2)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("train-runs")]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, make_run_dir):
    """One full fine-tuning run of the demo preset, shortened, shared by the tests below."""
    run_dir = make_run_dir(tmp_path_factory.mktemp("runs") / "demo", [
        "training.max_steps=120", "training.eval_every_steps=60", "logging.log_every_steps=10",
        "training.keep_checkpoints=1", 'prediction.metric="exact_match"'])
    return completed_run(run_dir)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, make_run_dir):
    run_dir = make_run_dir(tmp_path_factory.mktemp("runs") / "lora", [
        'adapter.method="lora"', "adapter.r=8", "adapter.alpha=16", "training.max_steps=12",
        "training.eval_every_steps=12", "logging.log_every_steps=4", "training.lr=0.002",
        'logging.tracker="tensorboard"', 'logging.project="demo-board"',
        'training.save_checkpoint="disable"',
        "training.evaluate_before_training=true",
        "architecture.gradient_checkpointing=true", "environment.seed=-1",
        "augmentation.neftune_noise_alpha=5", "augmentation.token_mask_probability=0.1"])
    return completed_run(run_dir)


@pytest.fixture(scope="module")
def packed_ssf_run(tmp_path_factory, make_run_dir, demo_assets):
    """Many switches at once: SSF, packing, accumulation, chained chat data, BLEU, best."""
    run_dir = make_run_dir(tmp_path_factory.mktemp("runs") / "packed", [
        'adapter.method="ssf"', 'adapter.target_modules=["q_proj", "v_proj"]',
        "training.packing=true", "training.grad_accumulation=2", 'training.loss="sample_avg_ce"',
        f'dataset.train_file="{demo_assets / "data" / "chained.jsonl"}"',
        'dataset.parent_id_column="parent_id"', "dataset.use_chat_template=true",
        'prediction.metric="bleu"', 'training.save_checkpoint="best"', "training.max_steps=10",
        "training.eval_every_steps=5", "logging.log_every_steps=5", "training.batch_size=8",
        'training.schedule="linear"', "environment.dataloader_workers=1",
        "training.grad_clip=0.01"])
    return completed_run(run_dir)


@pytest.fixture(scope="module")
def epochs_run(tmp_path_factory, make_run_dir):
    """Counted in epochs (no max_steps): warmup and evaluation every half epoch, a linear decay
    to a floor, a differential lr on the embeddings, validation rows trained on too."""
    from tui_tune.config.toml_io import dumps, read_toml, write_atomic

    run_dir = make_run_dir(tmp_path_factory.mktemp("runs") / "epochs", [
        "dataset.data_sample=0.1", "training.train_on_validation=true", "training.epochs=2",
        "training.warmup_ratio=0", "training.warmup_epochs=0.5", 'training.schedule="linear"',
        "training.min_lr_ratio=0.2", "training.differential_lr = { embed_tokens = 1e-4 }",
        "training.eval_every_epochs=0.5", 'training.save_checkpoint="each_evaluation"',
        "training.keep_checkpoints=3", "training.checkpoint_every_steps=4",
        "logging.log_every_steps=1", "prediction.num_samples=1",
        "logging.log_grad_norm=false"])
    config = read_toml(run_dir / "config.toml")
    del config["training"]["max_steps"], config["training"]["eval_every_steps"]
    write_atomic(run_dir / "config.toml", dumps(config))
    return completed_run(run_dir)


def test_epochs_warmup_eval_interval_and_lr_curve(epochs_run):
    """400 rows (380 train + 20 validation, trained on too) / batch 32 = 12 steps an epoch."""
    start = read_events(epochs_run, "start")[0]
    assert (start["train_rows"], start["val_rows"]) == (400, 20)
    assert (start["steps_per_epoch"], start["steps_total"]) == (12, 24)
    steps = read_events(epochs_run, "step")
    assert [s["step"] for s in steps] == list(range(1, 25))
    assert steps[5]["epoch"] == 0.5 and steps[-1]["epoch"] == 2.0
    assert all(s["grad_norm"] is None for s in steps)  # log_grad_norm = false
    peak = 0.003  # the main group's lr, not the embeddings' 1e-4
    warmup = [peak * (n + 1) / 7 for n in range(6)]  # 6 warmup steps = half an epoch
    decay = [peak * (0.2 + 0.8 * (1 - n / 18)) for n in range(18)]  # linear to the 0.2 floor
    assert [s["lr"] for s in steps] == pytest.approx(warmup + decay, rel=1e-6)
    assert [e["step"] for e in read_events(epochs_run, "eval")] == [6, 12, 18, 24]
    checkpoints = read_events(epochs_run, "checkpoint")
    assert [(c["step"], c["reason"]) for c in checkpoints] == [
        (4, "interval"), (6, "each"), (8, "interval"), (12, "each"), (16, "interval"),
        (18, "each"), (20, "interval"), (24, "each")]  # step 12 and 24: saved once
    kept = sorted(p.name for p in (epochs_run / "checkpoints").iterdir())
    assert kept == ["step-18", "step-20", "step-24"]


def test_packed_ssf_run_on_chained_data_completes(packed_ssf_run):
    start = read_events(packed_ssf_run, "start")[0]
    assert start["params_trainable"] == 4 * 2 * 2 * 128  # 4 layers x 2 targets x scale+shift
    evals = read_events(packed_ssf_run, "eval")
    assert [e["metric"] for e in evals] == ["bleu", "bleu"]
    assert all(0 <= e["metric_value"] <= 100 for e in evals)
    assert all(c["reason"] == "best" for c in read_events(packed_ssf_run, "checkpoint"))
    assert (packed_ssf_run / "final" / "ssf_weights.pt").is_file()
    assert read_events(packed_ssf_run, "end")[-1]["status"] == "completed"
    assert all(s["grad_norm"] > 0.01 for s in read_events(packed_ssf_run, "step"))  # unclipped


def test_demo_loss_falls_clearly(demo_run):
    steps = read_events(demo_run, "step")
    first, last = steps[0]["loss"], steps[-1]["loss"]
    assert last < 0.5 * first, (first, last)
    evals = read_events(demo_run, "eval")
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert all(e["perplexity"] == pytest.approx(math.exp(e["val_loss"])) for e in evals)


def test_exact_match_counts_the_answers_generated_exactly(demo_run):
    """prediction.metric exact_match: every validation answer generated and compared."""
    start = read_events(demo_run, "start")[0]
    evals = read_events(demo_run, "eval")
    assert [e["metric"] for e in evals] == ["exact_match", "exact_match"]
    for e in evals:
        assert e["exact_total"] == start["val_rows"] and 0 <= e["exact_count"] <= e["exact_total"]
        assert e["metric_value"] == e["exact_match"] == e["exact_count"] / e["exact_total"]
        assert e["perplexity"] > 1  # still written beside it
    last = [s for s in read_events(demo_run, "sample") if s["step"] == evals[-1]["step"]]
    shown_right = sum(s["generation"].strip() == s["reference"].strip() for s in last)
    assert shown_right <= evals[-1]["exact_count"]  # the shown samples are the first rows


def test_exact_match_strips_before_comparing():
    from tui_tune.train.metrics import exact_matches
    assert exact_matches([" 12\n", "7", "13 "], ["12", " 8", "1 3"]) == 1


def test_cosine_lr_with_warmup_ratio_and_floor_in_the_events(demo_run):
    """demo-tiny: lr 0.003, warmup_ratio 0.05 of 120 steps (6), cosine down to 0.1 of lr."""
    def used(step: int) -> float:  # the lr of optimizer step `step` (1-based)
        n = step - 1
        if n < 6:
            return 0.003 * (n + 1) / 7
        return 0.003 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (n - 6) / 114)))
    steps = read_events(demo_run, "step")
    assert [s["lr"] for s in steps] == pytest.approx([used(s["step"]) for s in steps], rel=1e-6)
    assert steps[-1]["lr"] > 0.0003  # the floor is reached after the last step, not before


def test_events_follow_the_contract(demo_run):
    events = read_events(demo_run)
    kinds = [e["kind"] for e in events if e["kind"] != "log"]
    assert kinds[0] == "start" and kinds[-1] == "end" and events[-1]["kind"] == "end"
    assert any(e["message"].startswith("data: 3800 training") for e in read_events(demo_run, "log"))
    assert all(not contract_problems(e) for e in events), \
        [p for e in events for p in contract_problems(e)]
    start = read_events(demo_run, "start")[0]
    assert start["world_size"] == 1 and start["params_trainable"] == start["params_total"] > 0
    assert start["steps_total"] == 120 and start["train_rows"] + start["val_rows"] == 4000
    step = read_events(demo_run, "step")[-1]
    assert step["tokens_per_s"] > 0 and step["step_time_s"] > 0 and step["mem_peak_gib"] > 0
    assert step["grad_norm"] > 0 and step["lr"] > 0
    samples = read_events(demo_run, "sample")
    assert samples and all({"prompt", "generation", "reference"} <= set(s) for s in samples)
    assert events[-1]["status"] == "completed"
    assert json.loads((demo_run / "run.json").read_text())["status"] == "completed"
    assert json.loads((demo_run / "ranks" / "rank-0.json").read_text())["pid"] > 0


def test_checkpoints_are_kept_and_final_loads(demo_run):
    checkpoints = read_events(demo_run, "checkpoint")
    assert [c["step"] for c in checkpoints] == [60, 120]
    kept = sorted(p.name for p in (demo_run / "checkpoints").iterdir())
    assert kept == ["step-120"]  # keep_checkpoints = 1
    for name in ("optimizer.pt", "scheduler.pt", "rng-0.pt", "trainer_state.json"):
        assert (demo_run / "checkpoints" / "step-120" / name).is_file()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(demo_run / "final")
    tokenizer = AutoTokenizer.from_pretrained(demo_run / "final")
    assert model.config.vocab_size == len(tokenizer)


def test_the_step_index_holds_every_step_line_of_a_real_run(demo_run):
    from tui_tune.step_index import read_step_index
    index = read_step_index(demo_run, run_size := RunDir(demo_run).events.stat().st_size)
    steps = read_events(demo_run, "step")
    assert index is not None and index.rows == len(steps) and index.covered <= run_size
    assert index.values("step").tolist() == [s["step"] for s in steps]
    assert index.values("loss").tolist() == [s["loss"] for s in steps]


def test_the_worker_writes_only_what_rundir_names(demo_run):
    """The run directory contract holds for a real run: no file the app does not know of."""
    run = RunDir(demo_run)
    named = {run.config, run.run_json, run.events, run.summary_cache, run.console_log,
             run.ranks, run.worker_lock(), run.checkpoints, run.final, run.step_index}
    assert set(demo_run.iterdir()) <= named
    assert {run.config, run.run_json, run.events, run.checkpoints, run.final,
            run.step_index} <= set(demo_run.iterdir())
    assert run.rank_files() == [run.rank_file(0)]
    assert list(run.checkpoints.iterdir()) == [run.checkpoint(120)]
    assert read_events(demo_run, "end")[-1]["final"] == str(run.final)


def test_final_lora_adapter_loads_with_peft_and_generates(lora_run, demo_assets):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = read_events(lora_run, "start")[0]
    assert 0 < start["params_trainable"] < start["params_total"] / 5
    assert (lora_run / "final" / "adapter_model.safetensors").is_file()
    base = AutoModelForCausalLM.from_pretrained(demo_assets / "model")
    model = PeftModel.from_pretrained(base, lora_run / "final")
    tokenizer = AutoTokenizer.from_pretrained(lora_run / "final")
    ids = tokenizer("<|bos|><|prompt|>What is 2 + 3?<|eos|><|answer|>",
                    return_tensors="pt", add_special_tokens=False).input_ids
    out = model.generate(ids, max_new_tokens=4, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > ids.shape[1]
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(torch.count_nonzero(p) > 0 for p in lora_b)  # it learned something
    assert read_events(lora_run, "eval")[0]["step"] == 0  # evaluate_before_training
    assert not read_events(lora_run, "checkpoint") and not (lora_run / "checkpoints").exists()
    seed = json.loads((lora_run / "run.json").read_text())["seed"]
    assert seed == start["seed"] >= 0  # -1 drew a seed and recorded it


def test_tensorboard_tracker_gets_the_metrics(lora_run):
    """logging.tracker = "tensorboard": scalars land under trackers/<project>, offline."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = list((lora_run / "trackers" / "demo-board").glob("events.out.tfevents*"))
    assert len(files) == 1
    board = EventAccumulator(str(files[0]))
    board.Reload()
    tags = set(board.Tags()["scalars"])
    assert {"train/loss", "train/lr", "eval/val_loss"} <= tags, tags
    losses = {e.step: e.value for e in board.Scalars("train/loss")}
    assert losses == pytest.approx({e["step"]: e["loss"] for e in read_events(lora_run, "step")})
    assert [e.step for e in board.Scalars("eval/val_loss")] == [0, 12]


def test_missing_column_fails_with_setting_and_file(tmp_path, make_run_dir):
    run_dir = make_run_dir(tmp_path / "bad", ['dataset.answer_column="solution"'])
    result = run_worker(run_dir)
    assert result.returncode == 1
    end = read_events(run_dir, "end")[-1]
    assert end["status"] == "failed" and "dataset.answer_column" in end["message"]
    assert "train.jsonl" in end["message"] and "'solution'" in end["message"]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"


def test_crashing_dataset_ends_failed_with_the_message(tmp_path, make_run_dir):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "What is 1 + 1?", "answer": "2"}\n{"prompt": oops\n')
    run_dir = make_run_dir(tmp_path / "crash", [f'dataset.train_file="{broken}"',
                                                 'dataset.system_column=""'])
    result = run_worker(run_dir)
    assert result.returncode == 1
    end = read_events(run_dir, "end")[-1]
    assert end["status"] == "failed" and "broken.jsonl" in end["message"]
    assert "dataset.train_file" in end["message"]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    run_dir = make_run_dir(tmp_path / "empty", [f'dataset.train_file="{empty}"'])
    assert run_worker(run_dir).returncode == 1
    assert "empty" in read_events(run_dir, "end")[-1]["message"]


def test_start_records_what_the_run_ran_on(lora_run):
    """python, torch, CUDA, the libraries, GPUs, driver, tui-tune and this checkout's commit."""
    import platform
    import subprocess
    from pathlib import Path

    import torch

    from tui_tune.events import ENVIRONMENT_FIELDS

    env = read_events(lora_run, "start")[0]["environment"]
    assert set(env) == set(ENVIRONMENT_FIELDS)
    assert (env["python"], env["torch"]) == (platform.python_version(), torch.__version__)
    assert env["peft"] and env["accelerate"] and env["transformers"] and env["tui_tune"]
    checkout = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], check=False,
                          capture_output=True, text=True)
    assert env["git_commit"] == (head.stdout.strip() if head.returncode == 0 else None)
    if not torch.cuda.is_available():
        assert (env["cuda"], env["gpus"], env["driver"]) == (None, [], None)


def test_the_start_event_carries_the_memory_estimate(epochs_run):
    """runs/estimate's peak for the run's own settings (the worker computes it, no torch)."""
    from tui_tune.config.presets import resolve
    from tui_tune.runs.estimate import peak_gib

    start = read_events(epochs_run, "start")[0]
    exp = resolve(str(epochs_run / "config.toml")).experiment
    assert start["mem_estimate_gib"] == peak_gib(exp, 1) > 0
    # its end event: the measured GPU peak beside it, none at all on a CPU (no fake number)
    end = read_events(epochs_run, "end")[-1]
    if start["devices"][0] == "cpu":
        assert end.get("mem_peak_gib") is None
    else:
        assert end["mem_peak_gib"] > 0


def test_a_cpu_has_no_gpu_peak_to_report():
    import torch

    from tui_tune.train.reporting import gpu_peak_gib, memory_gib
    assert gpu_peak_gib(torch.device("cpu")) is None
    assert memory_gib(torch.device("cpu"))["mem_peak_gib"] > 0  # the process size, for charts
