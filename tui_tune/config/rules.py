"""Cross-field rules: combinations of settings that cannot work, each with what to do instead,
and settings that do not apply to the chosen method or choice and are ignored (warnings, so that
switching `adapter.method` or `training.schedule` with one override works).

Pure functions of the experiment; host-dependent checks (CUDA, files) live in preflight.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from tui_tune.config.errors import Problem
from tui_tune.config.model_groups import LORA_FAMILY, QUANTIZED_METHODS
from tui_tune.config.problem_types import (
    BUILTIN_REWARDS,
    ONLY_FOR,
    SUPPORTED_PROBLEM_TYPES,
    applies,
    metrics_for,
)

if TYPE_CHECKING:
    from tui_tune.config.experiment import Experiment

LORA_ONLY = ("r", "alpha", "dropout", "use_rslora", "init_weights", "lora_projector")
QUANTIZED_DTYPES = ("int4", "int8")
QUANTIZED_TWIN = {"lora": "qlora", "dora": "qdora", "ssf": "qssf"}


def _general_rules(exp: Experiment) -> list[Problem]:
    kind = exp.general.problem_type
    if kind not in SUPPORTED_PROBLEM_TYPES:
        return [Problem("general.problem_type", f"'{kind}' is not supported yet; use one of "
                        f"{', '.join(SUPPORTED_PROBLEM_TYPES)}.")]
    out = []
    if exp.prediction.metric not in metrics_for(kind):
        out.append(Problem("prediction.metric", f"'{exp.prediction.metric}' is not a {kind} "
                           f"metric; pick one of {', '.join(metrics_for(kind))}."))
    if exp.training.packing and not applies("training.packing", kind):
        out.append(Problem("training.packing", f"{kind} reads one example per row; packing "
                           "joins several into one: turn it off."))
    if exp.prediction.metric == "llm_judge" and not exp.prediction.judge_base_url.strip():
        out.append(Problem("prediction.judge_base_url", "metric llm_judge needs the judge's "
                           "OpenAI-compatible base URL, e.g. https://api.openai.com/v1."))
    return out + _label_rules(exp)


def _label_rules(exp: Experiment) -> list[Problem]:
    """Classes and class weights must agree with the label columns."""
    d, kind, weights = exp.dataset, exp.general.problem_type, exp.training.class_weights
    if kind != "classification":
        return []
    columns = d.label_columns or [d.answer_column]
    if len(columns) > 1 and d.num_classes not in (0, len(columns)):
        return [Problem("dataset.num_classes", f"{len(columns)} label columns make a "
                        f"multilabel problem of {len(columns)} labels, not {d.num_classes}: "
                        "set num_classes to 0 or to the number of columns.")]
    classes = len(columns) if len(columns) > 1 else d.num_classes
    if weights and classes and len(weights) != classes:
        return [Problem("training.class_weights", f"{len(weights)} weights for {classes} "
                        "classes: give one weight per class, in class order.")]
    return []


def _changed_from_default(group: BaseModel) -> set[str]:
    """Fields holding a non-default value: a full resolved TOML repeats defaults harmlessly."""
    defaults = type(group)()
    return {name for name in type(group).model_fields
            if getattr(group, name) != getattr(defaults, name)}


def _adapter_rules(exp: Experiment) -> list[Problem]:
    a, method, dtype = exp.adapter, exp.adapter.method, exp.architecture.backbone_dtype
    out = []
    if method == "last_layer" and a.unfreeze_layers:
        out.append(Problem("adapter.unfreeze_layers", "unfreezing needs an adapter method; "
                           "with 'last_layer' use full with freeze_layers to choose what trains."))
    if method in QUANTIZED_METHODS and dtype not in QUANTIZED_DTYPES:
        out.append(Problem("architecture.backbone_dtype", f"adapter method '{method}' trains on "
                           "a quantized backbone: set backbone_dtype to int4 (or int8)."))
    if dtype in QUANTIZED_DTYPES and method in QUANTIZED_TWIN:
        out.append(Problem("adapter.method", f"a {dtype} backbone with '{method}' is "
                           f"'{QUANTIZED_TWIN[method]}': set adapter.method = "
                           f"'{QUANTIZED_TWIN[method]}'."))
    for name in ("freeze_vision_tower", "freeze_language_model"):
        if getattr(exp.architecture, name) and method not in ("full", "last_layer") \
                and applies(f"architecture.{name}", exp.general.problem_type):
            out.append(Problem(f"architecture.{name}", f"applies without an adapter (full or "
                               f"last_layer); '{method}' trains only its adapters and keeps "
                               "the backbone frozen anyway: turn it off."))
    if dtype in QUANTIZED_DTYPES and method in ("full", "last_layer"):
        out.append(Problem("adapter.method", f"{dtype} weights cannot be trained directly: "
                           "pick qlora, qdora or qssf, or a float backbone_dtype."))
    return out


def _training_rules(exp: Experiment) -> list[Problem]:
    t, out = exp.training, []
    if t.warmup_epochs > 0 and t.warmup_ratio > 0:
        out.append(Problem("training.warmup_epochs",
                           "set either warmup_epochs or warmup_ratio, not both (set one to 0)."))
    if t.save_checkpoint == "best" and t.train_on_validation:
        out.append(Problem("training.save_checkpoint", "'best' is judged on validation data, "
                           "which train_on_validation also trains on; pick last."))
    if t.save_checkpoint == "disable" and t.checkpoint_every_steps:
        out.append(Problem("training.checkpoint_every_steps",
                           "checkpoints are disabled (save_checkpoint = 'disable')."))
    if len(t.betas) == 2 and not all(0.0 <= b < 1.0 for b in t.betas):
        out.append(Problem("training.betas", "each beta must be in [0, 1)."))
    for pattern, lr in t.differential_lr.items():
        if not 0 < lr <= 1:
            out.append(Problem(f"training.differential_lr.{pattern}", "must be in (0, 1]."))
    return out


def _data_rules(exp: Experiment) -> list[Problem]:
    d, out = exp.dataset, []
    if d.validation_strategy == "custom" and not d.validation_file:
        out.append(Problem("dataset.validation_file",
                           "validation_strategy 'custom' needs a validation_file."))
    if d.answer_column in d.prompt_columns:
        out.append(Problem("dataset.answer_column", "is also a prompt column."))
    if exp.prediction.min_new_tokens > exp.prediction.max_new_tokens:
        out.append(Problem("prediction.min_new_tokens", "is larger than max_new_tokens."))
    return out


def _environment_rules(exp: Experiment) -> list[Problem]:
    env, out = exp.environment, []
    listed = len(env.gpus) if isinstance(env.gpus, list) else (
        env.gpus if isinstance(env.gpus, int) else None)
    if isinstance(env.gpus, list) and len(set(env.gpus)) != len(env.gpus):
        out.append(Problem("environment.gpus", "lists a GPU twice."))
    if isinstance(env.gpus, list) and any(g < 0 for g in env.gpus):
        out.append(Problem("environment.gpus", "GPU ids start at 0."))
    if isinstance(env.gpus, int) and env.gpus < 1:
        out.append(Problem("environment.gpus", "a count must be at least 1 (or use all)."))
    if listed and env.num_processes and env.num_processes > listed:
        out.append(Problem("environment.num_processes",
                           f"{env.num_processes} processes but only {listed} GPU(s) selected."))
    procs = env.num_processes or listed
    if env.distributed_backend != "ddp" and procs == 1 and env.num_nodes == 1:
        out.append(Problem("environment.distributed_backend", f"{env.distributed_backend} "
                           "shards the model over processes; with one process use ddp."))
    if env.num_nodes > 1 and not env.main_process_ip:
        out.append(Problem("environment.main_process_ip", "a multi-node run needs the address "
                           "of node 0."))
    if env.node_rank >= env.num_nodes:
        out.append(Problem("environment.node_rank", f"must be below num_nodes ({env.num_nodes})."))
    return out


def _ignored(key: str, why: str) -> Problem:
    return Problem(key, f"ignored: {why}")


def _ignored_adapter_settings(exp: Experiment) -> list[Problem]:
    """The worker reads r/alpha/... only for LoRA, target_modules only for adapters,
    unfreeze_layers only beside an adapter and freeze_layers only with full/last_layer."""
    a, method = exp.adapter, exp.adapter.method
    changed, out = _changed_from_default(a), []
    if method not in LORA_FAMILY:
        out += [_ignored(f"adapter.{name}", f"applies to lora, dora, qlora and qdora, not to "
                         f"method '{method}'.") for name in LORA_ONLY if name in changed]
    if method in ("full", "last_layer") and "target_modules" in changed:
        out.append(_ignored("adapter.target_modules", f"method '{method}' has no adapter "
                            "modules."))
    if method == "full" and a.unfreeze_layers:
        out.append(_ignored("adapter.unfreeze_layers", "method 'full' trains every layer "
                            "already (freeze_layers chooses what stays frozen)."))
    if method not in ("full", "last_layer") and a.freeze_layers:
        out.append(_ignored("adapter.freeze_layers", f"with '{method}' the backbone is frozen "
                            "already; freeze_layers applies to full and last_layer."))
    return out


def _ignored_other_settings(exp: Experiment) -> list[Problem]:
    t, d, aug, out = exp.training, exp.dataset, exp.augmentation, []
    if t.min_lr_ratio > 0 and t.schedule == "constant":
        out.append(_ignored("training.min_lr_ratio", "the floor of a decaying schedule; "
                            "schedule 'constant' does not decay."))
    if d.validation_strategy == "auto" and d.validation_file:
        out.append(_ignored("dataset.validation_file", "read only with validation_strategy "
                            "'custom'; 'auto' holds out validation_size of the training rows."))
    for name in ("skip_parent_probability", "random_parent_probability"):
        if getattr(aug, name) > 0 and not d.parent_id_column:
            out.append(_ignored(f"augmentation.{name}", "applies to chained conversations "
                                "(dataset.parent_id_column), and none is set."))
    if d.limit_chained_samples and not d.parent_id_column:
        out.append(_ignored("dataset.limit_chained_samples", "applies to chained "
                            "conversations (dataset.parent_id_column), and none is set."))
    if d.only_last_answer and not (d.parent_id_column and d.mask_prompt_labels):
        out.append(_ignored("dataset.only_last_answer", "applies to chained conversations "
                            "(dataset.parent_id_column) with mask_prompt_labels on."))
    if t.label_smoothing > 0 and t.dpo_loss != "sigmoid":
        out.append(_ignored("training.label_smoothing", "conservative DPO smooths the sigmoid "
                            f"loss; dpo_loss is '{t.dpo_loss}'."))
    if d.add_eos_to_system and d.use_chat_template:
        out.append(_ignored("dataset.add_eos_to_system", "the chat template formats the "
                            "system message; this applies to the text markers."))
    return out


def _ignored_for_the_problem_type(exp: Experiment) -> list[Problem]:
    """Settings of another problem type that were changed (a preset switched to another type
    keeps them; the worker of this type does not read them)."""
    kind, out = exp.general.problem_type, []
    for path in ONLY_FOR:
        group, name = path.split(".")
        if name in _changed_from_default(getattr(exp, group)) and not applies(path, kind):
            out.append(_ignored(path, f"not read for problem type '{kind}'."))
    return out


def _reward_rules(exp: Experiment) -> list[Problem]:
    """grpo's reward functions are built-in names or 'module:function'; weights match them;
    dpo's beta divides (IPO) and scales the margin, so 0 is grpo's alone."""
    t, kind, out = exp.training, exp.general.problem_type, []
    if kind == "dpo" and t.beta == 0:
        out.append(Problem("training.beta", "dpo needs a beta above 0."))
    if kind != "grpo":
        return out
    if exp.environment.distributed_backend != "ddp":
        out.append(Problem("environment.distributed_backend", "grpo samples its completions "
                           "with the whole model on every rank, which fsdp and deepspeed shard: "
                           "use ddp (LoRA or QLoRA keep each GPU's copy small)."))
    if not t.reward_functions:
        out.append(Problem("training.reward_functions", "name at least one reward function."))
    for name in t.reward_functions:
        module, colon, function = name.partition(":")
        if name not in BUILTIN_REWARDS and not (colon and module.strip() and function.strip()):
            out.append(Problem("training.reward_functions", f"'{name}' is neither a built-in "
                               f"reward ({', '.join(BUILTIN_REWARDS)}) nor 'module:function'."))
    if t.reward_weights and len(t.reward_weights) != len(t.reward_functions):
        out.append(Problem("training.reward_weights", f"{len(t.reward_weights)} weights for "
                           f"{len(t.reward_functions)} reward functions: give one each, or none."))
    return out


RULES = (_general_rules, _adapter_rules, _training_rules, _data_rules, _environment_rules,
         _reward_rules)
IGNORED = (_ignored_adapter_settings, _ignored_other_settings, _ignored_for_the_problem_type)


def cross_field_problems(exp: Experiment) -> list[Problem]:
    """Combinations that cannot run: the experiment is refused."""
    return [p for rule in RULES for p in rule(exp)]


def ignored_settings(exp: Experiment) -> list[Problem]:
    """Settings that do not apply to the chosen method or choice: warnings, the run goes on
    without them (kept in the file, so switching back restores them)."""
    return [p for rule in IGNORED for p in rule(exp)]
