"""H2O LLM Studio experiment YAML (cfg.yaml, as exported or in its tests) -> tui-tune settings.

The table follows docs/h2o-settings-map.md (tests/test_h2o_settings_map.py): values are capitalised
there (AdamW, Cosine, Perplexity), "None" is a string, LoRA keys are present with lora: false.
"""

from __future__ import annotations

from typing import Any

from tui_tune.config.foreign_values import (
    UNSET,
    Combined,
    NoEquivalent,
    Rule,
    choice,
    escaped_text,
    is_empty,
    one_text,
    text,
    text_list,
)

TOOL = "H2O LLM Studio"

PROBLEM_TYPES = {
    "text_causal_language_modeling": "causal_lm",
    "text_causal_classification_modeling": "classification",
    "text_causal_regression_modeling": "regression",
    "text_sequence_to_sequence_modeling": "seq2seq",
    "text_dpo_modeling": "dpo",
}
LOSSES = {"TokenAveragedCrossEntropy": {"training.loss": "token_avg_ce"},
          "SampleAveragedCrossEntropy": {"training.loss": "sample_avg_ce"},
          "MSELoss": {"training.regression_loss": "mse"},
          "MAELoss": {"training.regression_loss": "mae"},
          # classification: the loss follows from num_classes, as in H2O
          "CrossEntropyLoss": {}, "BinaryCrossEntropyLoss": {},
          # dpo (H2O's CPOLoss and SimPOLoss have no equivalent)
          "DPOLoss": {"training.dpo_loss": "sigmoid"}, "DPOHingeLoss": {"training.dpo_loss": "hinge"},
          "DPOIPOLoss": {"training.dpo_loss": "ipo"}, "KTOPairLoss": {"training.dpo_loss": "kto_pair"}}
OPTIMIZERS = {"AdamW": "adamw", "Adam": "adam", "SGD": "sgd", "RMSprop": "rmsprop",
              "Adadelta": "adadelta", "AdamW8bit": "adamw_8bit"}


def _loss(value: Any) -> dict[str, Any]:
    if str(value) not in LOSSES:
        raise NoEquivalent(f"no tui-tune loss for {value!r}")
    return LOSSES[str(value)]


def _answer_columns(value: Any) -> dict[str, Any]:
    """One answer column, or several label columns (H2O's multilabel classification)."""
    if isinstance(value, list) and len(value) > 1:
        return {"dataset.label_columns": [str(v) for v in value]}
    return {"dataset.answer_column": one_text(value)}


def _sample_choice(value: Any) -> Any:
    if sorted(str(v).lower() for v in value or []) == ["train", "validation"]:
        return UNSET
    raise NoEquivalent("tui-tune samples training and validation rows alike (both)")


def _drop_last(value: Any) -> Any:
    if value is True:
        return UNSET
    raise NoEquivalent("tui-tune always drops the last partial batch")


def _gpus(value: Any) -> Any:
    ids = [str(v).strip() for v in (value if isinstance(value, list) else [value])]
    if not any(ids):
        raise NoEquivalent("no GPU selected: tui-tune trains on the CPU when none is visible")
    return [int(v) for v in ids if v]


def _stop_strings(value: Any) -> Any:
    return text_list(value)


