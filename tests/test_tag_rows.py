"""Token classification data checks: the launch preflight (and `preset validate`) and the worker
refuse rows the task cannot use with a message naming the setting, the file and the row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui_tune.config.presets import resolve
from tui_tune.runs.preflight import preflight
from tui_tune.runs.tag_rows import tag_order

ROWS = [{"tokens": ["Anna", "lives", "in", "Oslo"], "tags": ["B-PER", "O", "O", "B-LOC"]},
        {"tokens": "Bruno likes Lima", "tags": "B-PER O B-LOC"}]
TOKENS = ['general.problem_type="token_classification"']


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def found(workdir: Path, rows: list[dict], *overrides: str) -> dict[str, str]:
    path = write_jsonl(workdir / "ner.jsonl", rows)
    exp = resolve("demo-tiny", [*TOKENS, f'dataset.train_file="{path}"',
                                *overrides]).experiment
    return {p.key: p.message for p in preflight(exp, cuda_devices=0)}


def test_lists_and_texts_of_words_and_tags_pass(preset_workdir):
    assert found(preset_workdir, ROWS) == {}


def test_a_missing_words_or_tags_column_is_named(preset_workdir):
    message = found(preset_workdir, [{"words": ["a"], "tags": ["O"]}])["dataset.words_column"]
    assert "column 'tokens' is not in the file" in message and "ner.jsonl" in message
    message = found(preset_workdir, ROWS, 'dataset.tags_column="ner"')["dataset.tags_column"]
    assert "column 'ner' is not in the file (it has: tags, tokens)" in message


def test_words_and_tags_of_different_lengths_name_the_row(preset_workdir):
    rows = [*ROWS, {"tokens": ["Oslo", "is", "cold"], "tags": ["B-LOC", "O"]}]
    message = found(preset_workdir, rows)["dataset.tags_column"]
    assert "row 3 has 3 words in 'tokens' but 2 tags in 'tags'" in message
    text_rows = [{"tokens": "Oslo is cold", "tags": "B-LOC O O O"}]
    assert "row 1 has 3 words in 'tokens' but 4 tags" in found(
        preset_workdir, text_rows)["dataset.tags_column"]


def test_empty_rows_and_cells_of_another_kind_are_named(preset_workdir):
    message = found(preset_workdir, [*ROWS, {"tokens": [], "tags": []}])["dataset.words_column"]
    assert "row 3 has no words in column 'tokens'" in message
    message = found(preset_workdir, [*ROWS, {"tokens": "   ", "tags": ""}])["dataset.words_column"]
    assert "row 3 has no words" in message
    message = found(preset_workdir, [{"tokens": ["a"]}, *ROWS])["dataset.tags_column"]
    assert "row 1 has no value in column 'tags'" in message
    message = found(preset_workdir, [{"tokens": ["a"], "tags": [["O"]]}])["dataset.tags_column"]
    assert "row 1, column 'tags' holds a list" in message


def test_a_validation_tag_the_training_rows_lack_is_named(preset_workdir):
    validation = write_jsonl(preset_workdir / "val.jsonl", [
        ROWS[0], {"tokens": ["Acme", "hires"], "tags": ["B-ORG", "O"]}])
    custom = ['dataset.validation_strategy="custom"', f'dataset.validation_file="{validation}"']
    message = found(preset_workdir, ROWS, *custom)["dataset.validation_file"]
    assert "val.jsonl" in message and "row 2 has the tag 'B-ORG'" in message
    assert "no training row has (the training tags: B-LOC, B-PER, O)" in message
    write_jsonl(validation, [ROWS[1]])
    assert found(preset_workdir, ROWS, *custom) == {}


def test_the_worker_refuses_an_unknown_validation_tag_with_the_same_message(tmp_path,
                                                                           demo_assets):
    from transformers import AutoTokenizer

    from tui_tune.train.errors import UserError
    from tui_tune.train.tasks.token_classification import load_examples

    train = write_jsonl(tmp_path / "train.jsonl", ROWS)
    validation = write_jsonl(tmp_path / "val.jsonl", [{"tokens": ["Acme"], "tags": ["B-ORG"]}])
    exp = resolve("demo-tokens", [f'dataset.train_file="{train}"',
                                  'dataset.validation_strategy="custom"',
                                  f'dataset.validation_file="{validation}"']).experiment
    tokenizer = AutoTokenizer.from_pretrained(demo_assets / "encoder")
    with pytest.raises(UserError) as raised:
        load_examples(exp, tokenizer, seed=0)
    assert raised.value.setting == "dataset.validation_file"
    assert "row 1 has the tag 'B-ORG', which no training row has" in str(raised.value)


def test_tag_ids_are_ordered_as_numbers_and_texts_alphabetically():
    assert tag_order(["10", "2", "0", "2"]) == ["0", "2", "10"]
    assert tag_order(["O", "B-PER", "I-PER"]) == ["B-PER", "I-PER", "O"]
