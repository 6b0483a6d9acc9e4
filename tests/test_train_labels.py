"""Classification and regression through the real worker on the demo data: each learns to a
clear score, its eval events carry every metric of the type (and the confusion matrix), and
final/ loads with AutoModelForSequenceClassification (through peft for LoRA) and gives the
logged validation metric again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import completed_run, read_events
from sklearn import metrics as skm

from tui_tune.events import contract_problems

# one xdist worker per module, so its shared runs happen once under `make test` (-n 2)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("train-labels")]


def data(demo: Path, name: str) -> str:
    return f'dataset.train_file="{demo / "data" / name}"'


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory, make_run_dir, demo_assets):
    """demo-classify as shipped (full fine-tuning, label texts), shortened."""
    run_dir = make_run_dir(tmp_path_factory.mktemp("runs") / "classify", [
        data(demo_assets, "sentiment.jsonl"), "training.max_steps=40"], preset="demo-classify")
    return completed_run(run_dir)


@pytest.fixture(scope="module")
def regress_run(tmp_path_factory, make_run_dir, demo_assets):
    run_dir = make_run_dir(tmp_path_factory.mktemp("runs") / "regress", [
        data(demo_assets, "weather.jsonl"), "training.max_steps=60",
        "training.eval_every_steps=30"], preset="demo-regress")
    return completed_run(run_dir)


@pytest.fixture(scope="module")
def lora_binary_run(tmp_path_factory, make_run_dir, demo_assets):
    """LoRA on a binary label (one output, BCE) with H2O's slower head, judged by AUC."""
    run_dir = make_run_dir(tmp_path_factory.mktemp("runs") / "lora", [
        data(demo_assets, "sentiment.jsonl"), 'adapter.method="lora"', "adapter.r=8",
        "adapter.alpha=16", 'dataset.label_columns=["positive"]', "dataset.num_classes=1",
        'prediction.metric="auc"', "training.lr=0.003",
        "training.differential_lr = { score = 0.001 }", "training.max_steps=30",
        "training.eval_every_steps=30", 'training.save_checkpoint="disable"'],
        preset="demo-classify")
    return completed_run(run_dir)


@pytest.fixture(scope="module")
def multilabel_run(tmp_path_factory, make_run_dir, demo_assets):
    """Two 0/1 columns with class weights, last_layer, left padding, Huber-free: it runs."""
    run_dir = make_run_dir(tmp_path_factory.mktemp("runs") / "multi", [
        data(demo_assets, "sentiment.jsonl"), 'adapter.method="last_layer"',
        'dataset.label_columns=["food", "music"]', "training.class_weights=[1.0, 3.0]",
        'prediction.metric="f1"', 'tokenizer.padding_side="left"', "training.max_steps=20",
        "training.eval_every_steps=20", "training.evaluate_before_training=false"],
        preset="demo-classify")
    return completed_run(run_dir)


def check_contract(run_dir: Path) -> None:
    problems = [p for e in read_events(run_dir) for p in contract_problems(e)]
    assert not problems, problems