TABLE: dict[str, Rule] = {
    "experiment_name": ("general.experiment_name", lambda v: str(v)[:80]),
    "llm_backbone": "general.backbone",
    "problem_type": ("general.problem_type", choice(PROBLEM_TYPES, "problem type")),
    "architecture.backbone_dtype": "architecture.backbone_dtype",
    "architecture.gradient_checkpointing": "architecture.gradient_checkpointing",
    "architecture.intermediate_dropout": "architecture.intermediate_dropout",
    "architecture.pretrained": "architecture.pretrained",
    "architecture.pretrained_weights": ("general.pretrained_weights", text),
    "augmentation.token_mask_probability": "augmentation.token_mask_probability",
    "augmentation.skip_parent_probability": "augmentation.skip_parent_probability",
    "augmentation.random_parent_probability": "augmentation.random_parent_probability",
    "augmentation.neftune_noise_alpha": "augmentation.neftune_noise_alpha",
    "dataset.train_dataframe": ("dataset.train_file", text),
    "dataset.validation_strategy": ("dataset.validation_strategy",
                                    choice({"automatic": "auto", "custom": "custom"})),
    "dataset.validation_dataframe": ("dataset.validation_file", text),
    "dataset.validation_size": "dataset.validation_size",
    "dataset.data_sample": "dataset.data_sample",
    "dataset.data_sample_choice": ("dataset.data_sample", _sample_choice),
    "dataset.system_column": ("dataset.system_column", text),
    "dataset.prompt_column": ("dataset.prompt_columns", text_list),
    "dataset.prompt_column_separator": ("dataset.prompt_column_separator", escaped_text),
    "dataset.answer_column": (None, _answer_columns),
    "dataset.num_classes": "dataset.num_classes",
    "dataset.rejected_answer_column": ("dataset.rejected_answer_column", text),
    "dataset.id_column": ("dataset.id_column", text),
    "dataset.parent_id_column": ("dataset.parent_id_column", text),
    "dataset.limit_chained_samples": "dataset.limit_chained_samples",
    "dataset.text_system_start": "dataset.text_system_start",
    "dataset.text_prompt_start": "dataset.text_prompt_start",
    "dataset.text_answer_separator": "dataset.text_answer_separator",
    "dataset.add_eos_token_to_system": "dataset.add_eos_to_system",
    "dataset.add_eos_token_to_prompt": "dataset.add_eos_to_prompt",
    "dataset.add_eos_token_to_answer": "dataset.add_eos_to_answer",
    "dataset.add_prompt_answer_tokens": "tokenizer.add_prompt_answer_tokens",
    "dataset.mask_prompt_labels": "dataset.mask_prompt_labels",
    "dataset.only_last_answer": "dataset.only_last_answer",
    "tokenizer.max_length": "tokenizer.max_length",
    "tokenizer.add_prompt_answer_tokens": "tokenizer.add_prompt_answer_tokens",
    "tokenizer.padding_quantile": "tokenizer.padding_quantile",
    "training.loss_function": (None, _loss),
    "training.optimizer": ("training.optimizer", choice(OPTIMIZERS, "optimizer")),
    "training.learning_rate": "training.lr",
    "training.beta": "training.beta",
    "training.batch_size": "training.batch_size",
    "training.drop_last_batch": ("training.batch_size", _drop_last),
    "training.epochs": "training.epochs",
    "training.schedule": ("training.schedule", choice(
        {"Cosine": "cosine", "Linear": "linear", "Constant": "constant"}, "schedule")),
    "training.min_learning_rate_ratio": "training.min_lr_ratio",
    "training.weight_decay": "training.weight_decay",
    "training.gradient_clip": "training.grad_clip",
    "training.grad_accumulation": "training.grad_accumulation",
    "training.freeze_layers": ("adapter.freeze_layers", text_list),
    "training.attention_implementation": ("architecture.attn_implementation", choice(
        {"auto": UNSET, "eager": "eager", "sdpa": "sdpa",
         "flash_attention_2": "flash_attention_2"}, "attention implementation")),
    "training.save_checkpoint": ("training.save_checkpoint", choice(
        {"last": "last", "best": "best", "each_evaluation_epoch": "each_evaluation",
         "disable": "disable"}, "checkpoint choice")),
    "training.evaluation_epochs": "training.eval_every_epochs",
    "training.evaluate_before_training": "training.evaluate_before_training",
    "training.train_validation_data": "training.train_on_validation",
    "prediction.metric": ("prediction.metric", choice(
        {"Perplexity": "perplexity", "BLEU": "bleu", "Accuracy": "accuracy", "AUC": "auc",
         "LogLoss": "logloss", "MSE": "mse", "MAE": "mae", "F1": "f1", "None": UNSET},
        "metric")),
    "prediction.max_length_inference": "prediction.max_new_tokens",
    "prediction.min_length_inference": "prediction.min_new_tokens",
    "prediction.batch_size_inference": "prediction.batch_size",
    "prediction.do_sample": "prediction.do_sample",
    "prediction.num_beams": "prediction.num_beams",
    "prediction.repetition_penalty": "prediction.repetition_penalty",
    "prediction.temperature": "prediction.temperature",
    "prediction.top_k": "prediction.top_k",
    "prediction.top_p": "prediction.top_p",
    "prediction.stop_tokens": ("prediction.stop_strings", _stop_strings),
    "prediction.max_time": "prediction.max_time",
    "environment.gpus": ("environment.gpus", _gpus),
    "environment.compile_model": "architecture.compile",
    "environment.find_unused_parameters": "environment.find_unused_parameters",
    "environment.trust_remote_code": "general.trust_remote_code",
    "environment.huggingface_branch": ("general.revision", text),
    "environment.number_of_workers": "environment.dataloader_workers",
    "environment.seed": "environment.seed",
    "logging.log_all_ranks": "environment.log_all_ranks",
}

