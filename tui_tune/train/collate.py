"""Batches: which examples go together (seeded, resumable, sharded by rank) and how they are padded.

The batch plan of an epoch is a pure function of (seed, epoch), so a resumed run replays exactly
the batches an uninterrupted one would have seen, and every rank gets its own share.
"""

from __future__ import annotations

import math
import random

import torch

from tui_tune.train.formatting import IGNORE_INDEX, Example

GROUP_CHUNK_BATCHES = 64  # length grouping sorts within chunks of this many batches


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int,
                  group_by_length: bool, world_size: int) -> list[list[int]]:
    """Every rank's micro-batches for one epoch, interleaved: batch i belongs to rank i % world."""
    rng = random.Random(f"{seed}-{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        chunk = batch_size * GROUP_CHUNK_BATCHES
        order = [i for start in range(0, len(order), chunk)
                 for i in sorted(order[start:start + chunk], key=lambda j: -lengths[j])]
    batches = [order[i:i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    usable = len(batches) - len(batches) % world_size
    return batches[:usable]


def rank_batches(batches: list[list[int]], rank: int, world_size: int) -> list[list[int]]:
    return batches[rank::world_size]


def steps_per_epoch(n_examples: int, batch_size: int, world_size: int, accumulation: int) -> int:
    per_rank = (n_examples // batch_size) // world_size
    return max(per_rank // accumulation, 0)


class PaddedCollator:
    """Pads each batch to the padding quantile of its lengths (not to max_length). Rows longer
    than that lose their beginning, as max_length truncation does: the answer and its end
    token, which the loss learns from, stay."""

    def __init__(self, pad_id: int, quantile: float = 1.0, side: str = "right"):
        self.pad_id, self.quantile, self.side = pad_id, quantile, side

    def target_length(self, lengths: list[int]) -> int:
        if self.quantile >= 1.0:
            return max(lengths)
        ordered = sorted(lengths)
        return ordered[max(math.ceil(self.quantile * len(ordered)) - 1, 0)]

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        width = self.target_length([len(e) for e in examples])
        ids = torch.full((len(examples), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        for row, ex in enumerate(examples):
            n = min(len(ex), width)
            span = slice(0, n) if self.side == "right" else slice(width - n, width)
            ids[row, span] = torch.tensor(ex.input_ids[len(ex) - n:])
            labels[row, span] = torch.tensor(ex.labels[len(ex) - n:])
            mask[row, span] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class PackedCollator:
    """Padding-free packing: one row, position ids restart per sequence (transformers'
    DataCollatorWithFlattening), and the first label of each sequence is ignored."""

    def __init__(self):
        from transformers import DataCollatorWithFlattening

        self.inner = DataCollatorWithFlattening(return_position_ids=True,
                                                separator_id=IGNORE_INDEX)

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        features = [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]
        batch = self.inner(features, return_tensors="pt")
        return {k: batch[k] for k in ("input_ids", "labels", "position_ids")}


def real_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Tokens that are not padding, counted on the CPU tensors before they move to a device."""
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return int(batch["input_ids"].numel())


def padding_fraction(batch: dict[str, torch.Tensor]) -> float:
    return 1.0 - real_tokens(batch) / max(batch["input_ids"].numel(), 1)
