"""Dataset layouts (dataset.format): OpenAI messages, ShareGPT and Alpaca rows train exactly
the conversations of the same turns written as prompt/answer rows; bad rows are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui_tune.config.presets import builtin_dir, resolve
from tui_tune.runs.datafiles import DataFileError, check_rows
from tui_tune.runs.preflight import data_file_problems, layout_notes

pytestmark = pytest.mark.xdist_group("train-data")


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def experiment(demo, train_file: str, *overrides: str):
    """Every row trained in file order (custom validation on the same file), so two files'
    examples can be compared one by one."""
    sets = [f'general.backbone="{demo / "model"}"', f'dataset.train_file="{train_file}"',
            'dataset.validation_strategy="custom"', f'dataset.validation_file="{train_file}"',
            *overrides]
    return resolve(str(builtin_dir() / "demo-tiny.toml"), sets).experiment


def chained_conversations(demo) -> list[list[dict]]:
    """The demo's two-turn conversations (chained.jsonl), first turn first."""
    rows = [json.loads(line) for line in
            (demo / "data" / "chained.jsonl").read_text().splitlines()]
    return [rows[i:i + 2] for i in range(0, 40, 2)]


def as_messages(conv: list[dict]) -> list[dict]:
    out = [{"role": "system", "content": conv[0]["system"]}]
    for turn in conv:
        out += [{"role": "user", "content": turn["prompt"]},
                {"role": "assistant", "content": turn["answer"]}]
    return out


def as_sharegpt(conv: list[dict]) -> list[dict]:
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    return [{"from": names[m["role"]], "value": m["content"]} for m in as_messages(conv)]


@pytest.fixture(scope="module")
def tokenizer(demo_assets):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_assets / "model")


def token_ids(exp, tokenizer):
    from tui_tune.train.tasks.causal_lm import load_examples

    data = load_examples(exp, tokenizer, seed=1)
    return [(e.input_ids, e.labels) for e in data.train], data.warnings


@pytest.mark.parametrize("chat_template", [False, True])
@pytest.mark.parametrize("layout", ["messages", "sharegpt"])
def test_chat_layouts_train_the_chained_turns(tmp_path, demo_assets, tokenizer, layout,
                                              chat_template):
    convs = chained_conversations(demo_assets)
    column, convert = {"messages": ("messages", as_messages),
                       "sharegpt": ("conversations", as_sharegpt)}[layout]
    chained = write_jsonl(tmp_path / "chained.jsonl", [t for c in convs for t in c])
    layered = write_jsonl(tmp_path / f"{layout}.jsonl", [{column: convert(c)} for c in convs])
    options = [f"dataset.use_chat_template={str(chat_template).lower()}"]
    expected, _ = token_ids(experiment(demo_assets, chained, 'dataset.parent_id_column='
                                       '"parent_id"', 'dataset.system_column="system"',
                                       *options), tokenizer)
    got, notes = token_ids(experiment(demo_assets, layered, *options), tokenizer)
    assert len(got) == 40 and got == expected  # each turn an example, with its history
    assert notes[0].startswith("dataset.format auto: dataset.train_file holds "
                               + ("OpenAI" if layout == "messages" else "ShareGPT"))
    only_last, _ = token_ids(experiment(demo_assets, layered, "dataset.limit_chained_samples"
                                        "=true", *options), tokenizer)
    assert only_last == expected[1::2]  # one example per conversation, as chained rows


def test_alpaca_layout_is_instruction_and_input_as_the_prompt(tmp_path, demo_assets,
                                                              tokenizer):
    rows = [{"instruction": "Add the numbers.", "input": "3 and 4", "output": "7"},
            {"instruction": "What is 2 + 2?", "input": "", "output": "4"}]
    columns = [{"prompt": "Add the numbers.\n\n3 and 4", "answer": "7"},
               {"prompt": "What is 2 + 2?", "answer": "4"}]
    got, _ = token_ids(experiment(demo_assets, write_jsonl(tmp_path / "a.jsonl", rows)),
                       tokenizer)
    expected, _ = token_ids(experiment(demo_assets, write_jsonl(tmp_path / "c.jsonl", columns)),
                            tokenizer)
    assert got == expected


