"""Reading the training and validation files (csv, parquet, jsonl) into examples.

The files are read and checked by tui_tune.runs.datafiles, the reader the launch preflight
uses too, so a file the preflight accepts is one the worker reads.

Every problem a user can cause (missing file, empty file, missing column, unreadable rows)
ends as a UserError that names the setting and the file.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tui_tune.runs.datafiles import DataFileError, check_rows, iter_rows
from tui_tune.train.errors import UserError
from tui_tune.train.formatting import Example, build_conversations, tokenize_conversations


@dataclass
class SplitData:
    train: list[Example]
    val: list[Example]
    # the training examples of an epoch, where parent augmentation draws anew each epoch
    redraw: Callable[[int], list[Example]] | None = None
    warnings: list[str] = field(default_factory=list)  # logged once when the run starts

    def for_epoch(self, epoch: int) -> list[Example]:
        return self.redraw(epoch) if self.redraw is not None else self.train


def read_rows(path_text: str, setting: str) -> list[dict[str, Any]]:
    try:
        return list(iter_rows(path_text))
    except DataFileError as error:
        raise UserError(error.message, error.setting or setting, path_text or "(empty)") \
            from None


def check_columns(rows: list[dict[str, Any]], ds, setting_file: str, path: str) -> None:
    try:
        check_rows(rows, ds)
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


def load_examples(exp, tokenizer, seed: int) -> SplitData:
    ds = exp.dataset
    rows = read_rows(ds.train_file, "dataset.train_file")
    check_columns(rows, ds, "dataset.train_file", ds.train_file)
    train_rows, val_rows = split_rows(rows, ds, seed)
    if ds.validation_strategy == "custom":
        val_rows = read_rows(ds.validation_file or "", "dataset.validation_file")
        check_columns(val_rows, ds, "dataset.validation_file", ds.validation_file)
    max_length, side = exp.tokenizer.max_length, exp.tokenizer.truncation_side
    # chains are followed in the whole file, so a turn keeps its history whatever the split
    lookup = rows if ds.parent_id_column else []
    val = _examples(val_rows, lookup if ds.validation_strategy == "auto" else val_rows,
                    ds, tokenizer, max_length, side)
    extra = val if exp.training.train_on_validation else []

    def train_examples(epoch: int) -> list[Example]:
        """Skip / random parent augmentation is drawn per epoch (seeded: resume replays it)."""
        aug = exp.augmentation
        augment = (aug.skip_parent_probability, aug.random_parent_probability,
                   random.Random(f"{seed}-parents-{epoch}"))
        return _examples(train_rows, lookup, ds, tokenizer, max_length, side, augment) + extra

    augmented = bool(ds.parent_id_column) and (exp.augmentation.skip_parent_probability > 0
                                               or exp.augmentation.random_parent_probability > 0)
    train = train_examples(0)
    note = truncation_note(train, val, max_length, side)
    return SplitData(train, val, train_examples if augmented else None,
                     [note] if note else [])


def _examples(rows, lookup, ds, tokenizer, max_length, side, augment=None) -> list[Example]:
    if not rows:
        return []
    convs = build_conversations(rows, ds, lookup=lookup or rows, augment=augment)
    return tokenize_conversations(convs, ds, tokenizer, max_length, side)


def truncation_note(train: list[Example], val: list[Example], max_length: int,
                    side: str) -> str | None:
    """What tokenizer.max_length cut, in one line: H2O cuts silently, and a prompt cut to
    nothing is otherwise only seen in odd samples."""
    cut_train = sum(1 for e in train if e.prompt_cut or e.answer_cut)
    cut_val = sum(1 for e in val if e.prompt_cut or e.answer_cut)
    if not cut_train + cut_val:
        return None
    cut = [e for e in train + val if e.prompt_cut or e.answer_cut]
    how = ("the beginning goes first: system, earlier turns, then the prompt" if side == "left"
           else "the end goes first: the answer, then the prompt")
    head = (f"tokenizer.max_length = {max_length} cut {cut_train} of {len(train)} training "
            f"and {cut_val} of {len(val)} validation examples (truncation_side = {side}: {how})")
    parts = [head]
    no_prompt = sum(1 for e in cut if e.prompt_length == 0)
    if no_prompt:
        parts.append(f"{no_prompt} kept only answer tokens")
    no_answer = sum(1 for e in cut if e.answer_cut and e.prompt_length == len(e.input_ids))
    short = sum(1 for e in cut if e.answer_cut) - no_answer
    if short:
        parts.append(f"{short} lost the end of their answer")
    if no_answer:
        parts.append(f"{no_answer} kept no answer token (nothing to learn)")
    generation = sum(1 for e in val if e.generation_cut)
    if generation:
        parts.append(f"{generation} validation prompts are given to generation as their last "
                     f"{max_length} tokens")
    return "; ".join(parts) + "."
