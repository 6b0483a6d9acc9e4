"""Classification and regression heads in process, on the demo backbone: our losses equal
transformers' own `labels=` loss on the same batch, the head trains under LoRA, last_layer and a
differential lr that names it, and the rows become the examples the worker trains on."""

from __future__ import annotations

import json

import pytest
import torch

from tui_tune.config.presets import resolve
from tui_tune.train.errors import UserError
from tui_tune.train.tasks.classification import Classification, class_loss
from tui_tune.train.tasks.regression import Regression, regression_loss
from tui_tune.train.tasks.sequence_head import head_kwargs


def sequence_model(demo, outputs: int, problem_type: str):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo / "model")
    torch.manual_seed(0)
    names = [f"c{i}" for i in range(outputs)]
    model = AutoModelForSequenceClassification.from_pretrained(
        demo / "model", **head_kwargs(outputs, problem_type, names, tokenizer.pad_token_id))
    return model.eval(), tokenizer


def batch(tokenizer) -> dict[str, torch.Tensor]:
    """Rows of different lengths, right-padded: the head reads each row's last real token."""
    texts = ["the song was great", "the pizza was awful and dull", "the trip was long",
             "the game was fun and lovely, the evening was warm"]
    return dict(tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False))


CASES = {  # name -> (outputs, transformers' problem type, labels)
    "multiclass": (3, "single_label_classification", torch.tensor([2, 0, 1, 2])),
    "binary": (1, "multi_label_classification", torch.tensor([[1.0], [0.0], [0.0], [1.0]])),
    "multilabel": (2, "multi_label_classification",
                   torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])),
    "regression": (1, "regression", torch.tensor([[4.5], [0.5], [2.0], [3.0]])),
    "regression-2": (2, "regression", torch.tensor([[4.5, 1.0], [0.5, 2.0], [2.0, 0.0],
                                                    [3.0, 3.5]])),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_our_loss_from_the_logits_equals_transformers_labels_loss(demo_assets, case):
    outputs, problem_type, labels = CASES[case]
    model, tokenizer = sequence_model(demo_assets, outputs, problem_type)
    inputs = batch(tokenizer)
    assert (inputs["input_ids"] == tokenizer.pad_token_id).any()  # padding is in play
    with torch.no_grad():
        reference = model(**inputs, labels=labels)
    if problem_type == "regression":
        ours = regression_loss(reference.logits, labels, "mse")
    else:
        ours = class_loss(reference.logits, labels)
        ones = torch.ones(reference.logits.shape[-1])  # a weight per class or per label
        assert torch.allclose(class_loss(reference.logits, labels, ones), ours, atol=1e-6)
    assert reference.loss.item() > 0
    torch.testing.assert_close(ours, reference.loss, rtol=0, atol=1e-6)


def test_weights_mae_and_huber_change_the_loss_as_defined(demo_assets):
    model, tokenizer = sequence_model(demo_assets, 3, "single_label_classification")
    labels = CASES["multiclass"][2]
    with torch.no_grad():
        logits = model(**batch(tokenizer)).logits
    per_row = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    weights = torch.tensor([1.0, 2.0, 5.0])
    expected = (per_row * weights[labels]).sum() / weights[labels].sum()
    torch.testing.assert_close(class_loss(logits, labels, weights), expected)
    out, target = torch.tensor([[1.0], [4.0]]), torch.tensor([[0.5], [1.0]])
    assert regression_loss(out, target, "mae").item() == pytest.approx((0.5 + 3.0) / 2)
    assert regression_loss(out, target, "huber").item() == pytest.approx((0.125 + 2.5) / 2)


def experiment(demo, preset: str, *sets: str):
    data = "sentiment.jsonl" if preset == "demo-classify" else "weather.jsonl"
    return resolve(preset, [f'general.backbone="{demo / "model"}"',
                            f'dataset.train_file="{demo / "data" / data}"', *sets]).experiment


def built(demo, preset: str, *sets: str):
    """The worker's model for the preset: data, backbone with its head, the adapter method."""
    from tui_tune.train.adapters import apply_method
    from tui_tune.train.model import load_backbone, load_tokenizer
    from tui_tune.train.tasks import task_for

    exp = experiment(demo, preset, *sets)
    tokenizer = load_tokenizer(exp)
    task = task_for(exp)
    data = task.load_data(exp, tokenizer, 0)
    model = apply_method(load_backbone(exp, tokenizer, torch.device("cpu"), data), exp)
    return exp, task, data, model, tokenizer


