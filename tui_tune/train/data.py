"""Rows of the training and validation files (csv, parquet, jsonl), the seeded sample and
validation split, and the SplitData every problem type turns them into (tasks/).

The files are read and checked by tui_tune.runs.datafiles, the reader the launch preflight
uses too, so a file the preflight accepts is one the worker reads.

Every problem a user can cause (missing file, empty file, missing column, unreadable rows)
ends as a UserError that names the setting and the file.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_tune.runs.datafiles import DataFileError, check_rows, iter_rows
from tui_tune.train.errors import UserError


@dataclass
class SplitData:
    """A problem type's examples; each has a len() in tokens, by which batches are planned."""
    train: list[Any]
    val: list[Any]
    # the training examples of an epoch, where parent augmentation draws anew each epoch
    redraw: Callable[[int], list[Any]] | None = None
    warnings: list[str] = field(default_factory=list)  # logged once when the run starts

    def for_epoch(self, epoch: int) -> list[Any]:
        return self.redraw(epoch) if self.redraw is not None else self.train


def read_rows(path_text: str, setting: str) -> list[dict[str, Any]]:
    try:
        return list(iter_rows(path_text))
    except DataFileError as error:
        raise UserError(error.message, error.setting or setting, path_text or "(empty)") \
            from None


def check_columns(rows: list[dict[str, Any]], ds, setting_file: str, path: str,
                  problem_type: str = "causal_lm") -> None:
    try:
        check_rows(rows, ds, problem_type, images_base=Path(path).parent)
    except DataFileError as error:
        raise UserError(error.message, error.setting or setting_file, path) from None


def split_rows(rows: list[dict[str, Any]], ds, seed: int) -> tuple[list, list]:
    """The seeded sample and auto split, row by row (a chained turn keeps its history, which is
    looked up in the whole file, even where that history went to the other side)."""
    rng = random.Random(seed)
    if ds.data_sample < 1.0:
        rows = rng.sample(rows, max(1, int(len(rows) * ds.data_sample)))
    if ds.validation_strategy == "custom":
        return rows, []
    order = list(range(len(rows)))
    rng.shuffle(order)
    n_val = max(1, round(len(rows) * ds.validation_size))
    if len(rows) < 2:
        raise UserError("needs at least 2 rows to hold some out for validation.",
                        "dataset.validation_size", ds.train_file)
    val_idx = set(order[:n_val])
    return ([r for i, r in enumerate(rows) if i not in val_idx],
            [r for i, r in enumerate(rows) if i in val_idx])
