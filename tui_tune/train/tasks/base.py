"""The interface every problem type implements: the worker's loop, model loading, checkpoints
and final/ only ever talk to a problem type through it.

Adding a problem type is one module in this package with a Task subclass, its line in
tasks.TASKS, and its config, demo and tests (docs/architecture.md, "Adding a problem type").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_tune.train.collate import real_tokens


@dataclass
class EvalResult:
    """One evaluation: the validation loss, the metric `prediction.metric` chose (charted and
    compared by name), every other metric of the problem type (more fields of the eval event)
    and the sample records shown in the monitor (rank 0's; empty elsewhere)."""
    val_loss: float
    metric: str
    metric_value: float
    values: dict[str, float] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)


class Task:
    """One problem type, chosen by `general.problem_type`."""

    name: str = ""
    # the transformers Auto class whose from_pretrained/from_config builds the model, and
    # which loads final/ again (a user's `AutoModelFor...`)
    auto_model: str = ""
    # peft's task type: with it, get_peft_model also trains and saves the task's head
    peft_task_type: str = ""
    # module names of the head on top of the blocks (last_layer trains them with the last block)
    head_modules: tuple[str, ...] = ()
    # whether that head is new (drawn at random when the backbone loads), so that every
    # adapter method trains it; a causal LM's lm_head comes trained
    head_is_new: bool = False
    # modules a quantized backbone (int4/int8) keeps in its float dtype (empty: transformers
    # chooses, keeping the output head); multimodal_causal_lm: all but the language model
    unquantized_modules: tuple[str, ...] = ()

    def load_data(self, exp, tokenizer, seed: int):
        """Rows of the data files -> tokenized examples: a data.SplitData. Each example has a
        len() in tokens (batches are grouped and planned by it)."""
        raise NotImplementedError

    def model_kwargs(self, exp, data) -> dict[str, Any]:
        """Extra from_pretrained arguments (e.g. the number of labels the data holds)."""
        return {}

    def train_collator(self, exp, tokenizer) -> Callable[[list], dict]:
        """Examples -> the batch of tensors that `loss` takes."""
        raise NotImplementedError

    def lora_targets(self, model, exp, targets):
        """The modules that get LoRA adapters: peft's target_modules from adapter.target_modules
        ("all-linear" or name suffixes); a type may narrow them (multimodal_causal_lm: the
        language model's, as a regex)."""
        return targets

    def freeze_parts(self, model, exp) -> None:
        """With full and last_layer: keep the parts the type's settings name frozen
        (multimodal_causal_lm: the vision tower or the language model)."""

    def before_training(self, session) -> None:
        """Called once on every rank when the model, data and any checkpoint are loaded, before
        the first step or evaluation (dpo: the reference model and its cached log-probs)."""

    def step_values(self, accelerator) -> dict[str, float]:
        """More fields of the step event: the type's training statistics since the last one,
        over every rank (called on every rank together)."""
        return {}

    def rank_state(self) -> dict[str, Any]:
        """What this rank's task holds between steps that a checkpoint must keep for an exact
        resume (grpo: completions sampled for passes still to come); empty: nothing."""
        return {}

    def load_rank_state(self, state: dict[str, Any], device) -> None:
        """rank_state() of the checkpoint being resumed, on this rank's device."""

    def step_tokens(self, batch: dict) -> int:
        """Tokens a trained micro-batch put through the model, asked after its step: its
        batch's real tokens (grpo: the prompts and the completions it sampled for them)."""
        return real_tokens(batch)

    def loss(self, model, batch: dict, exp):
        """The micro-batch's mean training loss (a scalar tensor with its graph)."""
        raise NotImplementedError

    def evaluate(self, model, tokenizer, examples: list, accelerator, exp) -> EvalResult:
        """Called on every rank (the loss is reduced over them)."""
        raise NotImplementedError

    def predict_setup(self, exp, tokenizer, seed: int) -> Any:
        """What model_kwargs needs to build the trained model again when only predicting (the
        label set, read from the training file as training read it); None when nothing."""
        return None

    def predict(self, model, tokenizer, rows: list[dict[str, Any]], accelerator, exp,
                progress: Callable[[int], None] | None = None) -> list[dict[str, Any]] | None:
        """The prediction columns of every row, in order, on rank 0 (None on the others).
        Called on every rank with the model `evaluate` gets; each rank predicts a share and
        calls progress(n) as it finishes n rows. The rows are a test file's: the prompt columns
        (or words) are there, answers and labels may not be. Column names are `prediction`,
        `prediction_<column>` or `probability_<label>` (runs/predictions.py)."""
        raise NotImplementedError

    def write_final(self, tokenizer, exp, folder: Path) -> None:
        """What final/ holds besides the weights (rank 0): the tokenizer, and whatever a user
        needs to use the model as it was trained."""
        tokenizer.save_pretrained(folder)


def token_mean_loss(model, examples: list, collate, accelerator, batch_size: int,
                    summed: Callable[[Any, dict], tuple[Any, Any]]) -> float:
    """A validation loss averaged over tokens: each rank takes every world-th example in eval
    mode, `summed(model, batch)` gives a batch's (loss sum, token count), the sums are reduced
    over the ranks. causal_lm, seq2seq and multimodal_causal_lm differ only in `summed`."""
    import torch

    mine = examples[accelerator.process_index::accelerator.num_processes]
    total = torch.zeros(2, device=accelerator.device, dtype=torch.float64)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(mine), batch_size):
            batch = {k: v.to(accelerator.device) for k, v in
                     collate(mine[start:start + batch_size]).items()}
            with accelerator.autocast():
                loss, count = summed(model, batch)
            total[0] += loss.double()
            total[1] += count
    if was_training:
        model.train()
    if accelerator.num_processes > 1:
        total = accelerator.reduce(total, reduction="sum")
    return float(total[0] / total[1].clamp(min=1))
