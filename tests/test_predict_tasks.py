"""Each problem type's Task.predict in process, on the demo backbones with untrained heads (no
training needed): the prediction columns are what the model itself gives for the same rows, a
test file needs no label or tag column, and a LoRA folder loads back into the model that saved
it (the path `tui-tune predict` takes for final/ and checkpoints)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tui_tune.config.presets import resolve


def experiment(demo, preset: str, backbone: str, data: str, *sets: str):
    return resolve(preset, [f'general.backbone="{demo / backbone}"',
                            f'dataset.train_file="{demo / "data" / data}"', *sets]).experiment


def prepared(exp):
    """The task set up for predicting alone, and its model as training builds it."""
    from accelerate import Accelerator

    from tui_tune.train.adapters import apply_method
    from tui_tune.train.model import load_backbone, load_tokenizer
    from tui_tune.train.tasks import task_for

    tokenizer = load_tokenizer(exp)
    task = task_for(exp)
    torch.manual_seed(0)
    data = task.predict_setup(exp, tokenizer, 0)
    model = apply_method(load_backbone(exp, tokenizer, torch.device("cpu"), data), exp)
    return task, model.eval(), tokenizer, Accelerator(cpu=True)


def rows_of(demo, name: str, count: int) -> list[dict]:
    lines = (demo / "data" / name).read_text().splitlines()[:count]
    return [json.loads(line) for line in lines]


def test_regression_predicts_the_heads_output(demo_assets):
    exp = experiment(demo_assets, "demo-regress", "model", "weather.jsonl")
    task, model, tokenizer, accelerator = prepared(exp)
    rows = [{"text": r["text"]} for r in rows_of(demo_assets, "weather.jsonl", 7)]  # no target
    predicted = task.predict(model, tokenizer, rows, accelerator, exp)
    assert len(predicted) == 7
    for row, columns in zip(rows, predicted):
        ids = tokenizer((tokenizer.bos_token or "") + row["text"], add_special_tokens=False,
                        return_tensors="pt")
        with torch.no_grad():
            expected = model(**ids).logits[0, 0].item()
        assert columns == {"prediction": pytest.approx(expected, abs=1e-5)}


def test_token_classification_tags_every_word_of_list_and_text_cells(demo_assets):
    exp = experiment(demo_assets, "demo-tokens", "encoder", "ner.jsonl")
    task, model, tokenizer, accelerator = prepared(exp)
    sentences = [r["tokens"] for r in rows_of(demo_assets, "ner.jsonl", 6)]
    rows = [{"tokens": words} for words in sentences[:3]]
    rows += [{"tokens": " ".join(words), "id": n} for n, words in enumerate(sentences[3:])]
    predicted = task.predict(model, tokenizer, rows, accelerator, exp)
    assert all(list(p) == ["prediction"] for p in predicted)
    for words, columns in zip(sentences, predicted):
        encoded = tokenizer(words, is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            best = model(**encoded).logits[0].argmax(-1).tolist()
        first: dict[int, int] = {}
        for position, word in enumerate(encoded.word_ids()):
            if word is not None:
                first.setdefault(word, position)
        expected = [model.config.id2label[best[first[w]]] for w in range(len(words))]
        assert columns["prediction"].split(" ") == expected


def test_a_lora_folder_loads_back_into_the_model_that_saved_it(demo_assets, tmp_path):
    """trained_model: backbone, head and adapter built as in training, then the folder's
    weights (adapter and the trained head) loaded: the same logits as the model that saved
    them (weights moved off their initial values, so loading is what makes them equal)."""
    from tui_tune.train.adapters import family_for
    from tui_tune.train.predict import trained_model

    exp = experiment(demo_assets, "demo-classify", "model", "sentiment.jsonl",
                     'adapter.method="lora"', "adapter.r=4")
    task, model, tokenizer, _ = prepared(exp)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if weight.requires_grad:
                weight.add_(torch.randn_like(weight) * 0.05)
    family_for("lora").save(model, tmp_path)
    ids = tokenizer(["the song was great", "the pizza was awful"], padding=True,
                    return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        expected = model(**ids).logits
        loaded = trained_model(exp, task, tokenizer, task.data, tmp_path, torch.device("cpu"))
        assert not loaded.training
        torch.testing.assert_close(loaded(**ids).logits, expected)


def test_classification_columns_name_each_class_or_label():
    from tui_tune.train.tasks.classification import LabelSet, prediction_columns

    binary = prediction_columns(np.array([0.8]), LabelSet("binary", ["no", "yes"]))
    assert binary == {"prediction": "yes", "probability_no": pytest.approx(0.2),
                      "probability_yes": 0.8}
    several = prediction_columns(np.array([0.3, 0.9]), LabelSet("multilabel", ["food", "music"]))
    assert several == {"prediction_food": 0, "prediction_music": 1, "probability_food": 0.3,
                       "probability_music": 0.9}
