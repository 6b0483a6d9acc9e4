"""Classification and regression files the worker would refuse are refused before launch, each
with one line naming the setting, the file and the row (runs/labels.py through check_rows)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from tui_tune.config.presets import resolve
from tui_tune.runs.preflight import preflight


def problems(workdir: Path, rows: list[dict], *overrides: str,
             preset: str = "demo-classify") -> dict[str, str]:
    path = workdir / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    exp = resolve(preset, [f'dataset.train_file="{path}"', *overrides]).experiment
    return {p.key: p.message for p in preflight(exp, cuda_devices=0)}


def one(workdir: Path, rows: list[dict], setting: str, *overrides: str,
        preset: str = "demo-classify") -> str:
    found = problems(workdir, rows, *overrides, preset=preset)
    assert list(found) == [setting], found
    assert "labels.jsonl" in found[setting]
    return found[setting]


def texts(*labels) -> list[dict]:
    return [{"text": f"row {n}", "label": label} for n, label in enumerate(labels)]


def test_good_files_of_each_kind_pass(preset_workdir):
    assert problems(preset_workdir, texts("neg", "pos", "neg")) == {}
    assert problems(preset_workdir, texts(0, 2, 1), "dataset.num_classes=3") == {}
    assert problems(preset_workdir, texts("0", "1"), "dataset.num_classes=1") == {}
    flags = [{"text": "a", "x": 1, "y": "0"}, {"text": "b", "x": 0.0, "y": True}]
    assert problems(preset_workdir, flags, 'dataset.label_columns=["x", "y"]') == {}
    numbers = [{"text": "a", "target": "2.5"}, {"text": "b", "target": -1}]
    assert problems(preset_workdir, numbers, preset="demo-regress") == {}


def test_a_missing_label_column_is_named(preset_workdir):
    message = one(preset_workdir, [{"text": "a", "tag": 1}], "dataset.answer_column")
    assert "column 'label' is not in the file" in message
    message = one(preset_workdir, [{"text": "a", "x": 1}], "dataset.label_columns",
                  'dataset.label_columns=["x", "y"]')
    assert "column 'y' is not in the file" in message


def test_a_class_outside_the_classes_is_refused(preset_workdir):
    message = one(preset_workdir, texts(0, 1, 3), "dataset.answer_column",
                  "dataset.num_classes=3")
    assert "row 3, column 'label' holds the class 3, outside 0 to 2" in message
    message = one(preset_workdir, texts(0, 2), "dataset.answer_column", "dataset.num_classes=1")
    assert "row 2" in message and "binary labels (dataset.num_classes = 1) are 0 or 1" in message
    message = one(preset_workdir, texts(1, -1), "dataset.answer_column")
    assert "row 2" in message and "class ids start at 0" in message


def test_a_class_that_is_not_a_whole_number_is_refused(preset_workdir):
    message = one(preset_workdir, texts(0, 1, 1.5), "dataset.answer_column")
    assert "row 3, column 'label' holds 1.5, which is not a class" in message
    message = one(preset_workdir, texts("2", "2.5"), "dataset.answer_column")
    assert "row 2, column 'label' holds '2.5'" in message


def test_ids_and_texts_mixed_and_too_many_texts_are_refused(preset_workdir):
    message = one(preset_workdir, texts(0, 1, "pos"), "dataset.answer_column")
    assert "row 3" in message and "row 1 holds the class id 0" in message
    message = one(preset_workdir, texts("a", "b", "c"), "dataset.answer_column",
                  "dataset.num_classes=2")
    assert "row 3" in message and "label text number 3" in message


def test_empty_and_nan_targets_are_refused(preset_workdir):
    message = one(preset_workdir, texts("a", None), "dataset.answer_column")
    assert "row 2 has no value in column 'label'" in message
    message = one(preset_workdir, texts("a", " "), "dataset.answer_column")
    assert "row 2 has no value" in message
    rows = [{"text": "a", "target": 1.0}, {"text": "b", "target": math.nan}]
    message = one(preset_workdir, rows, "dataset.answer_column", preset="demo-regress")
    assert "row 2 has no value in column 'target'" in message
    rows = [{"text": "a", "target": 1.0}, {"text": "b", "target": "inf"}]
    message = one(preset_workdir, rows, "dataset.answer_column", preset="demo-regress")
    assert "row 2, column 'target' holds 'inf': regression targets must be finite" in message


def test_a_regression_target_that_is_not_a_number_is_refused(preset_workdir):
    rows = [{"text": "a", "t1": 1, "t2": 2}, {"text": "b", "t1": 1, "t2": "high"}]
    message = one(preset_workdir, rows, "dataset.label_columns",
                  'dataset.label_columns=["t1", "t2"]', preset="demo-regress")
    assert "row 2, column 't2' holds 'high', not a number" in message


def test_a_multilabel_flag_that_is_not_0_or_1_is_refused(preset_workdir):
    rows = [{"text": "a", "x": 1, "y": 0}, {"text": "b", "x": 2, "y": 0}]
    message = one(preset_workdir, rows, "dataset.label_columns",
                  'dataset.label_columns=["x", "y"]')
    assert "row 2, column 'x' holds 2: with several label columns (multilabel)" in message


def test_a_csv_file_is_read_as_texts_and_checked_alike(preset_workdir):
    path = preset_workdir / "labels.csv"
    path.write_text("text,label\na,0\nb,1\nc,\n", encoding="utf-8")
    exp = resolve("demo-classify", [f'dataset.train_file="{path}"']).experiment
    found = {p.key: p.message for p in preflight(exp, cuda_devices=0)}
    assert "row 3 has no value in column 'label'" in found["dataset.answer_column"]


def test_a_text_answer_fits_causal_lm_and_classification_but_not_regression(preset_workdir):
    rows = [{"prompt": "p", "answer": "some text"}]
    path = preset_workdir / "causal.jsonl"
    path.write_text(json.dumps(rows[0]) + "\n")
    exp = resolve("demo-tiny", [f'dataset.train_file="{path}"']).experiment
    assert preflight(exp, cuda_devices=0) == []
    columns = ['dataset.prompt_columns=["prompt"]', 'dataset.answer_column="answer"']
    assert problems(preset_workdir, rows, *columns) == {}
    message = one(preset_workdir, rows, "dataset.answer_column", *columns,
                  preset="demo-regress")
    assert "holds 'some text', not a number" in message
