"""grpo end to end on the demo sums (a tiny random model, a few steps): step events carry the
reward statistics, evals the greedy answers' reward and exact-answer rate, samples a few
sampled completions with their rewards; a run stopped by SIGTERM and resumed draws the same
completions as the uninterrupted one (the sampling RNG is in the checkpoint: same rewards,
losses and eval samples); final/ is a causal LM adapter that transformers loads."""

from __future__ import annotations

import pytest
from conftest import read_events, run_worker
from test_train_resume import losses, whole_and_resumed

from tui_tune.events import contract_problems
from tui_tune.rundir import RunDir

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("train-grpo")]

# a random model never answers right nor ends early: a format reward on its first letter
# gives the groups a spread
SETTINGS = ["training.max_steps=8", "training.eval_every_steps=4", "logging.log_every_steps=1",
            "training.evaluate_before_training=false", "dataset.data_sample=0.05",
            "dataset.validation_size=0.1", "training.batch_size=2", "training.num_generations=4",
            "training.max_completion_length=6",
            'training.reward_functions=["exact_match", "length", "format"]',
            "training.reward_weights=[1.0, 1.0, 0.5]", 'training.reward_pattern="^[a-m]"',
            "training.beta=0.1", "adapter.dropout=0.1", "prediction.num_samples=2",
            "prediction.max_new_tokens=4", "training.lr=0.01"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory, make_run_dir):
    """(uninterrupted run, run stopped at step 3 and resumed)."""
    return whole_and_resumed(make_run_dir, tmp_path_factory.mktemp("grpo"), SETTINGS,
                             "demo-grpo", 3)


def test_steps_and_evals_carry_the_reward_statistics(pair):
    whole, _ = pair
    steps = read_events(whole, "step")
    assert [s["step"] for s in steps] == list(range(1, 9))
    for step in steps:
        assert -1.0 <= step["train_reward_length"] < 0 and step["train_reward_exact_match"] >= 0
        assert 0 <= step["train_reward_format"] <= 1
        assert step["train_reward"] == pytest.approx(
            step["train_reward_exact_match"] + step["train_reward_length"]
            + 0.5 * step["train_reward_format"], abs=1e-6)
        assert step["train_reward_std"] >= 0 and 0 <= step["train_zero_std_fraction"] <= 1
        assert 1 <= step["train_completion_length"] <= 6
        assert step["train_kl"] >= 0 and 0 <= step["train_clip_ratio"] <= 1
        # tokens/s counts what the policy went through: each prompt once per generation
        # (4) and the sampled completions (2 prompts x 4 of train_completion_length)
        prompt_tokens = step["tokens"] - round(step["train_completion_length"] * 8)
        assert prompt_tokens > 0 and prompt_tokens % 4 == 0, step
    assert steps[0]["train_kl"] == pytest.approx(0.0, abs=1e-6)  # the policy is the reference
    assert max(s["train_kl"] for s in steps[1:]) > 0  # trained: the policy moved
    assert max(s["train_reward_std"] for s in steps) > 0
    assert min(s["train_zero_std_fraction"] for s in steps) < 1
    evals = read_events(whole, "eval")
    assert [e["step"] for e in evals] == [4, 8]
    for e in evals:
        assert e["metric"] == "exact_match" and e["metric_value"] == e["exact_match"]
        assert e["val_loss"] == pytest.approx(-e["reward"])
    assert all(not contract_problems(e) for e in read_events(whole)), \
        [p for e in read_events(whole) for p in contract_problems(e)]


def test_samples_show_completions_with_their_rewards(pair):
    whole, _ = pair
    samples = [s for s in read_events(whole, "sample") if s["step"] == 8]
    assert len(samples) == 2
    for sample in samples:
        assert "What is" in sample["prompt"] and sample["reference"].lstrip("-").isdigit()
        assert len(sample["completions"]) == 4
        assert all(isinstance(c["text"], str) and -1.0 <= c["reward"] <= 2.5
                   for c in sample["completions"])


def test_a_resumed_run_draws_the_same_completions(pair):
    whole, resumed = pair
    assert read_events(resumed, "start")[1]["resumed_from_step"] >= 3
    assert sorted(losses(resumed)) == list(range(1, 9)) == sorted(losses(whole))
    by_step = {s["step"]: s for s in read_events(whole, "step")}
    for step in read_events(resumed, "step"):
        for name in ("loss", "train_reward", "train_completion_length", "train_kl"):
            assert step[name] == pytest.approx(by_step[step["step"]][name], rel=1e-5,
                                               abs=1e-6), (step["step"], name)
    last = [s["completions"] for s in read_events(whole, "sample") if s["step"] == 8]
    again = [s["completions"] for s in read_events(resumed, "sample") if s["step"] == 8]
    assert [[c["text"] for c in group] for group in again] == \
        [[c["text"] for c in group] for group in last]


def test_final_is_a_causal_lm_adapter(pair):
    from transformers import AutoModelForCausalLM

    whole, _ = pair
    final = RunDir(whole).final
    assert (final / "adapter_model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(final)
    assert any("lora_" in name for name, _ in model.named_parameters())


def test_a_run_resumed_between_two_passes_of_a_batch_reuses_its_completions(
        tmp_path, make_run_dir):
    """num_iterations 2: steps 3 and 4 share one batch of completions. Resumed from the
    checkpoint of step 3 (a copy of the run cut there), step 4 reuses the completions kept in
    the checkpoint instead of sampling new ones: the uninterrupted run's losses and rewards."""
    import shutil

    settings = [*SETTINGS, "training.num_iterations=2", "training.checkpoint_every_steps=3",
                "training.keep_checkpoints=5", "training.max_steps=6",
                "training.eval_every_steps=6"]
    whole = make_run_dir(tmp_path / "whole", settings, preset="demo-grpo")
    result = run_worker(whole)
    assert result.returncode == 0, result.stderr[-3000:]
    cut = tmp_path / "cut"
    shutil.copytree(whole, cut)
    shutil.rmtree(RunDir(cut).final)
    for folder in (cut / "checkpoints").iterdir():
        if folder.name != "step-3":
            shutil.rmtree(folder)
    lines = (cut / "events.jsonl").read_text().splitlines(keepends=True)
    first_after = next(n for n, line in enumerate(lines) if '"step": 4' in line
                       or '"step":4' in line)
    (cut / "events.jsonl").write_text("".join(lines[:first_after]))
    result = run_worker(cut, "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_events(cut, "start")[1]["resumed_from_step"] == 3
    by_step = {s["step"]: s for s in read_events(whole, "step")}
    resumed = [s for s in read_events(cut, "step") if s["step"] > 3]
    assert [s["step"] for s in resumed] == [4, 5, 6]
    for step in resumed:
        for name in ("loss", "train_reward", "train_completion_length", "train_kl"):
            assert step[name] == pytest.approx(by_step[step["step"]][name], rel=1e-5,
                                               abs=1e-6), (step["step"], name)
