"""What each problem type accepts: the metrics that fit it (the first is its default) and
the settings that apply to it. Shared by the rules, the editor (which shows only what fits)
and the worker's tasks (train/tasks/, one per supported type)."""

from __future__ import annotations

PROBLEM_TYPES = ("causal_lm", "classification", "regression", "token_classification",
                 "seq2seq", "dpo")
# the types the worker trains; tests/test_seams.py checks this against train/tasks/TASKS
SUPPORTED_PROBLEM_TYPES = ("causal_lm", "classification", "regression",
                           "token_classification",
                           "seq2seq")
LABELLING_TYPES = ("classification", "regression", "token_classification")

METRICS: dict[str, tuple[str, ...]] = {
    "causal_lm": ("perplexity", "bleu", "none"),
    "classification": ("accuracy", "auc", "logloss", "f1"),
    "regression": ("mse", "mae", "r2"),
    "token_classification": ("f1", "accuracy"),
    "seq2seq": ("rougeL", "rouge1", "rouge2", "bleu", "chrf", "perplexity"),
}
ALL_METRICS = tuple(dict.fromkeys(m for metrics in METRICS.values() for m in metrics))
# metrics where lower is better (the others: higher is better)
LOWER_IS_BETTER = frozenset({"perplexity", "logloss", "mse", "mae"})

# settings that only one kind of problem reads ("group.field" -> the types that read it)
ONLY_FOR: dict[str, tuple[str, ...]] = {
    "dataset.label_columns": ("classification", "regression"),
    "dataset.num_classes": ("classification",),
    "training.class_weights": ("classification",),
    "training.regression_loss": ("regression",),
    "dataset.words_column": ("token_classification",),
    "dataset.tags_column": ("token_classification",),
    "dataset.label_all_subtokens": ("token_classification",),
    "dataset.answer_column": ("causal_lm", "classification", "regression", "seq2seq", "dpo"),
    "training.loss": ("causal_lm", "seq2seq", "dpo"),
    "training.packing": ("causal_lm",),
    "tokenizer.max_target_length": ("seq2seq",),
    "dataset.task_prefix": ("seq2seq",),
    "dataset.source_language": ("seq2seq",),
    "dataset.target_language": ("seq2seq",),
}


def metrics_for(problem_type: str) -> tuple[str, ...]:
    return METRICS.get(problem_type, METRICS["causal_lm"])


def default_metric(problem_type: str) -> str:
    return metrics_for(problem_type)[0]


def applies(path: str, problem_type: str) -> bool:
    """Whether the setting at `path` is read for this problem type."""
    return problem_type in ONLY_FOR.get(path, (problem_type,))