def test_classification_learns_and_reports_every_metric(classify_run):
    check_contract(classify_run)
    evals = read_events(classify_run, "eval")
    assert [e["step"] for e in evals] == [0, 20, 40]  # a baseline before training
    assert evals[0]["accuracy"] < 0.6 and evals[-1]["accuracy"] >= 0.95, evals
    assert evals[-1]["val_loss"] < 0.3 * evals[0]["val_loss"]
    last = evals[-1]
    assert last["metric"] == "accuracy" and last["metric_value"] == last["accuracy"]
    assert {"auc", "logloss", "f1"} <= set(last) and "perplexity" not in last
    assert last["logloss"] == pytest.approx(last["val_loss"], rel=1e-5)  # unweighted CE
    assert last["labels"] == ["negative", "neutral", "positive"]
    confusion = np.array(last["confusion"])
    assert confusion.shape == (3, 3) and confusion.sum() == 200
    assert np.trace(confusion) / 200 == pytest.approx(last["accuracy"])
    samples = [s for s in read_events(classify_run, "sample") if s["step"] == 40]
    assert len(samples) == 4
    for sample in samples:
        assert sample["reference"] == sample["truth"] in last["labels"]
        assert sample["generation"].startswith(sample["predicted"] + " (0.")
        assert sum(sample["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)


def test_regression_learns(regress_run):
    check_contract(regress_run)
    evals = read_events(regress_run, "eval")
    first, last = evals[0], evals[-1]
    assert last["mse"] < 0.25 * first["mse"] and last["r2"] > 0.8, evals
    assert last["metric_value"] == last["mse"] == pytest.approx(last["val_loss"], rel=1e-5)
    assert "confusion" not in last
    sample = read_events(regress_run, "sample")[-1]
    assert float(sample["generation"]) == pytest.approx(sample["predicted"][0], rel=1e-3)
    assert float(sample["reference"]) == sample["truth"][0]


def test_multilabel_with_class_weights_runs_under_last_layer(multilabel_run):
    check_contract(multilabel_run)
    last = read_events(multilabel_run, "eval")[-1]
    assert last["metric"] == "f1" and 0.0 <= last["f1"] <= 1.0
    assert "confusion" not in last  # one matrix per label: not a single class confusion
    assert last["val_loss"] != pytest.approx(last["logloss"])  # the weights count in the loss
    sample = read_events(multilabel_run, "sample")[-1]
    assert set(sample["probabilities"]) == {"food", "music"}


def validation_outputs(run_dir: Path, model) -> tuple[np.ndarray, list]:
    """The final model's outputs on the run's validation rows, as the worker split them, and
    their targets; tokens from final/'s own tokenizer."""
    from transformers import AutoTokenizer

    from tui_tune.train.setup import read_experiment
    from tui_tune.train.tasks import task_for

    exp = read_experiment(run_dir)
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "final")
    seed = json.loads((run_dir / "run.json").read_text())["seed"]
    examples = task_for(exp).load_data(exp, tokenizer, seed).val
    width = max(len(e) for e in examples)
    ids = torch.full((len(examples), width), tokenizer.pad_token_id)
    for row, example in enumerate(examples):
        ids[row, :len(example)] = torch.tensor(example.input_ids)
    with torch.no_grad():
        logits = model.eval()(input_ids=ids, attention_mask=(ids != tokenizer.pad_token_id)
                              .long()).logits
    return logits.double().numpy(), [e.target for e in examples]


def test_final_loads_as_a_sequence_classifier_and_gives_the_logged_metrics(classify_run):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(classify_run / "final")
    assert model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    logits, truth = validation_outputs(classify_run, model)
    probs = torch.softmax(torch.from_numpy(logits), dim=-1).numpy()
    last = read_events(classify_run, "eval")[-1]
    assert skm.log_loss(truth, probs, labels=[0, 1, 2]) == pytest.approx(last["logloss"],
                                                                          rel=1e-4)
    assert skm.accuracy_score(truth, probs.argmax(1)) == last["accuracy"]


def test_final_regressor_gives_the_logged_mse(regress_run):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(regress_run / "final")
    assert model.config.problem_type == "regression" and model.config.num_labels == 1
    outputs, truth = validation_outputs(regress_run, model)
    last = read_events(regress_run, "eval")[-1]
    assert skm.mean_squared_error(truth, outputs) == pytest.approx(last["mse"], rel=1e-4)


def test_lora_final_loads_through_peft_and_gives_the_logged_auc(lora_binary_run, demo_assets):
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForSequenceClassification

    final = lora_binary_run / "final"
    assert (final / "adapter_model.safetensors").is_file()
    config = AutoConfig.from_pretrained(final)  # the head's settings, beside the adapter
    assert config.num_labels == 1 and config.id2label == {0: "1"}  # the positive class
    base = AutoModelForSequenceClassification.from_pretrained(demo_assets / "model",
                                                              config=config)
    model = PeftModel.from_pretrained(base, final)
    logits, truth = validation_outputs(lora_binary_run, model)
    last = read_events(lora_binary_run, "eval")[-1]
    assert last["metric"] == "auc" and last["auc"] > 0.9, last
    auc = skm.roc_auc_score(np.array(truth)[:, 0], logits[:, 0])
    assert auc == pytest.approx(last["auc"], rel=1e-6)
    assert read_events(lora_binary_run, "start")[0]["params_trainable"] < 100_000
