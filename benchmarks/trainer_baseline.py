"""transformers' Trainer on exactly the model and tokenized data our worker uses (causal_lm,
or a classification/regression run: AutoModelForSequenceClassification and its `labels=`; an
extractive_qa run: AutoModelForQuestionAnswering and its start/end positions; a seq2seq
run: Seq2SeqTrainer on the encoder-decoder, its targets padded with -100; a
multimodal_causal_lm run: AutoModelForImageTextToText with our own image-text collator).

Run as `python -m benchmarks.trainer_baseline RUN_DIR STEPS SKIP`; prints one JSON line with
tokens/s over steps SKIP+1..STEPS and peak memory. The model and examples come from our own
loaders, so the comparison isolates the training loop (Trainer vs tui_tune.train.loop).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import (
    DataCollatorForSeq2Seq,
    DataCollatorWithPadding,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from benchmarks.bench_trainer import median_step
from tui_tune.train.adapters import apply_method
from tui_tune.train.model import load_backbone, load_tokenizer
from tui_tune.train.reporting import memory_gib
from tui_tune.train.setup import read_experiment
from tui_tune.train.tasks import task_for
from tui_tune.train.worker import quiet_libraries

OPTIM = {"paged_adamw_8bit": "paged_adamw_8bit", "paged_adamw_32bit": "paged_adamw_32bit",
         "adamw_8bit": "adamw_8bit"}  # adamw: fused on CUDA, as our worker does


class StepClock(TrainerCallback):
    def __init__(self):
        self.ends: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())


class CountingCollator:
    """Pads like our worker (to the longest in the batch) and counts real tokens per batch."""

    def __init__(self, tokenizer, token_labels: bool = True):
        self.inner = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100) \
            if token_labels else DataCollatorWithPadding(tokenizer, padding=True)
        self.tokens: list[int] = []

    def __call__(self, features):
        batch = self.inner(features)
        self.tokens.append(int(batch["attention_mask"].sum()))
        return batch


class ImageCountingCollator:
    """multimodal_causal_lm: our own collator (the same prompt/image encoding and masking on
    both sides, so the loops are compared), counting real tokens and images per batch."""

    def __init__(self, inner):
        self.inner, self.tokens, self.images = inner, [], []

    def __call__(self, examples):
        batch = self.inner(examples)
        self.tokens.append(int(batch["attention_mask"].sum()))
        self.images.append(sum(len(e.images) for e in examples))
        return batch


def qa_rows(windows) -> list[dict]:
    """extractive_qa: AutoModelForQuestionAnswering's inputs and its start/end positions."""
    return [{"input_ids": w.input_ids, "token_type_ids": w.token_type_ids,
             "attention_mask": [1] * len(w), "start_positions": w.start,
             "end_positions": w.end} for w in windows]


def main(run_dir: str, steps: int, skip: int) -> None:
    quiet_libraries(Path(run_dir), rank=0)
    exp = read_experiment(Path(run_dir))
    if exp.general.problem_type == "dpo":  # TRL's DPOTrainer, on our pairs
        from benchmarks.dpo_baseline import main as dpo_main

        return dpo_main(run_dir, steps, skip, StepClock())
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = load_tokenizer(exp)
    data = task_for(exp).load_data(exp, tokenizer, exp.environment.seed)
    model = apply_method(load_backbone(exp, tokenizer, device, data), exp)
    kind = exp.general.problem_type
    causal, seq2seq = kind == "causal_lm", kind == "seq2seq"
    vision = kind == "multimodal_causal_lm"
    task = task_for(exp) if vision else None
    if vision:  # the task keeps the processor load_data loaded
        data = task.load_data(exp, tokenizer, exp.environment.seed)
        rows = data.train
    else:
        rows = [{"input_ids": e.input_ids, "attention_mask": [1] * len(e),
                 "labels": e.labels if causal or seq2seq else e.target} for e in data.train] \
            if exp.general.problem_type != "extractive_qa" else qa_rows(data.train)
    t, mp = exp.training, exp.environment.mixed_precision
    arguments, trainer_class = (Seq2SeqTrainingArguments, Seq2SeqTrainer) if seq2seq else (
        TrainingArguments, Trainer)
    args = arguments(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accumulation, max_steps=steps,
        learning_rate=t.lr, lr_scheduler_type=t.schedule, warmup_steps=0,
        weight_decay=t.weight_decay, max_grad_norm=t.grad_clip or 1e9,
        optim=OPTIM.get(t.optimizer, "adamw_torch_fused" if device.type == "cuda" else "adamw_torch"),
        bf16=mp == "bf16", fp16=mp == "fp16", use_cpu=device.type == "cpu",
        gradient_checkpointing=exp.architecture.gradient_checkpointing,
        torch_compile=exp.architecture.compile, use_liger_kernel=exp.architecture.liger_kernel,
        logging_steps=max(1, steps), save_strategy="no", report_to=[],
        dataloader_num_workers=0, remove_unused_columns=False, seed=exp.environment.seed,
        disable_tqdm=True)
    clock = StepClock()
    collator = ImageCountingCollator(task.train_collator(exp, tokenizer)) if vision else \
        CountingCollator(tokenizer, token_labels=causal or seq2seq)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer = trainer_class(model=model, args=args, train_dataset=rows, data_collator=collator,
                            processing_class=tokenizer, callbacks=[clock])
    trainer.train()
    numbers = rates(collator.tokens, clock.ends, steps, skip, t.grad_accumulation)
    if vision:
        numbers["images_per_s"] = rates(collator.images, clock.ends, steps, skip,
                                        t.grad_accumulation)["tokens_per_s"]
    print(json.dumps({**numbers, **memory_gib(device)}))


def rates(tokens: list[int], ends: list[float], steps: int, skip: int, per_step: int) -> dict:
    """Tokens/s over steps skip+1..steps, and that of the median step (as bench_trainer reads
    the worker's step events): `tokens` per micro-batch, `ends` when each step ended."""
    counted = [sum(tokens[k * per_step:(k + 1) * per_step]) for k in range(skip, steps)]
    seconds = [ends[k] - ends[k - 1] for k in range(skip, steps)]
    return {"tokens_per_s": sum(counted) / (ends[steps - 1] - ends[skip - 1]),
            "median_step_tokens_per_s": median_step(counted, seconds)}


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
