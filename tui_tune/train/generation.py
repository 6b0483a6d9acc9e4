"""Generating answers from examples' prompts (evaluation samples, BLEU, predictions), also
under FSDP, where the gathered weights need every rank."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from tui_tune.train.formatting import Example


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


def generate_all(model, tokenizer, examples: list, exp, accelerator, progress=None,
                 answers=generate_answers) -> list[str] | None:
    """Answers to every example (predictions), on rank 0; None on the other ranks. Each rank
    generates every world-th example and the answers are gathered; under FSDP (whose gathered
    weights need every rank in each forward) every rank generates them all. `answers` turns a
    chunk of examples into texts (an encoder-decoder's: tasks/seq2seq.generate_outputs)."""
    from tui_tune.train.errors import UserError

    kind = accelerator.distributed_type.name
    world, rank = accelerator.num_processes, accelerator.process_index
    indices = list(range(rank, len(examples), world))
    context = contextlib.nullcontext()
    if kind == "DEEPSPEED":
        raise UserError("DeepSpeed ZeRO-3 weights are whole on no rank, so no answers can be "
                        "generated in the run; predict afterwards with `tui-tune predict`.",
                        "environment.distributed_backend")
    if kind == "FSDP":
        from torch.distributed.fsdp import FullyShardedDataParallel

        if not isinstance(model, FullyShardedDataParallel):
            raise UserError("FSDP2 cannot gather whole weights to generate in the run; predict "
                            "afterwards with `tui-tune predict`.",
                            "environment.distributed_backend")
        context = FullyShardedDataParallel.summon_full_params(model, writeback=False)
        indices = list(range(len(examples)))
    size = prediction_batch_size(exp)
    made: list[str] = []
    with context, accelerator.autocast():
        plain = accelerator.unwrap_model(model, keep_torch_compile=False)
        for start in range(0, len(indices), size):
            chunk = [examples[i] for i in indices[start:start + size]]
            made += answers(plain, tokenizer, chunk, exp.prediction, accelerator.device, size)
            if progress is not None:
                progress(len(chunk))
    pairs = list(zip(indices, made))
    if world > 1 and kind != "FSDP":
        from accelerate.utils import gather_object

        pairs = gather_object(pairs)
    if not accelerator.is_main_process:
        return None
    return [answer for _, answer in sorted(pairs)]