# keys known to have no equivalent, with why (the others are listed as "no equivalent")
NOTES = {
    "output_directory": "not part of a preset: runs go under --runs-dir or $TUI_TUNE_RUNS",
    "environment.deepspeed_method": "the ZeRO stage is written in your accelerate config "
    "file (environment.accelerate_config)",
    "tokenizer.tokenizer_kwargs": "tokenizer arguments are not a setting",
    "prediction.metric_gpt_model": "the judge is prediction.metric = llm_judge with "
    "prediction.judge_model and judge_template (an OpenAI-compatible API); set them by hand",
    "prediction.metric_gpt_template": "H2O's judge templates are not tui-tune's: pick "
    "prediction.judge_template (mt-bench, or your own file) with metric llm_judge",
    "prediction.num_history": "it is for H2O's chat window",
}
for _name in ("allgather_bucket_size", "reduce_bucket_size", "stage3_param_persistence_threshold",
              "stage3_prefetch_bucket_size"):
    NOTES[f"environment.deepspeed_{_name}"] = ("bucket sizes are written in your accelerate "
                                               "config file (environment.accelerate_config)")


def detect(data: dict[str, Any]) -> bool:
    kind = str(data.get("problem_type", ""))
    return "llm_backbone" in data or (kind.startswith("text_") and "training" in data)


def combine(flat: dict[str, Any]) -> Combined:
    """Keys that mean something only together."""
    out = Combined()
    _method(flat, out)
    _mixed_precision(flat, out)
    _warmup(flat, out)
    _differential_lr(flat, out)
    _logger(flat, out)
    if "environment.use_deepspeed" in flat:
        if flat["environment.use_deepspeed"] is True:
            out.set(["environment.use_deepspeed"], "environment.distributed_backend",
                    "deepspeed")
        else:
            out.use("environment.use_deepspeed")
    return out


LORA_KEYS = {"training.lora_r": "adapter.r", "training.lora_alpha": "adapter.alpha",
             "training.lora_dropout": "adapter.dropout", "training.use_rslora": "adapter.use_rslora",
             "training.lora_target_modules": "adapter.target_modules",
             "training.lora_unfreeze_layers": "adapter.unfreeze_layers"}


def _method(flat: dict[str, Any], out: Combined) -> None:
    """lora + use_dora + backbone_dtype -> adapter.method (int4 + lora is qlora); the LoRA keys
    H2O always writes are read only when LoRA is on."""
    if "training.lora" not in flat:
        return
    lora, dora = flat["training.lora"] is True, flat.get("training.use_dora") is True
    quantized = str(flat.get("architecture.backbone_dtype", "")) in ("int4", "int8")
    method = ("dora" if dora else "lora") if lora else "full"
    if quantized and lora:
        method = "q" + method
    keys = ["training.lora"] + (["training.use_dora"] if "training.use_dora" in flat else [])
    out.set(keys, "adapter.method", method)
    for key, path in LORA_KEYS.items():
        if key not in flat:
            continue
        value = flat[key]
        if not lora:
            out.refuse(key, "LoRA is off (training.lora: false): every weight is trained")
        elif path in ("adapter.target_modules", "adapter.unfreeze_layers"):
            items = text_list(value) if not is_empty(value) else UNSET
            out.set([key], path, items) if items is not UNSET else out.use(key)
        else:
            out.set([key], path, value)


