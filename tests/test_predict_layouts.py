"""Rows to predict in the chat layouts (dataset.test_file, `tui-tune predict`): a messages,
ShareGPT or Alpaca row is predicted as the same turns written as prompt/answer rows would be,
its last user message answered after the earlier turns; bad rows are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui_tune.config.presets import builtin_dir, resolve
from tui_tune.runs.predictions import PredictError, read_input
from tui_tune.runs.preflight import data_file_problems

pytestmark = pytest.mark.xdist_group("train-data")

SYSTEM = "You are a calculator."
CONVERSATION = [("What is 44 + 27?", "71"), ("Add 9 to that.", "80")]


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def experiment(demo, *sets: str):
    return resolve(str(builtin_dir() / "demo-tiny.toml"),
                   [f'general.backbone="{demo / "model"}"', *sets]).experiment


def messages(reference: bool) -> list[dict]:
    out = [{"role": "system", "content": SYSTEM}]
    for asked, said in CONVERSATION:
        out += [{"role": "user", "content": asked}, {"role": "assistant", "content": said}]
    return out if reference else out[:-1]


def sharegpt(reference: bool) -> list[dict]:
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    return [{"from": names[m["role"]], "value": m["content"]} for m in messages(reference)]


@pytest.fixture(scope="module")
def tokenizer(demo_assets):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_assets / "model")


def generation_prompts(exp, rows, tokenizer) -> list[list[int]]:
    from tui_tune.train.tasks.causal_lm import prompt_examples

    return [e.prompt_ids for e in prompt_examples(rows, exp, tokenizer)]


@pytest.mark.parametrize("chat_template", [False, True])
def test_chat_rows_are_prompted_as_the_same_chained_rows(demo_assets, tokenizer, chat_template):
    sets = [f"dataset.use_chat_template={str(chat_template).lower()}"]
    chained = [{"id": "a", "parent_id": "", "system": SYSTEM, "prompt": CONVERSATION[0][0],
                "answer": CONVERSATION[0][1]},
               {"id": "b", "parent_id": "a", "system": SYSTEM, "prompt": CONVERSATION[1][0]}]
    expected = generation_prompts(experiment(demo_assets, *sets, 'dataset.parent_id_column='
                                             '"parent_id"', 'dataset.system_column="system"'),
                                  chained, tokenizer)[1]
    rows = [{"messages": messages(False), "note": 1}, {"messages": messages(True), "note": 2}]
    got = generation_prompts(experiment(demo_assets, *sets), rows, tokenizer)
    assert got == [expected, expected]  # a final assistant message is the reference: left out
    shared = generation_prompts(experiment(demo_assets, *sets),
                                [{"conversations": sharegpt(False)}], tokenizer)
    assert shared == [expected]


def test_alpaca_rows_need_no_output(demo_assets, tokenizer):
    exp = experiment(demo_assets)
    got = generation_prompts(exp, [{"instruction": "Add the numbers.", "input": "3 and 4"}],
                             tokenizer)
    expected = generation_prompts(exp, [{"prompt": "Add the numbers.\n\n3 and 4"}], tokenizer)
    assert got == expected


def test_a_chat_test_file_is_read_and_checked_before_launch(demo_assets, tmp_path):
    good = write_jsonl(tmp_path / "test.jsonl", [{"messages": messages(False)},
                                                 {"messages": messages(True)}])
    exp = experiment(demo_assets, f'dataset.test_file="{good}"')
    assert len(read_input(good, exp.dataset, "causal_lm", "dataset.test_file")) == 2
    assert data_file_problems(good, "dataset.test_file", exp.dataset, targets=False) == []
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"messages": messages(False)},
                                               {"messages": [{"role": "assistant",
                                                              "content": "4"}]}])
    with pytest.raises(PredictError) as error:
        read_input(bad, exp.dataset, "causal_lm", "--file")
    assert str(error.value) == (f"--file {bad}: row 2, column 'messages' has no user message "
                                "for the model to answer.")
    alpaca = write_jsonl(tmp_path / "alpaca.jsonl", [{"instruction": "What is 2 + 2?"}])
    assert data_file_problems(alpaca, "dataset.test_file", exp.dataset, targets=False) == []
