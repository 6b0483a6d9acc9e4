"""Token classification rows: the words and tags of a row, their checks and the tag set.

A row holds its words as a list or as one text split on whitespace, and one tag per word the
same way (tag texts such as BIO tags, or tag ids). Shared by the launch preflight (through
datafiles.check_rows) and the worker's task (train/tasks/token_classification.py), so both read
a row the same way. No torch here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

WORDS, TAGS = "dataset.words_column", "dataset.tags_column"


def cell_items(value: Any) -> list[str] | None:
    """A list cell's items, or a text cell split on whitespace, as texts; None for any other
    kind of value (a number, a mapping, a nested list)."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, (list, tuple)) and all(_plain(v) for v in value):
        return [str(v) for v in value]
    return None


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def words_and_tags(row: dict[str, Any], ds) -> tuple[list[str], list[str]]:
    """The row's words and tags as texts (a row that passed row_problem)."""
    return cell_items(row[ds.words_column]) or [], cell_items(row[ds.tags_column]) or []


def wanted_columns(ds, targets: bool = True) -> dict[str, list[str]]:
    """The columns a file must have; a test file (targets False) needs only the words."""
    return {WORDS: [ds.words_column], **({TAGS: [ds.tags_column]} if targets else {})}


def row_problem(number: int, row: dict[str, Any], ds,
                targets: bool = True) -> tuple[str, str] | None:
    """(setting, message) for a row the task cannot use: no words, a cell that is neither a
    list nor a text, or not one tag per word (tags are checked only with `targets`)."""
    words, tags = row.get(ds.words_column), row.get(ds.tags_column)
    cells = ((WORDS, ds.words_column, words), (TAGS, ds.tags_column, tags))
    for setting, column, value in cells[:2 if targets else 1]:
        if value is None:
            return setting, f"row {number} has no value in column '{column}'."
        if cell_items(value) is None:
            return setting, (f"row {number}, column '{column}' holds a {type(value).__name__}; "
                             "give a list of texts (or ids), or one text of items separated "
                             "by spaces.")
    words = cell_items(words)
    if not words:
        return WORDS, f"row {number} has no words in column '{ds.words_column}'."
    if not targets:
        return None
    tags = cell_items(tags)
    if len(words) != len(tags):
        return TAGS, (f"row {number} has {len(words)} words in '{ds.words_column}' but "
                      f"{len(tags)} tags in '{ds.tags_column}': give one tag per word.")
    return None


def tag_order(tags: Iterable[str]) -> list[str]:
    """The label set in id order: sorted, numerically when every tag is a number (tag ids)."""
    unique = set(tags)
    if unique and all(t.lstrip("-").isdigit() for t in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def tag_set(rows: Iterable[dict[str, Any]], ds) -> list[str]:
    return tag_order(t for row in rows for t in words_and_tags(row, ds)[1])


def unknown_tag(rows: Iterable[dict[str, Any]], known: Iterable[str], ds) -> str | None:
    """A message for the first row holding a tag that is not in `known` (the training tags):
    the model has no output for it. None when every tag is known."""
    known = set(known)
    for number, row in enumerate(rows, 1):
        for tag in words_and_tags(row, ds)[1]:
            if tag not in known:
                return (f"row {number} has the tag '{tag}', which no training row has (the "
                        f"training tags: {', '.join(tag_order(known))}); the model cannot "
                        "predict it.")
    return None
