"""What each problem type accepts: the metrics that fit it (the first is its default) and
the settings that apply to it. Shared by the rules, the editor (which shows only what fits)
and the worker's tasks (train/tasks/, one per supported type)."""

from __future__ import annotations

PROBLEM_TYPES = ("causal_lm", "classification", "regression", "token_classification",
                 "seq2seq", "dpo", "grpo",
                 "extractive_qa", "multimodal_causal_lm")
# the types the worker trains; tests/test_seams.py checks this against train/tasks/TASKS
SUPPORTED_PROBLEM_TYPES = ("causal_lm", "classification", "regression",
                           "token_classification",
                           "extractive_qa", "dpo", "seq2seq", "grpo",
                           "multimodal_causal_lm")
LABELLING_TYPES = ("classification", "regression", "token_classification")
# whose final/ is a causal LM that generates text: chat and serve-model work with these
CHAT_TYPES = ("causal_lm", "dpo", "grpo")

METRICS: dict[str, tuple[str, ...]] = {
    "causal_lm": ("perplexity", "bleu", "none", "llm_judge", "exact_match"),
    "classification": ("accuracy", "auc", "logloss", "f1"),
    "regression": ("mse", "mae", "r2"),
    "token_classification": ("f1", "accuracy"),
    "extractive_qa": ("f1", "exact_match"),
    "dpo": ("preference_accuracy", "reward_margin"),
    "seq2seq": ("rougeL", "rouge1", "rouge2", "bleu", "chrf", "perplexity"),
    "grpo": ("reward", "exact_match"),
    "multimodal_causal_lm": ("perplexity", "bleu", "exact_match"),
}
# types whose models hold weights the loss never reaches (a vision-language model's vision
# tower computes a last norm or pooling head the projector does not read): DDP is told to
# look for unused parameters, or it waits for their gradients forever
UNUSED_WEIGHT_TYPES = ("multimodal_causal_lm",)
# grpo's built-in reward functions (train/rewards.py); others are 'module:function'
BUILTIN_REWARDS = ("exact_match", "format", "length")
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
    "dataset.answer_column": ("causal_lm", "classification", "regression", "seq2seq", "dpo",
                              "extractive_qa", "grpo", "multimodal_causal_lm"),
    "training.loss": ("causal_lm", "seq2seq", "dpo"),
    "training.packing": ("causal_lm",),
    "dataset.question_column": ("extractive_qa",),
    "dataset.context_column": ("extractive_qa",),
    "dataset.answer_start_column": ("extractive_qa",),
    "dataset.doc_stride": ("extractive_qa",),
    "prediction.max_answer_length": ("extractive_qa",),
    "dataset.format": ("causal_lm",),
    **{f"prediction.judge_{name}": ("causal_lm",) for name in (
        "base_url", "model", "api_key_env", "template", "concurrency", "max_requests",
        "retries", "timeout")},
    "dataset.rejected_answer_column": ("dpo",),
    "training.dpo_loss": ("dpo",),
    "training.beta": ("dpo", "grpo"),
    "training.label_smoothing": ("dpo",),
    "training.precompute_reference": ("dpo",),
    # seq2seq keeps a source's start (its task prefix) and QA cuts windows, so neither reads
    # truncation_side; their batches pad to the longest, on the right, so no padding_* either
    "tokenizer.truncation_side": ("causal_lm", "classification", "regression",
                                  "token_classification", "dpo", "grpo"),
    "tokenizer.padding_side": ("causal_lm", "classification", "regression", "dpo"),
    "tokenizer.padding_quantile": ("causal_lm", "classification", "regression", "dpo"),
    "tokenizer.max_target_length": ("seq2seq",),
    "dataset.task_prefix": ("seq2seq",),
    "dataset.source_language": ("seq2seq",),
    "dataset.target_language": ("seq2seq",),
    **{f"training.{name}": ("grpo",) for name in (
        "reward_functions", "reward_weights", "reward_pattern", "num_generations",
        "max_completion_length", "epsilon", "num_iterations", "sampling_temperature",
        "sampling_top_p")},
    **{path: ("multimodal_causal_lm",) for path in (
        "dataset.image_column", "tokenizer.image_size", "tokenizer.max_image_tokens",
        "tokenizer.image_resize", "architecture.freeze_vision_tower",
        "architecture.freeze_language_model", "adapter.lora_projector")},
}


def step_repeats(exp) -> int:
    """How many optimizer steps each step's batches are handed to: grpo's num_iterations
    (several steps on one batch of sampled completions), else 1. The worker and the estimate
    plan steps with it."""
    kind = exp.general.problem_type
    return exp.training.num_iterations if applies("training.num_iterations", kind) else 1


def metrics_for(problem_type: str) -> tuple[str, ...]:
    return METRICS.get(problem_type, METRICS["causal_lm"])


def default_metric(problem_type: str) -> str:
    return metrics_for(problem_type)[0]


def applies(path: str, problem_type: str) -> bool:
    """Whether the setting at `path` is read for this problem type."""
    return problem_type in ONLY_FOR.get(path, (problem_type,))