def ds(**settings):
    return resolve(str(builtin_dir() / "demo-tiny.toml"),
                   [f"dataset.{k}={json.dumps(v)}" for k, v in settings.items()]
                   ).experiment.dataset


@pytest.mark.parametrize(("rows", "message"), [
    ([{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}],
     "row 1, column 'messages': message 2 has role 'bot'; use system, user or assistant."),
    ([{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
      {"messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "x"}]}],
     "row 2, column 'messages': message 1 (user) has an empty content."),
    ([{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]}],
     "row 1, column 'messages' has no assistant message"),
    ([{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                    {"role": "assistant", "content": "c"}]}],
     "row 1, column 'messages': message 2 is 'user' where a 'assistant' message belongs"),
    ([{"messages": "hello"}], "row 1, column 'messages' holds a str, not a list of messages."),
    ([{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": ""}]}],
     "row 1, column 'conversations': message 2 (assistant) has an empty value."),
    ([{"instruction": "x", "input": "", "output": ""}], "row 1, column 'output' is empty."),
])
def test_bad_rows_are_named_by_row_and_column(rows, message):
    with pytest.raises(DataFileError) as error:
        check_rows(rows, ds())
    assert message in error.value.message


def test_format_chosen_or_detected_before_launch(tmp_path):
    prompt_answer = write_jsonl(tmp_path / "pa.jsonl", [{"prompt": "a", "answer": "b",
                                                         "messages": "not read"}])
    assert data_file_problems(prompt_answer, "dataset.train_file", ds()) == []
    problems = data_file_problems(prompt_answer, "dataset.train_file", ds(format="messages"))
    assert problems[0].key == "dataset.train_file" and "holds a str" in problems[0].message
    missing = data_file_problems(prompt_answer, "dataset.train_file", ds(format="sharegpt"))
    assert missing[0].key == "dataset.format" and "'conversations' is not in" in \
        missing[0].message
    chat = write_jsonl(tmp_path / "chat.jsonl", [{"messages": [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}])
    exp = resolve(str(builtin_dir() / "demo-tiny.toml"),
                  [f'dataset.train_file="{chat}"']).experiment
    assert layout_notes(exp) == [("dataset.format auto: dataset.train_file holds OpenAI chat "
                                  "messages (column 'messages').")]
    assert data_file_problems(chat, "dataset.train_file", exp.dataset) == []
    assert layout_notes(resolve(str(builtin_dir() / "demo-tiny.toml"), [
        f'dataset.train_file="{prompt_answer}"']).experiment) == []


@pytest.mark.slow
def test_a_messages_file_trains(tmp_path, demo_assets, make_run_dir):
    from tests.conftest import completed_run, read_events

    rows = [json.loads(line) for line in
            (demo_assets / "data" / "chained.jsonl").read_text().splitlines()[:400]]
    chat = write_jsonl(tmp_path / "chat.jsonl",
                       [{"messages": as_messages(rows[i:i + 2])} for i in range(0, 400, 2)])
    run = completed_run(make_run_dir(tmp_path / "run", [
        f'dataset.train_file="{chat}"', "training.max_steps=6", "training.eval_every_steps=6",
        "training.batch_size=8", "dataset.validation_size=0.1"]))
    start = read_events(run, "start")[0]
    assert start["train_rows"] + start["val_rows"] == 400  # one example per assistant turn
    logs = [e["message"] for e in read_events(run, "log")]
    assert any(m.startswith("dataset.format auto: dataset.train_file holds OpenAI") for m in logs)
    assert read_events(run, "eval")[-1]["val_loss"] > 0


def test_validate_says_how_the_file_is_read(tmp_path):
    import subprocess
    import sys

    chat = write_jsonl(tmp_path / "chat.jsonl", [{"conversations": [
        {"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}])
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    preset = tmp_path / "p.toml"
    preset.write_text(f'extends = "demo-tiny"\n[general]\nbackbone = "{tmp_path / "model"}"\n'
                      f'[dataset]\ntrain_file = "{chat}"\n')
    done = subprocess.run([sys.executable, "-m", "tui_tune", "preset", "validate", str(preset)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout
    assert ("NOTE dataset.format auto: dataset.train_file holds ShareGPT conversations "
            "(column 'conversations').") in done.stdout
