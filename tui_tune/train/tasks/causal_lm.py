"""Causal language modeling: prompt -> answer text, the loss on answer tokens (prompts masked
as dataset.mask_prompt_labels says), validation loss, perplexity, BLEU or exact match, and
generated samples.

The example format, truncation and chat templates are in formatting.py (shared with the other
text-to-text types); generation in generation.py.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
import torch.nn.functional as F

from tui_tune.runs.layouts import (
    COLUMNS,
    DESCRIPTION,
    detect_format,
    layout_dataset,
    layout_note,
    prompt_rows,
    to_rows,
)
from tui_tune.train import metrics
from tui_tune.train.collate import PackedCollator, PaddedCollator
from tui_tune.train.data import SplitData, check_columns, read_rows, split_rows
from tui_tune.train.errors import UserError
from tui_tune.train.formatting import (
    IGNORE_INDEX,
    Example,
    build_conversations,
    marker_chat_template,
    tokenize_conversations,
    truncation_note,
)
from tui_tune.train.generation import generate_all, generate_on_ranks
from tui_tune.train.tasks.base import EvalResult, Task, token_mean_loss


class CausalLM(Task):
    name = "causal_lm"
    auto_model = "AutoModelForCausalLM"
    peft_task_type = "CAUSAL_LM"
    head_modules = ("lm_head",)

    def load_data(self, exp, tokenizer, seed: int) -> SplitData:
        return load_examples(exp, tokenizer, seed)

    def train_collator(self, exp, tokenizer):
        if exp.training.packing:
            return PackedCollator()
        tok = exp.tokenizer
        return PaddedCollator(tokenizer.pad_token_id, tok.padding_quantile, tok.padding_side)

    def loss(self, model, batch: dict, exp) -> torch.Tensor:
        return training_loss(model, batch, exp.training.loss)

    def evaluate(self, model, tokenizer, examples: list[Example], accelerator,
                 exp) -> EvalResult:
        return evaluate(model, tokenizer, examples, accelerator, exp)

    def predict(self, model, tokenizer, rows, accelerator, exp, progress=None):
        """The generated answer of each row (prediction.* settings), as `prediction`."""
        answers = generate_all(model, tokenizer, prompt_examples(rows, exp, tokenizer), exp,
                               accelerator, progress)
        return None if answers is None else [{"prediction": a} for a in answers]

    def write_final(self, tokenizer, exp, folder: Path) -> None:
        """Trained with text markers, the tokenizer gets a chat template built from them
        (replacing the backbone's, which the model never saw), so apply_chat_template
        downstream writes exactly the training format, as H2O's export does."""
        if not exp.dataset.use_chat_template:
            tokenizer.chat_template = marker_chat_template(exp.dataset, tokenizer)
        tokenizer.save_pretrained(folder)


def load_examples(exp, tokenizer, seed: int) -> SplitData:
    ds = exp.dataset
    rows = read_rows(ds.train_file, "dataset.train_file", ds)
    check_columns(rows, ds, "dataset.train_file", ds.train_file)
    rows, layout = layout_rows(rows, ds, "dataset.train_file")
    ds = layout_dataset(ds, layout)
    train_rows, val_rows = split_rows(rows, ds, seed)
    if ds.validation_strategy == "custom":
        val_rows = read_rows(ds.validation_file or "", "dataset.validation_file", ds)
        check_columns(val_rows, exp.dataset, "dataset.validation_file", ds.validation_file)
        val_rows, _ = layout_rows(val_rows, exp.dataset, "dataset.validation_file", layout)
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
    notes = [layout_note(exp.dataset, layout), truncation_note(train, val, max_length, side)]
    return SplitData(train, val, train_examples if augmented else None,
                     [note for note in notes if note])


def layout_rows(rows: list[dict], ds, setting: str,
                expected: str | None = None) -> tuple[list[dict], str]:
    """A file's rows in the columns layout (runs/layouts.py), with the layout they came in;
    a validation file must come in the training file's layout (`expected`)."""
    layout = detect_format(rows[0], ds)
    if expected is not None and layout != expected:
        raise UserError(f"holds {DESCRIPTION[layout]}, the training file "
                        f"{DESCRIPTION[expected]}: use one layout for both.", setting,
                        ds.validation_file or "")
    if layout == COLUMNS:
        return rows, layout
    prefix = "validation-" if expected else ""
    return to_rows(rows, layout, ds.prompt_column_separator, prefix), layout


def prompt_examples(rows: list[dict], exp, tokenizer) -> list[Example]:
    """One example per test row, its generation prompt built as in training (a chained row
    with its earlier turns from the same file); a missing answer is empty."""
    ds = exp.dataset.model_copy(update={"limit_chained_samples": False})
    layout = detect_format(rows[0], ds) if rows else COLUMNS
    if layout != COLUMNS:  # chat layouts: the last user message, after the earlier turns
        rows, lookup = prompt_rows(rows, layout, ds.prompt_column_separator)
        return _examples(rows, lookup, layout_dataset(ds, layout), tokenizer,
                         exp.tokenizer.max_length, exp.tokenizer.truncation_side)
    rows = [r if r.get(ds.answer_column) is not None else {**r, ds.answer_column: ""}
            for r in rows]
    return _examples(rows, rows, ds, tokenizer, exp.tokenizer.max_length,
                     exp.tokenizer.truncation_side)


def _examples(rows, lookup, ds, tokenizer, max_length, side, augment=None) -> list[Example]:
    if not rows:
        return []
    convs = build_conversations(rows, ds, lookup=lookup or rows, augment=augment)
    return tokenize_conversations(convs, ds, tokenizer, max_length, side)


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


def validation_loss(model, examples: list[Example], accelerator, batch_size: int,
                    pad_id: int) -> float:
    """Token-averaged loss over the validation rows; each rank takes every world-th row."""
    def summed(model, batch):
        labels = batch["labels"]
        return (token_losses(forward_batch(model, batch), labels).sum(),
                (shifted_labels(labels) != IGNORE_INDEX).sum())

    return token_mean_loss(model, examples, PaddedCollator(pad_id), accelerator, batch_size,
                           summed)


def evaluate(model, tokenizer, examples: list[Example], accelerator, exp) -> EvalResult:
    """Loss on every rank; samples and BLEU on rank 0 (on every rank with FSDP, whose
    gathered weights need all ranks), others get empty samples."""
    pred = exp.prediction
    loss = validation_loss(model, examples, accelerator, exp.training.batch_size,
                           tokenizer.pad_token_id)
    perplexity = metrics.perplexity(loss)
    samples, metric_value, values = [], perplexity, {"perplexity": perplexity}
    shown = examples[:pred.num_samples]
    judged = examples if pred.metric in ("bleu", "exact_match") else shown
    if pred.metric == "llm_judge":  # the cap on requests is also one on generations
        judged = examples[:max(pred.judge_max_requests, len(shown))]
    made = generate_on_ranks(model, tokenizer, judged, exp, accelerator) if judged else []
    if accelerator.is_main_process and made is not None:
        samples = [{"prompt": g.prompt, "generation": g.answer, "reference": e.answer_text}
                   for e, g in zip(shown, made)]
        if pred.metric == "bleu":
            metric_value = metrics.bleu([g.answer for g in made],
                                        [e.answer_text for e in judged])
        if pred.metric == "exact_match" and judged:
            right = metrics.exact_matches([g.answer for g in made],
                                          [e.answer_text for e in judged])
            metric_value = right / len(judged)
            values.update(exact_match=metric_value, exact_count=right, exact_total=len(judged))
        if pred.metric == "llm_judge":
            from tui_tune.train.judge import judge

            judgement = judge([(e.prompt_text, g.answer, e.answer_text)
                               for e, g in zip(judged, made)], pred)
            metric_value = judgement.score
            values.update(judgement.event_fields())
            for sample, verdict in zip(samples, judgement.verdicts):  # the first rows
                sample.update(judge_score=verdict.score,
                              judge_reason=verdict.reason or verdict.failed or "")
    metric = pred.metric if pred.metric != "none" else "perplexity"
    return EvalResult(loss, metric, metric_value, values, samples)