def test_string_labels_become_sorted_ids_and_the_head_is_sized_and_named(demo_assets):
    _, _, data, model, tokenizer = built(demo_assets, "demo-classify")
    assert data.labels.names == ["negative", "neutral", "positive"]
    config = model.config
    assert config.num_labels == 3 and config.problem_type == "single_label_classification"
    assert config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    assert config.pad_token_id == tokenizer.pad_token_id
    rows = [json.loads(line) for line in
            (demo_assets / "data" / "sentiment.jsonl").read_text().splitlines()]
    by_text = {r["text"]: r["label"] for r in rows}
    for example in data.val[:20]:
        assert data.labels.names[example.target] == by_text[example.text] == example.truth
        assert tokenizer.decode(example.input_ids) == tokenizer.bos_token + example.text
    assert len(data.train) == 1800 and len(data.val) == 200


@pytest.mark.parametrize("method", ["lora", "last_layer"])
def test_the_head_trains_under_lora_and_last_layer(demo_assets, method):
    *_, model, _ = built(demo_assets, "demo-classify", f'adapter.method="{method}"')
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("score" in n for n in trainable), trainable
    if method == "lora":
        assert all("lora_" in n or "score" in n for n in trainable)


def test_a_differential_lr_naming_the_head_gives_it_its_own_rate(demo_assets):
    """H2O's default: the head at 1e-5 while the LoRA weights learn at lr."""
    from tui_tune.train.optim import parameter_groups

    exp, *_, model, _ = built(demo_assets, "demo-classify", 'adapter.method="lora"',
                              "training.differential_lr = { score = 1e-5 }")
    groups = parameter_groups(model, exp.training)
    head = [g for g in groups if any("score" in n for n in g["names"])]
    assert head and all(g["lr"] == 1e-5 for g in head)
    assert all(all("score" in n for n in g["names"]) for g in head)
    assert {g["lr"] for g in groups if g not in head} == {exp.training.lr}


def test_binary_multilabel_and_regression_targets(demo_assets):
    rows = [json.loads(line) for line in
            (demo_assets / "data" / "sentiment.jsonl").read_text().splitlines()]
    by_text = {r["text"]: r for r in rows}
    exp = experiment(demo_assets, "demo-classify", 'dataset.label_columns=["positive"]',
                     "dataset.num_classes=1")
    from tui_tune.train.model import load_tokenizer

    tokenizer = load_tokenizer(exp)
    binary = Classification().load_data(exp, tokenizer, 0)
    assert binary.labels.kind == "binary" and binary.labels.outputs == 1
    assert all(e.target == [float(by_text[e.text]["positive"])] for e in binary.val)
    exp = experiment(demo_assets, "demo-classify", 'dataset.label_columns=["food", "music"]')
    multi = Classification().load_data(exp, tokenizer, 0)
    assert multi.labels.kind == "multilabel" and multi.labels.names == ["food", "music"]
    assert all(e.target == [float(by_text[e.text]["food"]), float(by_text[e.text]["music"])]
               for e in multi.val)
    exp = experiment(demo_assets, "demo-regress")
    weather = Regression().load_data(exp, tokenizer, 0)
    assert weather.columns == ["target"] and all(len(e.target) == 1 for e in weather.val)


def test_a_validation_label_the_training_file_lacks_names_file_and_row(demo_assets, tmp_path):
    from tui_tune.train.model import load_tokenizer

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"text": f"t{i}", "label": ["a", "b"][i % 2]}) + "\n"
                             for i in range(8)))
    val = tmp_path / "val.jsonl"
    val.write_text('{"text": "x", "label": "a"}\n{"text": "y", "label": "c"}\n')
    exp = experiment(demo_assets, "demo-classify", f'dataset.train_file="{train}"',
                     'dataset.validation_strategy="custom"', f'dataset.validation_file="{val}"')
    with pytest.raises(UserError) as caught:
        Classification().load_data(exp, load_tokenizer(exp), 0)
    assert caught.value.setting == "dataset.validation_file"
    assert caught.value.file == str(val)
    assert "row 2, column 'label' holds 'c'" in str(caught.value)
