"""The editor's dataset preview (runs/data_preview.py) shows what the worker trains on: the
same text (markers or chat template), the same masking and the same token counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui_tune.config.presets import builtin_dir, resolve
from tui_tune.runs.data_preview import PreviewError, preview


def experiment(demo: Path, *sets: str, train_file: str | None = None):
    return resolve(str(builtin_dir() / "demo-tiny.toml"), [
        f'general.backbone="{demo / "model"}"',
        f'dataset.train_file="{train_file or demo / "data" / "train.jsonl"}"', *sets]).experiment


def worker_examples(exp, rows: int):
    """What train/formatting.py makes of the first rows (the worker's own functions)."""
    from transformers import AutoTokenizer

    from tui_tune.runs.datafiles import iter_rows
    from tui_tune.train.formatting import (
        build_conversations,
        chat_pieces,
        text_pieces,
        tokenize_conversations,
    )

    tokenizer = AutoTokenizer.from_pretrained(exp.general.backbone)
    ds = exp.dataset
    all_rows = list(iter_rows(ds.train_file))[:rows]
    convs = build_conversations(all_rows, ds)
    make = chat_pieces if ds.use_chat_template else text_pieces
    pieces = [make(c, ds, tokenizer) for c in convs]
    examples = tokenize_conversations(convs, ds, tokenizer, exp.tokenizer.max_length,
                                      exp.tokenizer.truncation_side)
    return pieces, examples


@pytest.mark.parametrize("sets", [
    (), ("dataset.use_chat_template=true",),
    ('dataset.parent_id_column="parent_id"', 'dataset.system_column="system"',
     "dataset.only_last_answer=true"),
    ('dataset.parent_id_column="parent_id"', "dataset.use_chat_template=true",
     "tokenizer.max_length=24"),
], ids=["markers", "chat-template", "chained", "chained-chat-cut"])
def test_the_preview_is_what_the_worker_trains_on(demo_assets, sets):
    chained = any("parent_id" in s for s in sets)
    exp = experiment(demo_assets, *sets, train_file=str(
        demo_assets / "data" / ("chained.jsonl" if chained else "train.jsonl")))
    shown = preview(exp, rows_read=40)
    pieces, examples = worker_examples(exp, 40)
    assert [e.pieces for e in shown.examples] == pieces
    assert [e.tokens for e in shown.examples] == \
        [len(e) + e.prompt_cut + e.answer_cut for e in examples]
    assert shown.cut == sum(1 for e in examples if e.prompt_cut or e.answer_cut)
    assert shown.token_method.startswith("tokens from") and not shown.template_note
    if "tokenizer.max_length=24" in sets:
        assert shown.cut > 0


def test_a_chat_layout_is_told_and_its_bad_rows_are_dropped(demo_assets, tmp_path):
    rows = [{"messages": [{"role": "system", "content": "Be brief."},
                          {"role": "user", "content": "What is 2 + 2?"},
                          {"role": "assistant", "content": "4"},
                          {"role": "user", "content": "And 3 + 3?"},
                          {"role": "assistant", "content": "6"}]},
            {"messages": [{"role": "user", "content": "no answer"}]}]
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    exp = experiment(demo_assets, train_file=str(data))
    shown = preview(exp)
    assert shown.layout == "messages" and shown.layout_text.startswith("auto -> messages")
    assert len(shown.examples) == 2  # one per assistant answer, as chained turns
    last = shown.examples[-1]
    assert last.row == 1 and "<|system|>Be brief." in last.pieces[0][0]
    assert [learned for _, learned in last.pieces] == [False, True, False, True]
    assert shown.dropped == [("row 2, column 'messages' has no assistant message: there is "
                              "nothing to learn.")]


def test_without_a_tokenizer_the_count_is_a_labelled_estimate(demo_assets, tmp_path):
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "config.json").write_text((demo_assets / "model" / "config.json").read_text())
    exp = experiment(demo_assets, f'general.backbone="{folder}"', "tokenizer.max_length=8",
                     'tokenizer.truncation_side="right"')
    shown = preview(exp, rows_read=10)
    assert "estimated" in shown.token_method and "no tokenizer.json" in shown.token_method
    assert not shown.complete and shown.rows_read == 10
    assert shown.cut == 10  # every demo row is longer than 8 estimated tokens
    assert shown.learn_nothing == 10  # cut from the right, the prompt fills all 8


def test_an_unreadable_file_names_the_setting(demo_assets, tmp_path):
    exp = experiment(demo_assets, train_file=str(tmp_path / "missing.jsonl"))
    with pytest.raises(PreviewError, match="dataset.train_file .*missing.jsonl"):
        preview(exp)
