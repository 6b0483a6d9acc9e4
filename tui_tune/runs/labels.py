"""The label cells of classification and regression files: which columns hold them, how a cell
reads as a class id, a label text or a number, and the row-by-row checks that the launch
preflight and the worker make (runs/datafiles.check_rows), so both refuse the same files.

No torch here: the app imports it.
"""

from __future__ import annotations

import math
from typing import Any

LABELLED = ("classification", "regression")  # the types whose targets are label columns


def label_setting(ds) -> tuple[str, list[str]]:
    """The setting naming the target column(s), and those columns: label_columns, or else the
    answer column."""
    if ds.label_columns:
        return "dataset.label_columns", list(ds.label_columns)
    return "dataset.answer_column", [ds.answer_column]


def as_number(value: Any) -> float | None:
    """A cell as a number (csv cells are texts: "3", " 2.5 "); None when it is not one."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def as_class_id(value: Any) -> int | None:
    """A cell as a whole number (3, "3", 3.0); None for anything else."""
    number = as_number(value)
    if number is None or not math.isfinite(number) or number != int(number):
        return None
    return int(number)


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and math.isnan(value))


def shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


class LabelCheck:
    """Feeds on rows in order; `problem(number, row)` is the first thing wrong with a row's
    targets as a message, or None. Classification: one column of class ids (0 to
    num_classes-1; 0 or 1 when num_classes is 1) or of label texts (at most num_classes of
    them), not both; several columns: one 0/1 flag each. Regression: finite numbers."""

    def __init__(self, ds, problem_type: str):
        self.kind, self.num_classes = problem_type, ds.num_classes
        self.setting, self.columns = label_setting(ds)
        self.first_id_row: tuple[int, int] | None = None  # (row, id) of the first class id
        self.first_text_row: tuple[int, str] | None = None
        self.texts: set[str] = set()

    def problem(self, number: int, row: dict[str, Any]) -> str | None:
        for column in self.columns:
            value = row.get(column)
            if isinstance(value, (dict, list, tuple)):
                continue  # the nested-value check names it
            if is_missing(value):
                return f"row {number} has no value in column '{column}'."
            if self.kind == "regression":
                found = self._number_problem(number, column, value)
            elif len(self.columns) > 1:
                found = self._flag_problem(number, column, value)
            else:
                found = self._class_problem(number, column, value)
            if found:
                return found
        return None

    def _number_problem(self, number: int, column: str, value: Any) -> str | None:
        target = as_number(value)
        if target is None:
            return (f"row {number}, column '{column}' holds {shown(value)}, not a number: "
                    "regression targets are numbers.")
        if not math.isfinite(target):
            return (f"row {number}, column '{column}' holds {shown(value)}: regression "
                    "targets must be finite numbers.")
        return None

    def _flag_problem(self, number: int, column: str, value: Any) -> str | None:
        if as_class_id(value) not in (0, 1):
            return (f"row {number}, column '{column}' holds {shown(value)}: with several "
                    "label columns (multilabel) each holds 0 or 1.")
        return None

    def _class_problem(self, number: int, column: str, value: Any) -> str | None:
        class_id, n = as_class_id(value), self.num_classes
        if class_id is None and as_number(value) is not None:
            return (f"row {number}, column '{column}' holds {shown(value)}, which is not a "
                    "class: class labels are whole numbers (0 to num_classes-1) or label texts.")
        if class_id is not None:
            return self._id_problem(number, column, class_id)
        text = str(value)
        if self.first_id_row is not None:
            row, first = self.first_id_row
            return (f"row {number}, column '{column}' holds the label text {shown(text)} while "
                    f"row {row} holds the class id {first}: use ids or texts, not both.")
        self.first_text_row = self.first_text_row or (number, text)
        self.texts.add(text)
        most = 2 if n == 1 else n
        if n and len(self.texts) > most:
            return (f"row {number}, column '{column}' holds {shown(text)}, label text number "
                    f"{len(self.texts)}, but dataset.num_classes = {n} allows {most}: "
                    "raise num_classes or set it to 0 to count them.")
        return None

    def _id_problem(self, number: int, column: str, class_id: int) -> str | None:
        n = self.num_classes
        if self.first_text_row is not None:
            row, first = self.first_text_row
            return (f"row {number}, column '{column}' holds the class id {class_id} while "
                    f"row {row} holds the label text {shown(first)}: use ids or texts, not both.")
        self.first_id_row = self.first_id_row or (number, class_id)
        if n == 1 and class_id not in (0, 1):
            return (f"row {number}, column '{column}' holds {class_id}: binary labels "
                    "(dataset.num_classes = 1) are 0 or 1.")
        if class_id < 0:
            return (f"row {number}, column '{column}' holds the class {class_id}: class ids "
                    "start at 0.")
        if n > 1 and class_id >= n:
            return (f"row {number}, column '{column}' holds the class {class_id}, outside 0 "
                    f"to {n - 1} (dataset.num_classes = {n}).")
        return None
