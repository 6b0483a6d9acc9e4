"""Reading a training or validation file into rows, and checking the columns a run reads.

One reader for the launch preflight (app side) and the worker, so both accept and refuse the
same files. No torch or `datasets` here: the stdlib reads csv and JSON, pyarrow reads parquet,
each imported when used. Every cell is kept as the file holds it, so a nested (struct/list)
value is refused naming its column and row instead of being turned into text, and a byte
that is not UTF-8 is reported with its row instead of a decoder traceback.
"""

from __future__ import annotations

import codecs
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tui_tune.runs import image_rows, layouts, qa_rows, tag_rows
from tui_tune.runs.labels import LABELLED, LabelCheck, label_setting

# file extension -> format; .pq is how H2O LLM Studio names parquet files
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "json",
           ".json": "json"}
FORMAT_NAMES = ".csv, .parquet (.pq) or .jsonl"
BAD_BYTE = re.compile("[\udc80-\udcff]")  # a byte that was not UTF-8, kept by surrogateescape


class DataFileError(Exception):
    """Why a data file cannot be used; `setting` when a column setting is to blame rather than
    the file setting (dataset.train_file / dataset.validation_file) the caller names."""

    def __init__(self, message: str, setting: str | None = None):
        super().__init__(message)
        self.message, self.setting = message, setting


def data_format(path: str | Path) -> str | None:
    return FORMATS.get(Path(path).suffix.lower())


def iter_rows(path_text: str) -> Iterator[dict[str, Any]]:
    """The file's rows as dicts, in order; DataFileError for a file tui-tune cannot read."""
    path = Path(path_text)
    if not path_text or not path.is_file():
        raise DataFileError(f"file not found; point it at a {FORMAT_NAMES} file.")
    kind = data_format(path)
    if kind is None:
        raise DataFileError(f"'{path.suffix}' is not a data format tui-tune reads; use "
                            f"{FORMAT_NAMES}.")
    if path.stat().st_size == 0:
        raise DataFileError("the file is empty.")
    reader = {"csv": _csv_rows, "json": _json_rows, "parquet": _parquet_rows}[kind]
    empty = True
    for row in reader(path):
        empty = False
        yield row
    if empty:
        raise DataFileError("the file has no rows.")


def _text_lines(path: Path) -> Iterator[str]:
    """Lines decoded as UTF-8 (a leading BOM dropped); a byte that is not UTF-8 is kept as a
    surrogate so the row holding it can be named once it is parsed."""
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as file:
        yield from file


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    import csv

    reader = csv.reader(_text_lines(path))
    try:
        header = next(reader, None)
        if header is None:
            return
        number = 0
        for cells in reader:
            if not any(cells):
                continue  # a blank line is no row
            number += 1
            if len(cells) > len(header):
                raise DataFileError(f"row {number} (line {reader.line_num}) has {len(cells)} "
                                    f"cells but the header names {len(header)} columns.")
            # an empty cell is a missing value, as pandas and H2O read it
            yield {name: (cells[i] if i < len(cells) and cells[i] != "" else None)
                   for i, name in enumerate(header)}
    except csv.Error as error:
        raise DataFileError(f"line {reader.line_num} is not valid CSV ({error}).") from None


