"""Sequence log-probabilities of answers under the model being trained and under a reference
(the backbone as the run started): what preference and reward tuning compare.

The reference is the same model with its adapter switched off (peft `disable_adapter`) when
only an adapter trains, else a frozen copy of the backbone loaded again: nothing is copied
from the trained weights, so it is the start of the run whenever it is built (a resume too).
"""

from __future__ import annotations

import torch

from tui_tune.train.formatting import IGNORE_INDEX
from tui_tune.train.tasks.causal_lm import model_inputs, shifted_labels, token_losses


def answer_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of log p of each row's labelled tokens, how many there are), per row."""
    logps = -token_losses(logits, labels).sum(dim=-1)
    return logps, (shifted_labels(labels) != IGNORE_INDEX).sum(dim=-1)


def answer_positions(labels: torch.Tensor) -> int:
    """How many last positions hold every logit an answer token needs: from the one before
    the earliest labelled token on (at least 1). One read of the labels (a sync on a GPU)."""
    labelled = (labels != IGNORE_INDEX).any(dim=0).nonzero()
    return labels.size(1) - max(int(labelled[0]) - 1, 0) if len(labelled) else 1


def sequence_logps(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The output head runs only on the positions from the earliest answer on (the model's
    `logits_to_keep`), as TRL's fused head does: the prompts' (batch, length, vocab) logits,
    most of a preference batch's, are never made. A model whose forward lacks
    `logits_to_keep` (remote code) gives every position's logits."""
    labels = batch["labels"]
    if not getattr(model, "_refuses_logits_to_keep", False):
        keep = answer_positions(labels)
        try:
            logits = model(**model_inputs(batch), logits_to_keep=keep).logits
        except TypeError as error:  # raised before any work is done: the call is refused
            if "logits_to_keep" not in str(error):
                raise
            model._refuses_logits_to_keep = True  # asked once, not every step
        else:
            return answer_logps(logits[:, -keep:], labels[:, -keep:])
    return answer_logps(model(**model_inputs(batch)).logits, labels)


def completion_logps(model, ids: torch.Tensor, mask: torch.Tensor, width: int,
                     temperature: float = 1.0) -> torch.Tensor:
    """(rows, completion tokens): log p of each token after the first `width` (the prompt),
    from logits divided by the sampling temperature, as TRL's GRPOTrainer computes them."""
    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
    logits = logits[:, width - 1:-1].float() / temperature
    return torch.gather(logits.log_softmax(-1), 2, ids[:, width:].unsqueeze(-1)).squeeze(-1)


def _plain(model):
    """The model under DDP / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


def uses_adapter_switch(model, exp) -> bool:
    """The adapter can be switched off to give the start of the run: a peft model whose
    backbone weights do not train (adapter.unfreeze_layers trains some whole)."""
    return hasattr(_plain(model), "disable_adapter") and not exp.adapter.unfreeze_layers


class Reference:
    """Log-probabilities under the reference model, in eval mode (no dropout, no NEFTune
    noise), without gradients."""

    def __init__(self, frozen=None):
        self.frozen = frozen  # None: switch the trained model's adapter off

    @classmethod
    def build(cls, model, exp, tokenizer, device, data=None) -> Reference:
        if uses_adapter_switch(model, exp):
            return cls()
        from tui_tune.train.model import load_backbone

        frozen = load_backbone(exp, tokenizer, device, data).to(device)
        frozen.requires_grad_(False)
        return cls(frozen.eval())

    def logps(self, model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.apply(model, sequence_logps, batch)

    @torch.no_grad()
    def apply(self, model, function, *args):
        """function(reference model, *args): the frozen copy, or the trained model with its
        adapter switched off, in eval mode."""
        if self.frozen is not None:
            return function(self.frozen, *args)
        plain = _plain(model)
        was_training = plain.training
        plain.eval()
        try:
            with plain.disable_adapter():
                return function(plain, *args)
        finally:
            plain.train(was_training)
