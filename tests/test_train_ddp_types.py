"""Extractive QA and seq2seq on two CPU ranks (gloo): each rank evaluates its share of the
validation rows (an odd number of them; a QA question's windows stay on one rank), and the
gathered metrics are those of the final model on every row."""

from __future__ import annotations

import pytest
import torch
from conftest import read_events
from test_train_ddp import launch
from test_train_qa import reference_answers, validation_rows
from test_train_seq2seq import PRESET as SEQ2SEQ_PRESET
from test_train_seq2seq import demo_sets, reference_generation

from tui_tune.rundir import RunDir
from tui_tune.train.qa_metrics import squad_scores
from tui_tune.train.setup import read_experiment

pytestmark = [
    pytest.mark.slow, pytest.mark.xdist_group("train-ddp-types"),
    pytest.mark.skipif(torch.cuda.device_count() == 1,
                       reason="one GPU: two nccl ranks cannot share it")]


def completed_on_two_ranks(run_dir):
    output = launch(run_dir).communicate(timeout=400)[0].decode(errors="replace")
    assert read_events(run_dir, "end")[-1]["status"] == "completed", output[-3000:]
    assert read_events(run_dir, "start")[0]["world_size"] == 2
    return run_dir


def test_qa_on_two_ranks_scores_every_validation_question(tmp_path, make_run_dir, demo_assets):
    run_dir = completed_on_two_ranks(make_run_dir(tmp_path / "qa", [
        f'general.backbone="{demo_assets / "encoder"}"',
        f'dataset.train_file="{demo_assets / "data" / "qa.jsonl"}"',
        "dataset.validation_size=0.0255", "training.max_steps=8", "training.eval_every_steps=8",
        "training.evaluate_before_training=false"], preset="demo-qa"))
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    rows = validation_rows(run_dir)
    assert len(rows) % 2 == 1  # one rank has one more
    model = AutoModelForQuestionAnswering.from_pretrained(run_dir / "final")
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "final")
    predicted = reference_answers(model, tokenizer, rows, read_experiment(run_dir),
                                  unanswerable=True)
    expected = squad_scores([[r["answer"]] for r in rows], predicted)
    last = read_events(run_dir, "eval")[-1]
    assert last["exact_match"] == pytest.approx(expected["exact_match"], abs=1e-9)
    assert last["f1"] == pytest.approx(expected["f1"], abs=1e-9)


def test_seq2seq_on_two_ranks_scores_every_validation_row(tmp_path, make_run_dir, demo_assets):
    from rouge_score import rouge_scorer
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from tui_tune.train.tasks import task_named

    run_dir = completed_on_two_ranks(make_run_dir(tmp_path / "s2s", [
        *demo_sets(demo_assets), "dataset.validation_size=0.017", "training.max_steps=8",
        "training.eval_every_steps=8", "training.evaluate_before_training=false"],
        preset=SEQ2SEQ_PRESET))
    exp = read_experiment(run_dir)
    seed = read_events(run_dir, "start")[0]["seed"]
    model = AutoModelForSeq2SeqLM.from_pretrained(run_dir / "final").eval()
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "final")
    val = task_named("seq2seq").load_data(exp, tokenizer, seed).val
    assert len(val) % 2 == 1
    made = reference_generation(model, tokenizer, [e.source for e in val],
                                exp.prediction.batch_size)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge_l = 100 * sum(scorer.score(e.target, g)["rougeL"].fmeasure
                        for g, e in zip(made, val)) / len(val)
    assert read_events(run_dir, "eval")[-1]["rougeL"] == pytest.approx(rouge_l, abs=1e-6)


def test_dpo_on_two_ranks_caches_each_pairs_reference_where_its_rank_reads_it(
        tmp_path, make_run_dir, demo_assets):
    """The reference log-probs cached before training (precompute_reference) are computed on
    both ranks and read back by pair index: the two-rank run with the cache has the losses and
    metrics of the two-rank run that computes the reference at every step."""
    def dpo_run(name: str, precompute: bool):
        return completed_on_two_ranks(make_run_dir(tmp_path / name, [
            f'dataset.train_file="{demo_assets / "data" / "preference.jsonl"}"',
            "training.max_steps=6", "training.eval_every_steps=6", "logging.log_every_steps=1",
            "training.evaluate_before_training=false", "prediction.num_samples=1",
            f"training.precompute_reference={'true' if precompute else 'false'}"],
            preset="demo-dpo"))

    cached, live = dpo_run("cached", True), dpo_run("live", False)
    assert RunDir(cached).reference_logps.is_file()
    assert not RunDir(live).reference_logps.exists()
    for a, b in zip(read_events(cached, "step"), read_events(live, "step"), strict=True):
        for name in ("loss", "train_reward_margin", "train_preference_accuracy"):
            assert a[name] == pytest.approx(b[name], rel=1e-4, abs=1e-5), (a["step"], name)
    a, b = read_events(cached, "eval")[-1], read_events(live, "eval")[-1]
    for name in ("val_loss", "preference_accuracy", "reward_margin"):
        assert a[name] == pytest.approx(b[name], rel=1e-4, abs=1e-5), name


def test_grpo_on_two_ranks_samples_on_both_and_evaluates_every_prompt(
        tmp_path, make_run_dir, demo_assets):
    run_dir = completed_on_two_ranks(make_run_dir(tmp_path / "grpo", [
        "dataset.data_sample=0.05", "dataset.validation_size=0.1", "training.batch_size=2",
        "training.num_generations=2", "training.max_completion_length=4",
        "training.max_steps=4", "training.eval_every_steps=4", "logging.log_every_steps=1",
        "training.evaluate_before_training=false", "prediction.num_samples=1",
        "prediction.max_new_tokens=4", 'training.reward_functions=["exact_match", "length"]',
        "training.reward_weights=[1.0, 1.0]"], preset="demo-grpo"))
    steps = read_events(run_dir, "step")
    assert [s["step"] for s in steps] == [1, 2, 3, 4]
    for step in steps:
        assert -1.0 <= step["train_reward_length"] < 0
        assert 1 <= step["train_completion_length"] <= 4
    last = read_events(run_dir, "eval")[-1]
    assert last["step"] == 4 and 0.0 <= last["exact_match"] <= 1.0
    assert (run_dir / "final" / "adapter_model.safetensors").is_file()
