"""Dataset layouts besides prompt/answer columns (dataset.format): OpenAI `messages`, ShareGPT
`conversations` and Alpaca instruction/input/output, for causal LM.

Each layout is turned into the rows the columns layout reads: one row per assistant answer,
chained to the previous turn by id, with the system message on the first. So a conversation
is learned exactly as the same turns written as chained prompt/answer rows would be
(build_conversations follows the chain; limit_chained_samples and only_last_answer apply).
Shared by the launch preflight and the worker, as runs/datafiles.py is. No torch here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MESSAGES, SHAREGPT, ALPACA, COLUMNS = "messages", "sharegpt", "alpaca", "columns"
LAYOUT_COLUMN = {MESSAGES: "messages", SHAREGPT: "conversations"}
ALPACA_COLUMNS = ("instruction", "input", "output")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                  "assistant": "assistant", "chatgpt": "assistant"}
DESCRIPTION = {COLUMNS: "prompt/answer columns", MESSAGES: "OpenAI chat messages (column "
               "'messages')", SHAREGPT: "ShareGPT conversations (column 'conversations')",
               ALPACA: "Alpaca instruction/input/output columns"}
# the columns of the rows a layout becomes, and the dataset settings that read them
CANONICAL = {"prompt_columns": ["prompt"], "answer_column": "answer", "system_column": "system",
             "id_column": "id", "parent_id_column": "parent_id"}


class LayoutError(Exception):
    """A row that does not fit its layout; the message names the row and the column."""


def detect_format(columns: Iterable[str], ds) -> str:
    """dataset.format, with auto told from a row's columns: the prompt/answer columns when the
    file has them (so existing files read as before), else the layout whose columns it has."""
    if ds.format != "auto":
        return ds.format
    found = set(columns)
    if {*ds.prompt_columns, ds.answer_column} <= found:
        return COLUMNS
    for layout, column in LAYOUT_COLUMN.items():
        if column in found:
            return layout
    if {"instruction", "output"} <= found or ("instruction" in found
                                              and not set(ds.prompt_columns) <= found):
        return ALPACA  # without output: rows to predict
    return COLUMNS


def layout_note(ds, layout: str, setting: str = "dataset.train_file") -> str | None:
    """The layout told from the columns, in one line for the preflight and the run's log."""
    if ds.format != "auto" or layout == COLUMNS:
        return None
    return f"dataset.format auto: {setting} holds {DESCRIPTION[layout]}."


def layout_dataset(ds, layout: str):
    """The dataset settings the rows of a layout are read with (columns: unchanged)."""
    if layout == COLUMNS:
        return ds
    update = dict(CANONICAL)
    if layout == ALPACA:
        update["parent_id_column"] = None
    return ds.model_copy(update=update)


def layout_column(layout: str) -> list[str]:
    return list(ALPACA_COLUMNS[::2]) if layout == ALPACA else [LAYOUT_COLUMN[layout]]


def to_rows(rows: Iterable[dict[str, Any]], layout: str, separator: str = "\n\n",
            prefix: str = "") -> list[dict[str, Any]]:
    """The rows of a layout as chained prompt/answer rows (LayoutError for a row that does not
    fit). `prefix` keeps the ids of two files (training, validation) apart."""
    out: list[dict[str, Any]] = []
    for number, row in enumerate(rows, 1):
        if layout == ALPACA:
            out.append(_alpaca_row(number, row, separator))
            continue
        system, turns = conversation(number, row, layout)
        parent = None
        for k, (prompt, answer) in enumerate(turns):
            turn_id = f"{prefix}{number}.{k}"
            out.append({"id": turn_id, "parent_id": parent, "system": system if k == 0 else None,
                        "prompt": prompt, "answer": answer})
            parent = turn_id
    return out


def check_row(number: int, row: dict[str, Any], layout: str) -> str | None:
    """Why a row does not fit its layout, naming the row and column; None when it does."""
    try:
        if layout == ALPACA:
            _alpaca_row(number, row, "")
        else:
            conversation(number, row, layout)
    except LayoutError as error:
        return str(error)
    return None


def conversation(number: int, row: dict[str, Any],
                 layout: str) -> tuple[str | None, list[tuple[str, str]]]:
    """(system, [(user, assistant), ...]) of a messages or ShareGPT row."""
    column = LAYOUT_COLUMN[layout]
    where = f"row {number}, column '{column}'"
    value = row.get(column)
    if not isinstance(value, list) or not value:
        return _fail(f"{where} holds {_kind(value)}, not a list of messages.")
    messages = [_message(where, n, item, layout) for n, item in enumerate(value, 1)]
    system = None
    if messages[0][0] == "system":
        system = messages.pop(0)[1]
    if not any(role == "assistant" for role, _ in messages):
        return _fail(f"{where} has no assistant message: there is nothing to learn.")
    turns, expected = [], "user"
    for n, (role, content) in enumerate(messages, 2 if system is not None else 1):
        if role != expected:
            return _fail(f"{where}: message {n} is '{role}' where a '{expected}' message "
                         "belongs (a system message first, then user and assistant in turn).")
        if role == "user":
            turns.append((content, ""))
        else:
            turns[-1] = (turns[-1][0], content)
        expected = "assistant" if role == "user" else "user"
    if expected == "assistant":
        return _fail(f"{where} ends with a user message that has no answer.")
    return system, turns


