"""Problem types: one module per type behind tasks.base.Task, chosen by general.problem_type.

TASKS names each type's class by module path, so that choosing one imports only that one.
A test checks that TASKS and the config's supported problem types are the same list.
"""

from __future__ import annotations

from importlib import import_module

from tui_tune.train.errors import UserError
from tui_tune.train.tasks.base import EvalResult, Task

TASKS = {
    "causal_lm": "tui_tune.train.tasks.causal_lm:CausalLM",
    "classification": "tui_tune.train.tasks.classification:Classification",
    "regression": "tui_tune.train.tasks.regression:Regression",
    "token_classification": "tui_tune.train.tasks.token_classification:TokenClassification",
    "extractive_qa": "tui_tune.train.tasks.extractive_qa:ExtractiveQA",
    "dpo": "tui_tune.train.tasks.dpo:DPO",
    "seq2seq": "tui_tune.train.tasks.seq2seq:Seq2Seq",
    "grpo": "tui_tune.train.tasks.grpo:GRPO",
    "multimodal_causal_lm": "tui_tune.train.tasks.multimodal_causal_lm:MultimodalCausalLM",
}

__all__ = ["TASKS", "EvalResult", "Task", "task_for", "task_named"]


def task_named(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"'{name}' is not a problem type this worker trains; pick one of "
                        f"{', '.join(TASKS)}.", "general.problem_type")
    module, _, cls = TASKS[name].partition(":")
    return getattr(import_module(module), cls)()


def task_for(exp) -> Task:
    return task_named(exp.general.problem_type)
