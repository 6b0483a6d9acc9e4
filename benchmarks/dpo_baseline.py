"""TRL's DPOTrainer on exactly the model, pairs and settings our dpo worker uses: the baseline
of bench_trainer's "cpu dpo" case (called by trainer_baseline for a dpo run).

The pairs come from our own loader, tokenized: TRL is given their prompt / chosen / rejected
ids, so both sides train on the same tokens and the comparison isolates the loop.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

from tui_tune.train.adapters import apply_method
from tui_tune.train.model import load_backbone, load_tokenizer
from tui_tune.train.reporting import memory_gib
from tui_tune.train.setup import read_experiment
from tui_tune.train.tasks import task_for
from tui_tune.train.worker import quiet_libraries


def token_rows(pairs) -> dict[str, list]:
    cut = [p.chosen.prompt_length for p in pairs]
    return {"prompt_ids": [p.chosen.input_ids[:n] for p, n in zip(pairs, cut)],
            "chosen_ids": [p.chosen.input_ids[n:] for p, n in zip(pairs, cut)],
            "rejected_ids": [p.rejected.input_ids[p.rejected.prompt_length:] for p in pairs]}


class Counting:
    """TRL's collator, counting the real tokens of each batch (as our worker counts them)."""

    def __init__(self, inner):
        self.inner, self.tokens = inner, []

    def __call__(self, features):
        batch = self.inner(features)
        self.tokens.append(int(batch["attention_mask"].sum()))
        return batch


def main(run_dir: str, steps: int, skip: int, clock) -> None:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from benchmarks.trainer_baseline import rates

    quiet_libraries(Path(run_dir), rank=0)
    exp = read_experiment(Path(run_dir))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = load_tokenizer(exp)
    data = task_for(exp).load_data(exp, tokenizer, exp.environment.seed)
    model = apply_method(load_backbone(exp, tokenizer, device, data), exp)
    t, mp = exp.training, exp.environment.mixed_precision
    args = DPOConfig(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accumulation, max_steps=steps, learning_rate=t.lr,
        lr_scheduler_type=t.schedule, warmup_steps=0, weight_decay=t.weight_decay,
        max_grad_norm=t.grad_clip or 1e9, beta=t.beta, loss_type=[t.dpo_loss],
        bf16=mp == "bf16", fp16=mp == "fp16", use_cpu=device.type == "cpu",
        gradient_checkpointing=exp.architecture.gradient_checkpointing, max_length=None,
        precompute_ref_log_probs=t.precompute_reference, logging_steps=max(1, steps),
        save_strategy="no", report_to=[], dataloader_num_workers=0, seed=exp.environment.seed,
        disable_tqdm=True)
    placeholder = Dataset.from_dict({"prompt": ["a"], "chosen": ["b"], "rejected": ["c"]})
    trainer = DPOTrainer(model=model, args=args, train_dataset=placeholder,
                         processing_class=tokenizer, callbacks=[clock])
    if "ref" in model.peft_config:  # a new adapter: the reference is the adapter switched off
        model.delete_adapter("ref")
    trainer.train_dataset = Dataset.from_dict(token_rows(data.train))
    collator = trainer.data_collator = Counting(trainer.data_collator)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    print(json.dumps({**rates(collator.tokens, clock.ends, steps, skip, t.grad_accumulation),
                      **memory_gib(device)}))
