"""Rows of the training and validation files (csv, parquet, jsonl; dataset folders and hub
dataset ids: runs/datasource.py, train/dataset_sources.py), the seeded sample and
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

from tui_tune.runs.datafiles import DataFileError, check_rows
from tui_tune.runs.datasource import FOLDER, HUB, iter_source_rows, source_kind
from tui_tune.runs.image_rows import images_base
from tui_tune.train.dataset_sources import is_saved_dataset, load_hub_rows, load_saved_rows
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


def datasets_rows(path_text: str, setting: str, ds=None) -> list[dict[str, Any]] | None:
    """The rows of a hub dataset id or a save_to_disk folder, loaded with `datasets` (its
    split, subset and revision from `ds`, the dataset settings); None for the files and
    folders of files runs/datasource.py reads."""
    kind = source_kind(path_text)
    if kind == HUB:
        return load_hub_rows(path_text, setting, ds)
    if kind == FOLDER and is_saved_dataset(Path(path_text).expanduser()):
        return load_saved_rows(path_text, setting, ds)
    return None


def read_rows(path_text: str, setting: str, ds=None) -> list[dict[str, Any]]:
    """The rows a dataset setting names: a file, a dataset folder or a hub dataset id."""
    loaded = datasets_rows(path_text, setting, ds)
    if loaded is not None:
        return loaded
    try:
        return list(iter_source_rows(path_text, setting, ds))
    except DataFileError as error:
        raise UserError(error.message, error.setting or setting, path_text or "(empty)") \
            from None


def check_columns(rows: list[dict[str, Any]], ds, setting_file: str, path: str,
                  problem_type: str = "causal_lm") -> None:
    try:
        check_rows(rows, ds, problem_type, images_base=images_base(path))
    except DataFileError as error:
        raise UserError(error.message, error.setting or setting_file, path) from None


TRAIN_SETTING, VALIDATION_SETTING = "dataset.train_file", "dataset.validation_file"


@dataclass
class SplitRows:
    """A run's rows: the whole training file (chains are looked up and labels counted there),
    the training and the validation rows, and the setting and file the validation rows came
    from (so a message about one of them names the right file)."""
    all_train: list[dict[str, Any]]
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    val_setting: str
    val_file: str

    @property
    def custom(self) -> bool:
        return self.val_setting == VALIDATION_SETTING

    def examples(self, ds, build: Callable[[list, list, int], list]) -> tuple[list, list]:
        """build(rows, lookup, first index) over the training and the validation rows. Chains
        are looked up in the whole training file (a turn keeps its history whatever the
        split), a custom validation file's in itself; indices run on from train into val."""
        lookup = self.all_train if ds.parent_id_column else []
        train = build(self.train, lookup, 0)
        return train, build(self.val, self.val if self.custom else lookup, len(train))


def read_split_rows(exp, seed: int, validation_file: bool = True) -> SplitRows:
    """The data files read and checked as the launch preflight checks them, then split; every
    problem type but causal_lm (which first maps chat layouts) reads its rows here. Without
    validation_file the custom validation file is not read (what training saw is enough)."""
    ds, kind = exp.dataset, exp.general.problem_type
    rows = read_rows(ds.train_file, TRAIN_SETTING, ds)
    check_columns(rows, ds, TRAIN_SETTING, ds.train_file, kind)
    train, val = split_rows(rows, ds, seed)
    if ds.validation_strategy == "custom" and validation_file:
        val = read_rows(ds.validation_file or "", VALIDATION_SETTING, ds)
        check_columns(val, ds, VALIDATION_SETTING, ds.validation_file, kind)
        return SplitRows(rows, train, val, VALIDATION_SETTING, ds.validation_file or "")
    return SplitRows(rows, train, val, TRAIN_SETTING, ds.train_file)


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
