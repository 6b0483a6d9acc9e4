"""Causal-LM cross-entropy over answer tokens, token-averaged or sample-averaged."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tui_tune.train.formatting import IGNORE_INDEX


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """use_cache=False keeps packed sequences apart (see design)."""
    inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask",
                                                      "position_ids")}
    return {**inputs, "use_cache": False}


def forward_batch(model, batch: dict[str, torch.Tensor]):
    """The logits of a batch (evaluation, per-sample losses)."""
    return model(**model_inputs(batch)).logits


def training_loss(model, batch: dict[str, torch.Tensor], mode: str) -> torch.Tensor:
    """The micro-batch's mean loss. Token-averaged, it is the model's own loss (labels in the
    forward, shifted as ours), so liger-kernel can swap in its fused linear cross-entropy,
    which never materialises the (batch, length, vocab) logits; num_items_in_batch makes an
    all-masked batch 0 instead of 0/0. Per-sample averaging needs the logits, and so does a
    remote-code model whose forward takes no num_items_in_batch."""
    if mode == "token_avg_ce" and not getattr(model, "_refuses_num_items", False):
        answer_tokens = (shifted_labels(batch["labels"]) != IGNORE_INDEX).sum().clamp(min=1)
        try:
            return model(**model_inputs(batch), labels=batch["labels"],
                         num_items_in_batch=answer_tokens).loss
        except TypeError as error:  # raised before any work is done: the call is refused
            if "num_items_in_batch" not in str(error):
                raise
            model._refuses_num_items = True  # asked once, not every step
    return causal_lm_loss(forward_batch(model, batch), batch, mode)[0]


def shifted_labels(labels: torch.Tensor) -> torch.Tensor:
    """labels[t + 1] at position t (the last position ignored): shifting labels, not logits,
    spares a copy of the (batch, length, vocab) logits."""
    return F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)


def token_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-position loss (0 where ignored), aligned with shifted_labels(labels)."""
    target = shifted_labels(labels)
    return F.cross_entropy(logits.float().flatten(0, 1), target.flatten(),
                           ignore_index=IGNORE_INDEX, reduction="none").view_as(target)


def sequence_ids(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Which sequence each position belongs to: the row, or the packed segment."""
    labels = batch["labels"]
    if "position_ids" in batch:
        return torch.cumsum((batch["position_ids"] == 0).long(), dim=-1)
    rows = torch.arange(labels.size(0), device=labels.device).unsqueeze(1)
    return rows.expand_as(labels)


def causal_lm_loss(logits: torch.Tensor, batch: dict[str, torch.Tensor],
                   mode: str = "token_avg_ce") -> tuple[torch.Tensor, torch.Tensor]:
    """(mean loss, number of answer tokens) for the batch."""
    losses = token_losses(logits, batch["labels"])
    valid = shifted_labels(batch["labels"]) != IGNORE_INDEX
    count = valid.sum()
    if mode == "token_avg_ce":
        return losses.sum() / count.clamp(min=1), count
    _, ids = torch.unique(sequence_ids(batch)[valid], return_inverse=True)
    per_token = losses[valid]
    sums = torch.zeros(int(ids.max()) + 1 if ids.numel() else 1,
                       device=per_token.device).index_add_(0, ids, per_token)
    counts = torch.bincount(ids, minlength=sums.numel()).clamp(min=1)
    return (sums / counts).mean(), count
