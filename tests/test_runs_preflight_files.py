"""The launch preflight and `preset validate` read the files a run names, as the worker will:
real csv, jsonl, parquet (.pq too) and latin-1 files, a backbone folder and its tokenizer files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tui_tune.config.presets import resolve
from tui_tune.runs.preflight import preflight

ROWS = [{"prompt": "What is 1 + 1?", "answer": "2"}, {"prompt": "Capital of France?",
                                                     "answer": "Paris"}]


@pytest.fixture
def workdir(preset_workdir):
    return preset_workdir


def found(*overrides: str) -> dict[str, str]:
    exp = resolve("demo-tiny", list(overrides)).experiment
    return {p.key: p.message for p in preflight(exp, cuda_devices=0)}


def train_file(path: Path) -> str:
    return f'dataset.train_file="{path}"'


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_parquet_with_the_pq_extension_is_accepted(workdir):
    pq.write_table(pa.Table.from_pylist(ROWS), workdir / "h2o.pq")
    assert found(train_file(workdir / "h2o.pq")) == {}
    (workdir / "notes.txt").write_text("prompt,answer\n")
    assert "'.txt' is not a data format" in found(train_file(workdir / "notes.txt"))[
        "dataset.train_file"]


def test_a_nested_parquet_cell_is_refused_naming_column_and_row(workdir):
    rows = [{"prompt": None, "answer": "a", "q": "x"},  # prompt is a struct column
            {"prompt": {"text": "nested", "lang": "en"}, "answer": "b", "q": "y"}]
    pq.write_table(pa.Table.from_pylist(rows), workdir / "nested.parquet")
    message = found(train_file(workdir / "nested.parquet"))["dataset.prompt_columns"]
    assert "row 2, column 'prompt' holds a nested value" in message
    assert "nested.parquet" in message
    # a nested column the run does not read is no problem
    assert found(train_file(workdir / "nested.parquet"), 'dataset.prompt_columns=["q"]') == {}
    write_jsonl(workdir / "lists.jsonl", [{"prompt": ["a", "b"], "answer": "c"}])
    assert "column 'prompt' holds a nested value (list)" in found(
        train_file(workdir / "lists.jsonl"))["dataset.prompt_columns"]


def test_latin1_bytes_are_refused_naming_file_and_row(workdir):
    (workdir / "latin.csv").write_bytes("prompt,answer\nhello,world\nCafé?,Oui\n".encode("latin-1"))
    message = found(train_file(workdir / "latin.csv"))["dataset.train_file"]
    assert "latin.csv" in message and "row 2, column 'prompt'" in message
    assert "not UTF-8" in message and r"\xe9" in message


def test_columns_and_missing_answers_are_named(workdir):
    (workdir / "t.csv").write_text("question,answer\nq1,a1\n", encoding="utf-8")
    message = found(train_file(workdir / "t.csv"))["dataset.prompt_columns"]
    assert "'prompt' is not in the file" in message and "t.csv" in message
    write_jsonl(workdir / "t.jsonl", [ROWS[0], {"prompt": "no answer"}])
    assert "row 2 has no value in column 'answer'" in found(train_file(workdir / "t.jsonl"))[
        "dataset.answer_column"]
    assert "'sys' is not in the file" in found(train_file(workdir / "t.jsonl"),
                                               'dataset.system_column="sys"')[
        "dataset.system_column"]
    write_jsonl(workdir / "chained.jsonl", [{**ROWS[0], "id": "1"}])
    assert "'parent' is not in the file" in found(train_file(workdir / "chained.jsonl"),
                                                  'dataset.parent_id_column="parent"')[
        "dataset.parent_id_column"]


def test_validation_file_is_checked_like_the_training_file(workdir):
    (workdir / "v.jsonl").write_text('{"prompt": "x", "answer": "y"}\n{"prompt": oops}\n')
    message = found('dataset.validation_strategy="custom"',
                    f'dataset.validation_file="{workdir / "v.jsonl"}"')["dataset.validation_file"]
    assert "line 2 is not valid JSON" in message and "v.jsonl" in message


def test_backbone_folder_needs_config_json_and_a_chat_template_when_asked(workdir):
    model = workdir / "model"
    model.mkdir()
    assert "no config.json" in found(f'general.backbone="{model}"')["general.backbone"]
    (model / "config.json").write_text("{}")
    (model / "tokenizer_config.json").write_text('{"eos_token": "</s>"}')
    assert found(f'general.backbone="{model}"') == {}
    chat = f'general.backbone="{model}"', "dataset.use_chat_template=true"
    assert "no chat template" in found(*chat)["dataset.use_chat_template"]
    (model / "chat_template.jinja").write_text("{% for m in messages %}{{ m.content }}{% endfor %}")
    assert found(*chat) == {}
    (model / "chat_template.jinja").unlink()
    (model / "tokenizer_config.json").write_text('{"chat_template": "{{ messages }}"}')
    assert found(*chat) == {}


def test_preflight_reads_files_without_the_training_stack(workdir):
    rows = [{"prompt": {"x": 1}, "answer": "b"}]
    pq.write_table(pa.Table.from_pylist(rows), workdir / "n.pq")
    code = ("import sys; from tui_tune.config.presets import resolve; "
            "from tui_tune.runs.preflight import preflight; "
            f"exp = resolve('demo-tiny', ['dataset.train_file=\"{workdir / 'n.pq'}\"']).experiment; "
            "print([p.key for p in preflight(exp, cuda_devices=0)]); "
            "print([m for m in ('torch', 'transformers', 'peft', 'datasets', 'accelerate') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=workdir, check=True).stdout.splitlines()
    assert out == ["['dataset.prompt_columns']", "[]"]


def test_preset_validate_checks_the_files_and_names_setting_file_and_row(workdir):
    (workdir / "latin.jsonl").write_bytes(
        b'{"prompt": "ok", "answer": "fine"}\n{"prompt": "caf\xe9", "answer": "x"}\n')
    preset = workdir / "mine.toml"
    preset.write_text(f'extends = "demo-tiny"\n[dataset]\ntrain_file = "{workdir / "latin.jsonl"}"\n')
    result = subprocess.run([sys.executable, "-m", "tui_tune", "preset", "validate", str(preset)],
                            capture_output=True, text=True, cwd=workdir, timeout=60, check=False)
    assert result.returncode == 1
    line = next(x for x in result.stdout.splitlines() if x.startswith("ERR"))
    assert "dataset.train_file" in line and "latin.jsonl" in line and "row 2" in line
    assert "Traceback" not in result.stderr