def prompt_conversation(number: int, row: dict[str, Any],
                        layout: str) -> tuple[str | None, list[tuple[str, str]], str]:
    """A row to predict (dataset.test_file, `tui-tune predict`): (system, the earlier
    (user, assistant) turns, the user message the model answers). A final assistant message
    is the reference answer and is left out, so a training file can be predicted too."""
    if layout == ALPACA:
        row = _alpaca_row(number, {**row, "output": "-"}, "\n\n")
        return row["system"], [], row["prompt"]
    column = LAYOUT_COLUMN[layout]
    where = f"row {number}, column '{column}'"
    value = row.get(column)
    if not isinstance(value, list) or not value:
        return _fail(f"{where} holds {_kind(value)}, not a list of messages.")
    messages = [_message(where, n, item, layout) for n, item in enumerate(value, 1)]
    if messages[-1][0] == "assistant":
        messages.pop()
    system = messages.pop(0)[1] if messages and messages[0][0] == "system" else None
    if not messages:
        return _fail(f"{where} has no user message for the model to answer.")
    first = 2 if system is not None else 1
    for n, (role, _) in enumerate(messages, first):
        expected = "user" if (n - first) % 2 == 0 else "assistant"
        if role != expected:
            return _fail(f"{where}: message {n} is '{role}' where a '{expected}' message "
                         "belongs (a system message first, then user and assistant in turn).")
    turns = [(messages[k][1], messages[k + 1][1]) for k in range(0, len(messages) - 1, 2)]
    return system, turns, messages[-1][1]


def check_prompt_row(number: int, row: dict[str, Any], layout: str) -> str | None:
    """Why a row to predict does not fit its layout; None when it does."""
    try:
        if layout == ALPACA:
            value = row.get("instruction")
            if not isinstance(value, str) or not value.strip():
                _fail(f"row {number}, column 'instruction' is empty.")
        prompt_conversation(number, row, layout)
    except LayoutError as error:
        return str(error)
    return None


def prompt_rows(rows: list[dict[str, Any]], layout: str,
                separator: str = "\n\n") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows to predict as columns-layout rows, one per row in order (its prompt, no answer),
    and every row their chains are followed through (the earlier turns included)."""
    own: list[dict[str, Any]] = []
    everything: list[dict[str, Any]] = []
    for number, row in enumerate(rows, 1):
        if layout == ALPACA:
            done = _alpaca_row(number, {**row, "output": "-"}, separator)
            own.append({**done, "answer": ""})
            everything.append(own[-1])
            continue
        system, turns, prompt = prompt_conversation(number, row, layout)
        parent = None
        for k, (asked, said) in enumerate(turns):
            turn_id = f"{number}.{k}"
            everything.append({"id": turn_id, "parent_id": parent,
                               "system": system if k == 0 else None,
                               "prompt": asked, "answer": said})
            parent = turn_id
        own.append({"id": f"{number}.{len(turns)}", "parent_id": parent,
                    "system": system if not turns else None, "prompt": prompt, "answer": ""})
        everything.append(own[-1])
    return own, everything


def _message(where: str, n: int, item: Any, layout: str) -> tuple[str, str]:
    role_key, content_key = ("role", "content") if layout == MESSAGES else ("from", "value")
    if not isinstance(item, dict) or role_key not in item:
        return _fail(f"{where}: message {n} is {_kind(item)}, not an object with "
                     f"'{role_key}' and '{content_key}'.")
    raw = item[role_key]
    role = raw if layout == MESSAGES else SHAREGPT_ROLES.get(str(raw).lower())
    if role not in ("system", "user", "assistant"):
        names = "system, user or assistant" if layout == MESSAGES else \
            "system, human or gpt"
        return _fail(f"{where}: message {n} has {role_key} {raw!r}; use {names}.")
    content = item.get(content_key)
    if not isinstance(content, str) or not content.strip():
        return _fail(f"{where}: message {n} ({role}) has an empty {content_key}.")
    return role, content


def _alpaca_row(number: int, row: dict[str, Any], separator: str) -> dict[str, Any]:
    for column in ("instruction", "output"):
        value = row.get(column)
        if not isinstance(value, str) or not value.strip():
            _fail(f"row {number}, column '{column}' is empty.")
    extra = row.get("input")
    prompt = row["instruction"] + (separator + str(extra) if extra not in (None, "") else "")
    return {"id": str(number), "parent_id": None, "system": row.get("system"),
            "prompt": prompt, "answer": row["output"]}


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"a {type(value).__name__}"


def _fail(message: str):
    raise LayoutError(message)
