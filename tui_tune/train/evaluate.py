"""Evaluation: validation loss and perplexity over all ranks, generated samples, BLEU."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from tui_tune.train import metrics
from tui_tune.train.collate import PaddedCollator
from tui_tune.train.formatting import IGNORE_INDEX, Example
from tui_tune.train.losses import forward_batch, shifted_labels, token_losses


@dataclass
class EvalResult:
    val_loss: float
    perplexity: float
    metric: str
    metric_value: float
    samples: list[dict]


@torch.no_grad()
def validation_loss(model, examples: list[Example], accelerator, batch_size: int,
                    pad_id: int) -> float:
    """Token-averaged loss over the validation rows; each rank takes every world-th row."""
    collate = PaddedCollator(pad_id)
    mine = examples[accelerator.process_index::accelerator.num_processes]
    total = torch.zeros(2, device=accelerator.device, dtype=torch.float64)
    model.eval()
    for start in range(0, len(mine), batch_size):
        batch = {k: v.to(accelerator.device) for k, v in
                 collate(mine[start:start + batch_size]).items()}
        with accelerator.autocast():
            logits = forward_batch(model, batch)
        losses = token_losses(logits, batch["labels"])
        total[0] += losses.sum().double()
        total[1] += (shifted_labels(batch["labels"]) != IGNORE_INDEX).sum()
    model.train()
    total = accelerator.reduce(total, reduction="sum") if accelerator.num_processes > 1 else total
    return float(total[0] / total[1].clamp(min=1))


def generation_kwargs(prediction, tokenizer) -> dict:
    """generate()'s arguments. temperature 0 (H2O accepts it) means the likeliest token, which
    is greedy decoding: sampling at 0 would divide by zero."""
    kwargs = {"max_new_tokens": prediction.max_new_tokens,
              "min_new_tokens": prediction.min_new_tokens,
              "do_sample": prediction.do_sample and prediction.temperature > 0,
              "num_beams": prediction.num_beams, "repetition_penalty": prediction.repetition_penalty,
              "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    if kwargs["do_sample"]:
        kwargs.update(temperature=prediction.temperature, top_k=prediction.top_k or None,
                      top_p=prediction.top_p)
    if prediction.stop_strings:
        kwargs.update(stop_strings=list(prediction.stop_strings), tokenizer=tokenizer)
    if prediction.max_time > 0:
        kwargs.update(max_time=prediction.max_time)
    return kwargs


def prediction_batch_size(exp) -> int:
    """prediction.batch_size, where 0 (H2O's default) means training.batch_size."""
    return exp.prediction.batch_size or exp.training.batch_size


@dataclass
class Generation:
    prompt: str  # decoded from exactly the ids generate() was given
    answer: str


@torch.no_grad()
def generate(model, tokenizer, examples: list[Example], prediction, device,
             batch_size: int | None = None) -> list[Generation]:
    """Greedy/sampled answers to the examples' generation prompts (built apart from the
    training truncation, so never empty), left-padded, in prediction batches."""
    kwargs = generation_kwargs(prediction, tokenizer)
    size = batch_size or prediction.batch_size
    fallback = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None
                else tokenizer.eos_token_id]
    out_rows: list[Generation] = []
    was_training = model.training
    model.eval()
    for start in range(0, len(examples), size):
        chunk = examples[start:start + size]
        prompts = [e.prompt_ids or fallback for e in chunk]  # empty only without any marker
        width = max(len(p) for p in prompts)
        ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt):] = torch.tensor(prompt)
            mask[row, width - len(prompt):] = 1
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                             use_cache=True, **kwargs)
        for given, row_mask, row in zip(ids, mask, out[:, width:]):
            out_rows.append(Generation(
                tokenizer.decode(given[row_mask.bool()]),
                tokenizer.decode(row, skip_special_tokens=True).strip()))
    if was_training:
        model.train()
    return out_rows


def generate_answers(model, tokenizer, examples: list[Example], prediction, device,
                     batch_size: int | None = None) -> list[str]:
    return [g.answer for g in generate(model, tokenizer, examples, prediction, device,
                                       batch_size)]


def evaluate(model, tokenizer, examples: list[Example], accelerator, exp) -> EvalResult:
    """Loss on every rank; samples and BLEU on rank 0 (on every rank with FSDP, whose
    gathered weights need all ranks), others get empty samples."""
    pred = exp.prediction
    loss = validation_loss(model, examples, accelerator, exp.training.batch_size,
                           tokenizer.pad_token_id)
    perplexity = metrics.perplexity(loss)
    samples, metric_value = [], perplexity
    shown = examples[:pred.num_samples]
    judged = examples if pred.metric == "bleu" else shown
    made = generate_on_ranks(model, tokenizer, judged, exp, accelerator) if judged else []
    if accelerator.is_main_process and made is not None:
        samples = [{"prompt": g.prompt, "generation": g.answer, "reference": e.answer_text}
                   for e, g in zip(shown, made)]
        if pred.metric == "bleu":
            metric_value = metrics.bleu([g.answer for g in made],
                                        [e.answer_text for e in judged])
    metric = pred.metric if pred.metric != "none" else "perplexity"
    return EvalResult(loss, perplexity, metric, metric_value, samples)


def generate_on_ranks(model, tokenizer, judged, exp, accelerator) -> list[Generation] | None:
    kind = accelerator.distributed_type.name
    if kind == "DEEPSPEED":
        return None  # ZeRO-3 weights are not whole on any rank: no samples
    context = contextlib.nullcontext()
    if kind == "FSDP":
        from torch.distributed.fsdp import FullyShardedDataParallel

        if not isinstance(model, FullyShardedDataParallel):
            return None  # FSDP2 has no summon_full_params: no samples
        context = FullyShardedDataParallel.summon_full_params(model, writeback=False)
    elif not accelerator.is_main_process:
        return None
    with context, accelerator.autocast():
        plain = accelerator.unwrap_model(model, keep_torch_compile=False)
        made = generate(plain, tokenizer, judged, exp.prediction, accelerator.device,
                        prediction_batch_size(exp))
    if accelerator.device.type == "cuda":
        torch.cuda.empty_cache()  # the generation cache must not crowd the training steps
    return made
