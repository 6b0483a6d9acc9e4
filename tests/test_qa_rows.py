"""Extractive QA data checks: the launch preflight (and the worker, through the same reader)
refuse rows the task cannot use with a message naming the setting, the column, the file and the
row; a test file needs only questions and contexts."""

from __future__ import annotations

import json
from pathlib import Path

from tui_tune.config.presets import resolve
from tui_tune.runs.datafiles import DataFileError, check_rows
from tui_tune.runs.preflight import preflight
from tui_tune.runs.qa_rows import answer_span

CONTEXT = "Anna owns a red car. Bruno has a blue bike."
ROWS = [{"question": "Who owns the red car?", "context": CONTEXT, "answer": "Anna",
         "answer_start": 0},
        {"question": "What colour is Bruno's bike?", "context": CONTEXT, "answer": "blue",
         "answer_start": 33},
        {"question": "Who owns the green boat?", "context": CONTEXT, "answer": "",
         "answer_start": -1}]
QA = ['general.problem_type="extractive_qa"', 'prediction.metric="f1"']


def found(workdir: Path, rows: list[dict], *overrides: str) -> dict[str, str]:
    path = workdir / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    exp = resolve("demo-tiny", [*QA, f'dataset.train_file="{path}"', *overrides]).experiment
    return {p.key: p.message for p in preflight(exp, cuda_devices=0)}


def test_answers_with_or_without_offsets_and_unanswerable_rows_pass(preset_workdir):
    assert found(preset_workdir, ROWS) == {}
    assert found(preset_workdir, ROWS, 'dataset.answer_start_column="answer_start"') == {}


def test_a_missing_context_names_the_column_and_row(preset_workdir):
    rows = [ROWS[0], {**ROWS[1], "context": None}]
    message = found(preset_workdir, rows)["dataset.context_column"]
    assert "row 2 has no value in column 'context'" in message and "qa.jsonl" in message
    message = found(preset_workdir, [{"question": "q", "answer": ""}])["dataset.context_column"]
    assert "column 'context' is not in the file" in message


def test_an_answer_not_in_its_context_is_refused(preset_workdir):
    rows = [ROWS[0], {**ROWS[1], "answer": "green"}]
    message = found(preset_workdir, rows)["dataset.answer_column"]
    assert "row 2: the answer 'green' (column 'answer') is not in its context (column " \
        "'context')" in message


def test_a_start_offset_that_does_not_match_the_answer_is_refused(preset_workdir):
    rows = [ROWS[0], {**ROWS[1], "answer_start": 30}]
    message = found(preset_workdir, rows, 'dataset.answer_start_column="answer_start"')[
        "dataset.answer_start_column"]
    assert "row 2: the answer 'blue' (column 'answer') is not at offset 30 of column " \
        "'context', which reads ' a b' there" in message
    rows = [{**ROWS[0], "answer_start": "first"}]
    message = found(preset_workdir, rows, 'dataset.answer_start_column="answer_start"')[
        "dataset.answer_start_column"]
    assert "row 1, column 'answer_start' holds 'first'" in message


def test_the_offset_column_picks_which_occurrence_is_the_answer():
    ds = resolve("demo-tiny", [*QA, 'dataset.answer_start_column="start"']).experiment.dataset
    row = {"question": "q", "context": "red, then red again", "answer": "red", "start": 10}
    assert answer_span(row, ds) == (10, 13)
    ds.answer_start_column = None
    assert answer_span(row, ds) == (0, 3)  # the first occurrence
    assert answer_span({**row, "answer": ""}, ds) is None  # no answer


def test_a_test_file_needs_questions_and_contexts_only():
    ds = resolve("demo-tiny", QA).experiment.dataset
    check_rows([{"question": "Who?", "context": CONTEXT}], ds, "extractive_qa", targets=False)
    try:
        check_rows([{"question": "Who?"}], ds, "extractive_qa", targets=False)
    except DataFileError as error:
        assert error.setting == "dataset.context_column"
    else:
        raise AssertionError("a test file without contexts passed")
