"""Extractive question answering rows: the question, the context and where the answer is in it.

A row's answer is a text of its context: at the offset the answer_start column gives (SQuAD's
answer_start, in characters), or, without that column or offset, its first occurrence. An empty answer
means the context does not answer the question (SQuAD v2). Shared by the launch preflight
(through datafiles.check_rows) and the worker's task (train/tasks/extractive_qa.py), so both
read a row the same way. No torch here.
"""

from __future__ import annotations

from typing import Any

QUESTION, CONTEXT = "dataset.question_column", "dataset.context_column"
ANSWER, START = "dataset.answer_column", "dataset.answer_start_column"


def wanted_columns(ds, targets: bool = True) -> dict[str, list[str]]:
    """The columns a file must have; a test file (targets False) needs only question and
    context."""
    wanted = {QUESTION: [ds.question_column], CONTEXT: [ds.context_column]}
    if targets:
        wanted[ANSWER] = [ds.answer_column]
        if ds.answer_start_column:
            wanted[START] = [ds.answer_start_column]
    return wanted


def answer_text(row: dict[str, Any], ds) -> str:
    """The row's answer ("" for none: a missing cell, as an empty csv cell reads)."""
    value = row.get(ds.answer_column)
    return "" if value is None else str(value)


def answer_span(row: dict[str, Any], ds) -> tuple[int, int] | None:
    """The answer's [start, end) characters in the context; None when it has none (or a row
    that row_problem refuses)."""
    answer, context = answer_text(row, ds), str(row.get(ds.context_column) or "")
    if not answer.strip():
        return None
    raw = row.get(ds.answer_start_column) if ds.answer_start_column else None
    start = context.find(answer) if raw is None else _offset(raw)
    if start is None or start < 0 or context[start:start + len(answer)] != answer:
        return None
    return start, start + len(answer)


def _offset(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def row_problem(number: int, row: dict[str, Any], ds,
                targets: bool = True) -> tuple[str, str] | None:
    """(setting, message) for a row the task cannot use: no question or context, a cell that
    is not text, or (with `targets`) an answer that is not where the row says it is."""
    for setting, column in ((QUESTION, ds.question_column), (CONTEXT, ds.context_column)):
        value = row.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            return setting, f"row {number} has no value in column '{column}'."
        if not isinstance(value, str):
            return setting, (f"row {number}, column '{column}' holds a {type(value).__name__}; "
                             "give a text.")
    if not targets:
        return None
    answer = row.get(ds.answer_column)
    if answer is not None and not isinstance(answer, (str, int, float)) \
            or isinstance(answer, bool):
        return ANSWER, (f"row {number}, column '{ds.answer_column}' holds a "
                        f"{type(answer).__name__}; give the answer as a text (empty for none).")
    answer = answer_text(row, ds)
    if not answer.strip() or answer_span(row, ds) is not None:
        return None
    context = row[ds.context_column]
    raw = row.get(ds.answer_start_column) if ds.answer_start_column else None
    if raw is not None:
        start = _offset(raw)
        if start is None:
            return START, (f"row {number}, column '{ds.answer_start_column}' holds {raw!r}; "
                           "give the answer's start in the context as a whole number of "
                           "characters.")
        found = context[max(start, 0):max(start, 0) + len(answer)]
        return START, (f"row {number}: the answer {_short(answer)} (column "
                       f"'{ds.answer_column}') is not at offset {start} of column "
                       f"'{ds.context_column}', which reads {_short(found)} there.")
    return ANSWER, (f"row {number}: the answer {_short(answer)} (column '{ds.answer_column}') "
                    f"is not in its context (column '{ds.context_column}'); an extractive "
                    "answer is a piece of the context, written as it is there.")


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit - 3] + "...")
