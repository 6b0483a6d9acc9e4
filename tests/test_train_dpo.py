"""dpo end to end on the demo pairs: preference accuracy and the reward margin rise, the step
and eval events carry the preference statistics, the reference log-probs are cached in the run
folder and a stopped run resumes with them (same losses as the uninterrupted run), final/ is a
causal LM adapter that transformers loads, and the test file is predicted."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import read_events, run_worker
from test_train_resume import losses, stop_at_step

from tui_tune.events import contract_problems
from tui_tune.rundir import RunDir

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("train-dpo")]

SETTINGS = ["training.max_steps=20", "training.eval_every_steps=10", "logging.log_every_steps=1",
            "adapter.dropout=0.1", "training.precompute_reference=true",
            "prediction.num_samples=2"]


def settings(demo, test_file) -> list[str]:
    return [f'dataset.train_file="{demo / "data" / "preference.jsonl"}"',
            f'dataset.test_file="{test_file}"', *SETTINGS]


@pytest.fixture(scope="module")
def pair(tmp_path_factory, make_run_dir, demo_assets):
    """(uninterrupted run, run stopped at step 6 and resumed, the mtime of its cache file
    before the resume)."""
    root = tmp_path_factory.mktemp("dpo")
    test_file = root / "questions.jsonl"
    test_file.write_text("".join(json.dumps({"prompt": f"What is {n} + 2?"}) + "\n"
                                 for n in range(3)), encoding="utf-8")
    whole = make_run_dir(root / "whole", settings(demo_assets, test_file), preset="demo-dpo")
    result = run_worker(whole)
    assert result.returncode == 0, result.stderr[-3000:]
    stopped = stop_at_step(make_run_dir(root / "stopped", settings(demo_assets, test_file),
                                        preset="demo-dpo"), 6)
    assert read_events(stopped, "end")[-1]["status"] == "stopped"
    cached_at = RunDir(stopped).reference_logps.stat().st_mtime_ns
    result = run_worker(stopped, "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    return whole, stopped, cached_at


def test_training_raises_preference_accuracy_and_margin(pair):
    whole, _, _ = pair
    evals = read_events(whole, "eval")
    assert [e["step"] for e in evals] == [0, 10, 20]
    first, last = evals[0], evals[-1]
    assert first["reward_margin"] == pytest.approx(0.0, abs=1e-6)  # the model is the reference
    assert last["metric"] == "preference_accuracy"
    assert last["metric_value"] == last["preference_accuracy"] >= 0.7
    assert last["reward_margin"] > 0.05 and last["rewards_chosen"] > last["rewards_rejected"]
    assert last["val_loss"] < first["val_loss"]
    steps = read_events(whole, "step")
    assert steps[-1]["train_preference_accuracy"] > steps[0]["train_preference_accuracy"]
    for name in ("train_rewards_chosen", "train_rewards_rejected", "train_reward_margin",
                 "train_logps_chosen", "train_logps_rejected"):
        assert all(isinstance(s[name], float) for s in steps), name
    assert all(not contract_problems(e) for e in read_events(whole)), \
        [p for e in read_events(whole) for p in contract_problems(e)]


def test_samples_show_prompt_generation_chosen_and_rejected(pair):
    whole, _, _ = pair
    samples = [s for s in read_events(whole, "sample") if s["step"] == 20]
    assert len(samples) == 2
    for sample in samples:
        assert "What is" in sample["prompt"] and sample["reference"].isdigit()
        assert sample["rejected"].isdigit() and sample["rejected"] != sample["reference"]
        assert isinstance(sample["generation"], str)


def test_resume_reuses_the_reference_cache_and_matches_the_uninterrupted_run(pair):
    whole, resumed, cached_at = pair
    cache = RunDir(resumed).reference_logps
    assert cache.stat().st_mtime_ns == cached_at  # read, not written again
    logs = [e["message"] for e in read_events(resumed, "log")]
    assert any("computed and kept in reference-logps.pt" in m for m in logs)
    assert any("read from reference-logps.pt" in m for m in logs), logs
    assert read_events(resumed, "start")[1]["resumed_from_step"] >= 6
    assert sorted(losses(resumed)) == list(range(1, 21)) == sorted(losses(whole))
    for step, loss in losses(whole).items():
        assert losses(resumed)[step] == pytest.approx(loss, rel=1e-5, abs=1e-6), step
    last_whole, last_resumed = read_events(whole, "eval")[-1], read_events(resumed, "eval")[-1]
    for name in ("val_loss", "preference_accuracy", "reward_margin"):
        assert last_resumed[name] == pytest.approx(last_whole[name], rel=1e-5, abs=1e-6), name


def test_final_is_a_causal_lm_adapter_and_the_test_file_is_predicted(pair):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    whole, _, _ = pair
    final = RunDir(whole).final
    assert (final / "adapter_model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(final)
    assert any("lora_" in name for name, _ in model.named_parameters())
    tokenizer = AutoTokenizer.from_pretrained(final)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is 1 + 2?"}],
                                        add_generation_prompt=True, return_tensors="pt")
    ids = ids["input_ids"] if not isinstance(ids, torch.Tensor) else ids
    assert "<|answer|>" in tokenizer.decode(ids[0])  # the text markers it was trained with
    with open(RunDir(whole).predictions(".csv"), encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["prompt"] for r in rows] == [f"What is {n} + 2?" for n in range(3)]
    assert all("prediction" in r for r in rows)