def _mixed_precision(flat: dict[str, Any], out: Combined) -> None:
    """mixed_precision (on/off) + mixed_precision_dtype -> one setting; without a dtype
    (older files) H2O's autocast ran in float16."""
    if "environment.mixed_precision" not in flat:
        return
    keys = ["environment.mixed_precision"]
    dtype = str(flat.get("environment.mixed_precision_dtype", "float16"))
    if "environment.mixed_precision_dtype" in flat:
        keys.append("environment.mixed_precision_dtype")
    value = {"bfloat16": "bf16", "float16": "fp16"}.get(dtype)
    if flat["environment.mixed_precision"] is not True:
        value = "no"
    if value is None:
        for key in keys:
            out.refuse(key, f"no tui-tune mixed precision for {dtype!r}")
        return
    out.set(keys, "environment.mixed_precision", value)


def _warmup(flat: dict[str, Any], out: Combined) -> None:
    """H2O warms up by epochs only: its 0 is no warmup, where tui-tune's default is 3 %."""
    if "training.warmup_epochs" in flat:
        out.set(["training.warmup_epochs"], "training.warmup_epochs",
                flat["training.warmup_epochs"])
        out.set(["training.warmup_epochs"], "training.warmup_ratio", 0.0)


HEAD_NAMES = {"classification_head": "score"}  # H2O's layer name -> tui-tune's parameter name


def _differential_lr(flat: dict[str, Any], out: Combined) -> None:
    layers_key, lr_key = "training.differential_learning_rate_layers", \
        "training.differential_learning_rate"
    if layers_key not in flat:
        if lr_key in flat:
            out.refuse(lr_key, "no layers are named (differential_learning_rate_layers)")
        return
    layers = text_list(flat[layers_key]) if not is_empty(flat[layers_key]) else []
    if not layers:
        out.use(layers_key)
        if lr_key in flat:
            out.refuse(lr_key, "has no effect: differential_learning_rate_layers is empty")
        return
    missing = [name for name in layers if name not in HEAD_NAMES]
    if missing or lr_key not in flat:
        out.refuse(layers_key, f"no tui-tune parameter name for {', '.join(missing)}"
                   if missing else "no differential_learning_rate given")
        if lr_key in flat:
            out.refuse(lr_key, "its layers have no tui-tune equivalent")
        return
    out.set([layers_key, lr_key], "training.differential_lr",
            {HEAD_NAMES[name]: flat[lr_key] for name in layers})


def _logger(flat: dict[str, Any], out: Combined) -> None:
    if "logging.logger" not in flat:
        return
    name = str(flat["logging.logger"]).strip().lower()
    tracker = {"none": "none", "neptune": "neptune", "w&b": "wandb", "wandb": "wandb",
               "mlflow": "mlflow", "tensorboard": "tensorboard"}.get(name)
    if tracker is None:
        out.refuse("logging.logger", f"no tui-tune tracker for {flat['logging.logger']!r}")
    else:
        out.set(["logging.logger"], "logging.tracker", tracker)
    for key, owner in (("logging.neptune_project", "neptune"),
                       ("logging.wandb_project", "wandb")):
        if key not in flat:
            continue
        if tracker == owner and not is_empty(flat[key]):
            out.set([key], "logging.project", str(flat[key]))
        elif is_empty(flat[key]):
            out.use(key)
        else:
            out.refuse(key, f"has no effect: the logger is {flat['logging.logger']!r}")