def _json_rows(path: Path) -> Iterator[dict[str, Any]]:
    """JSON lines, or one JSON array of objects (as `datasets` reads a .json file)."""
    import json

    with open(path, "rb") as file:
        head = file.read(4096).removeprefix(codecs.BOM_UTF8).lstrip()
    if head.startswith(b"["):
        text = "".join(_text_lines(path))
        try:
            items = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataFileError(f"is not valid JSON at line {error.lineno} ({error.msg}).") \
                from None
        numbered = enumerate(items, 1)
    else:
        numbered = _json_lines(path)
    for number, item in numbered:
        if not isinstance(item, dict):
            raise DataFileError(f"row {number} is a JSON {type(item).__name__}, not an object "
                                "with one key per column.")
        yield item


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    import json

    for number, line in enumerate(_text_lines(path), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFileError(f"line {number} is not valid JSON ({error.msg}).") from None


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        for batch in file.iter_batches(batch_size=4096):
            yield from batch.to_pylist()
    except (pa.ArrowException, OSError) as error:
        raise DataFileError(f"cannot read it as parquet ({error}).") from None


def wanted_columns(ds, problem_type: str = "causal_lm",
                   targets: bool = True) -> dict[str, list[str]]:
    """Column setting -> the columns it names, for the columns a run reads (without the
    answer or label columns when not `targets`: a test file)."""
    if problem_type == "token_classification":
        return tag_rows.wanted_columns(ds, targets)
    if problem_type == "extractive_qa":
        return qa_rows.wanted_columns(ds, targets)
    target = label_setting(ds) if problem_type in LABELLED else (
        "dataset.answer_column", [ds.answer_column])
    wanted = {"dataset.prompt_columns": list(ds.prompt_columns)}
    if targets:
        wanted[target[0]] = target[1]
    if targets and problem_type == "dpo":
        wanted["dataset.rejected_answer_column"] = [ds.rejected_answer_column]
    if ds.system_column:
        wanted["dataset.system_column"] = [ds.system_column]
    if ds.parent_id_column:
        wanted["dataset.parent_id_column"] = [ds.parent_id_column]
        wanted["dataset.id_column"] = [ds.id_column]
    return wanted


def check_rows(rows, ds, problem_type: str = "causal_lm", targets: bool = True,
               images_base: Path | None = None) -> None:
    """Every named column exists, every row has an answer (classification and regression:
    targets that fit, runs/labels.py; token_classification: words and one tag per word,
    runs/tag_rows.py; extractive_qa: an answer found in its context, runs/qa_rows.py), and
    every cell read is a plain value in valid UTF-8; DataFileError naming the column setting
    and the row otherwise. A test file (not `targets`) needs no answers, labels or tags: its
    rows are predicted. multimodal_causal_lm with `images_base` (the data file's folder):
    every image a row names is a file that reads as an RGB image (runs/image_rows.py).
    `rows` may be a stream: it is read once."""
    if problem_type == "causal_lm" and ds.format != layouts.COLUMNS:
        rows = iter(rows)
        first = next(rows, None)
        rows = itertools.chain([first] if first is not None else [], rows)
        layout = layouts.detect_format(first or {}, ds)
        if layout != layouts.COLUMNS:
            return _check_layout_rows(rows, layout, targets)
    tagged = problem_type == "token_classification"
    wanted = wanted_columns(ds, problem_type, targets)
    setting_of = {c: s for s, columns in wanted.items() for c in columns}
    labels = LabelCheck(ds, problem_type) if problem_type in LABELLED and targets else None
    answer = ds.answer_column if targets and labels is None else None
    if problem_type == "extractive_qa":
        answer = None  # an empty answer: the context does not answer the question
    seen: set[str] = set()
    first_problem: DataFileError | None = None
    for number, row in enumerate(rows, 1):
        seen.update(row)
        if first_problem is None and tagged:
            found = tag_rows.row_problem(number, row, ds, targets)
            first_problem = DataFileError(found[1], found[0]) if found else None
        elif first_problem is None:
            first_problem = _row_problem(number, row, answer, setting_of)
            if first_problem is None and problem_type == "extractive_qa":
                found = qa_rows.row_problem(number, row, ds, targets)
                first_problem = DataFileError(found[1], found[0]) if found else None
        if first_problem is None and problem_type == "dpo" and targets:
            first_problem = _pair_problem(number, row, ds)
        if first_problem is None and problem_type == "seq2seq":
            first_problem = _text_pair_problem(number, row, ds, answer)
        if first_problem is None and labels is not None:
            message = labels.problem(number, row)
            first_problem = DataFileError(message, labels.setting) if message else None
        if first_problem is None and images_base is not None \
                and problem_type == "multimodal_causal_lm":
            first_problem = _image_problem(number, row, ds.image_column, images_base)
    if images_base is not None and problem_type == "multimodal_causal_lm":
        wanted = {**wanted, image_rows.SETTING: [ds.image_column]}
    for setting, columns in wanted.items():
        missing = [c for c in columns if c not in seen]
        if missing:
            raise DataFileError(f"column {', '.join(repr(c) for c in missing)} is not in the "
                                f"file (it has: {', '.join(sorted(seen))}).", setting)
    if first_problem is not None:
        raise first_problem


def _check_layout_rows(rows, layout: str, targets: bool = True) -> None:
    """A layout's rows; rows to predict (not `targets`) may end with the user's message."""
    check = layouts.check_row if targets else layouts.check_prompt_row
    seen: set[str] = set()
    first_problem = None
    for number, row in enumerate(rows, 1):
        seen.update(row)
        if first_problem is None:
            first_problem = check(number, row, layout)
    wanted = layouts.layout_column(layout) if targets or layout != layouts.ALPACA \
        else ["instruction"]
    missing = [c for c in wanted if c not in seen]
    if missing:
        raise DataFileError(f"column {', '.join(repr(c) for c in missing)} is not in the file "
                            f"(it has: {', '.join(sorted(seen))}); dataset.format is "
                            f"'{layout}'.", "dataset.format")
    if first_problem is not None:
        raise DataFileError(first_problem)


def check_validation_tags(train_rows, validation_rows, ds) -> None:
    """Token classification with a validation file: DataFileError naming the first validation
    row whose tag no training row has (the model has no output for it)."""
    problem = tag_rows.unknown_tag(validation_rows, tag_rows.tag_set(train_rows, ds), ds)
    if problem:
        raise DataFileError(problem, "dataset.validation_file")


def _row_problem(number: int, row: dict[str, Any], answer: str | None,
                 setting_of: dict[str, str]) -> DataFileError | None:
    for column, setting in setting_of.items():
        value = row.get(column)
        if column == answer and value is None:
            return DataFileError(f"row {number} has no value in column '{column}'.", setting)
        if isinstance(value, (dict, list, tuple)):
            return DataFileError(f"row {number}, column '{column}' holds a nested value "
                                 f"({type(value).__name__}); tui-tune reads text cells: flatten "
                                 "it into text columns first.", setting)
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                value = value.decode("utf-8", errors="surrogateescape")
            else:
                return DataFileError(f"row {number}, column '{column}' holds binary data; "
                                     "store text as a string column.", setting)
        if isinstance(value, str) and _has_bad_bytes(value):
            return DataFileError(f"row {number}, column '{column}' has bytes that are not UTF-8 "
                                 f"(near {_near_bad_bytes(value)}); save the file as UTF-8.")
    return None


def _image_problem(number: int, row: dict[str, Any], column: str,
                   base: Path) -> DataFileError | None:
    try:
        for path in image_rows.cell_paths(row.get(column), number, column):
            problem = image_rows.image_problem(image_rows.resolve(path, base, number, column),
                                               path, number, column)
            if problem:
                return DataFileError(problem, image_rows.SETTING)
    except image_rows.ImageCellError as error:
        return DataFileError(str(error), image_rows.SETTING)
    return None


def _pair_problem(number: int, row: dict[str, Any], ds) -> DataFileError | None:
    """dpo: both answers hold text, and not the same text (such a pair teaches nothing and
    only adds noise to the preference accuracy)."""
    chosen, rejected = row.get(ds.answer_column), row.get(ds.rejected_answer_column)
    for column, value, setting in ((ds.answer_column, chosen, "dataset.answer_column"),
                                   (ds.rejected_answer_column, rejected,
                                    "dataset.rejected_answer_column")):
        if value is None or not str(value).strip():
            return DataFileError(f"row {number} has an empty answer in column '{column}'; a "
                                 "preference pair needs a chosen and a rejected answer.",
                                 setting)
    if str(chosen).strip() == str(rejected).strip():
        return DataFileError(f"row {number}: the chosen ('{ds.answer_column}') and rejected "
                             f"('{ds.rejected_answer_column}') answers are the same text; "
                             "drop the row or fix one of them.",
                             "dataset.rejected_answer_column")
    return None


def _text_pair_problem(number: int, row: dict[str, Any], ds,
                       target: str | None) -> DataFileError | None:
    """seq2seq: a row needs a source (some text in a prompt column) and, when targets are
    read, a target that is not blank: an empty one would teach the model to write nothing."""
    if all(not str(row.get(c) or "").strip() for c in ds.prompt_columns):
        names = ", ".join(repr(c) for c in ds.prompt_columns)
        return DataFileError(f"row {number} has no source text in column {names}.",
                             "dataset.prompt_columns")
    if target is not None and not str(row.get(target) or "").strip():
        return DataFileError(f"row {number} has an empty target in column '{target}'.",
                             "dataset.answer_column")
    return None


def _has_bad_bytes(text: str) -> bool:
    return not text.isascii() and BAD_BYTE.search(text) is not None


def _near_bad_bytes(text: str) -> str:
    at = BAD_BYTE.search(text).start()
    return repr(text[max(0, at - 20):at + 5].encode("utf-8", "surrogateescape"))
