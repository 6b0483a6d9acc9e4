"""LLaMA-Factory YAML (its examples/train_lora/*.yaml) -> tui-tune settings. Its keys are flat
and mostly Hugging Face TrainingArguments; a few only mean something together (finetuning_type +
quantization_bit + use_dora, eval_strategy + eval_steps, bf16/fp16)."""

from __future__ import annotations

from typing import Any

from tui_tune.config.foreign_values import (
    UNSET,
    Combined,
    NoEquivalent,
    Rule,
    choice,
    flag_true,
    negated,
    positive,
    text,
    text_list,
)

TOOL = "LLaMA-Factory"

OPTIMIZERS = {"adamw_torch": "adamw", "adamw_torch_fused": "adamw", "adamw_hf": "adamw",
              "sgd": "sgd", "adamw_bnb_8bit": "adamw_8bit", "adamw_8bit": "adamw_8bit",
              "paged_adamw_8bit": "paged_adamw_8bit", "paged_adamw_32bit": "paged_adamw_32bit"}
SCHEDULES = {"cosine": "cosine", "linear": "linear", "constant": "constant",
             "constant_with_warmup": "constant"}


def _stage(value: Any) -> Any:
    if value == "sft":
        return "causal_lm"
    if value == "dpo":
        return "dpo"
    raise NoEquivalent(f"no tui-tune problem type for stage {value!r} (sft, dpo)")


def _targets(value: Any) -> Any:
    items = text_list(value)
    return ["all-linear"] if items in (["all"], UNSET) else items


def _validation_size(value: Any) -> Any:
    if isinstance(value, int) and value >= 1:
        raise NoEquivalent("a number of rows; tui-tune holds out a fraction (validation_size)")
    return positive(value)


def _template(value: Any) -> Any:
    """A named chat template: the closest is the backbone tokenizer's own template."""
    return str(value) not in ("empty", "default")


TABLE: dict[str, Rule] = {
    "model_name_or_path": "general.backbone",
    "model_revision": ("general.revision", text),
    "trust_remote_code": "general.trust_remote_code",
    "stage": ("general.problem_type", _stage),
    "lora_rank": "adapter.r",
    "lora_alpha": "adapter.alpha",
    "lora_dropout": "adapter.dropout",
    "lora_target": ("adapter.target_modules", _targets),
    "additional_target": ("adapter.unfreeze_layers", text_list),
    "use_rslora": "adapter.use_rslora",
    "pissa_init": ("adapter.init_weights", flag_true("pissa")),
    "template": ("dataset.use_chat_template", _template),
    "cutoff_len": "tokenizer.max_length",
    "val_size": ("dataset.validation_size", _validation_size),
    "train_on_prompt": ("dataset.mask_prompt_labels", negated),
    "mask_history": "dataset.only_last_answer",
    "packing": "training.packing",
    "per_device_train_batch_size": "training.batch_size",
    "per_device_eval_batch_size": "prediction.batch_size",
    "gradient_accumulation_steps": "training.grad_accumulation",
    "learning_rate": "training.lr",
    "num_train_epochs": "training.epochs",
    "max_steps": ("training.max_steps", positive),
    "lr_scheduler_type": ("training.schedule", choice(SCHEDULES, "schedule")),
    "warmup_ratio": "training.warmup_ratio",
    "weight_decay": "training.weight_decay",
    "max_grad_norm": "training.grad_clip",
    "optim": ("training.optimizer", choice(OPTIMIZERS, "optimizer")),
    "disable_gradient_checkpointing": ("architecture.gradient_checkpointing", negated),
    "flash_attn": ("architecture.attn_implementation", choice(
        {"fa2": "flash_attention_2", "sdpa": "sdpa", "disabled": "eager", "auto": UNSET},
        "attention implementation")),
    "neftune_noise_alpha": "augmentation.neftune_noise_alpha",
    "seed": "environment.seed",
    "dataloader_num_workers": "environment.dataloader_workers",
    "logging_steps": "logging.log_every_steps",
    "save_steps": ("training.checkpoint_every_steps", positive),
    "save_total_limit": "training.keep_checkpoints",
    "report_to": ("logging.tracker", choice(
        {"none": "none", "wandb": "wandb", "tensorboard": "tensorboard", "mlflow": "mlflow",
         "neptune": "neptune"}, "tracker")),
    "run_name": ("logging.run_name", text),
}

NOTES = {
    "dataset": "names in LLaMA-Factory's dataset_info.json: set dataset.train_file to the "
    "file itself",
    "eval_dataset": "names in LLaMA-Factory's dataset_info.json: set dataset.validation_file "
    "to the file itself",
    "output_dir": "not part of a preset: runs go under --runs-dir or $TUI_TUNE_RUNS",
    "do_train": "tui-tune trains when a run starts",
    "max_samples": "a number of rows; tui-tune samples a fraction (dataset.data_sample)",
    "warmup_steps": "tui-tune warms up by warmup_ratio or warmup_epochs, not steps",
    "deepspeed": "set environment.distributed_backend = \"deepspeed\" and an accelerate config "
    "file (environment.accelerate_config) naming this DeepSpeed file",
    "overwrite_output_dir": "every run gets a new directory",
    "plot_loss": "the monitor charts the loss of every run",
    "resume_from_checkpoint": "resume a run with `tui-tune resume RUN`",
}


def detect(data: dict[str, Any]) -> bool:
    return "model_name_or_path" in data and any(
        k in data for k in ("stage", "finetuning_type", "cutoff_len", "template", "dataset"))


def combine(flat: dict[str, Any]) -> Combined:
    out = Combined()
    _method(flat, out)
    for keys, value in ((["bf16"], "bf16"), (["fp16"], "fp16")):
        if flat.get(keys[0]) is True:
            out.set(keys, "environment.mixed_precision", value)
            break
    for key in ("bf16", "fp16"):
        if key in flat and key not in out.used:
            out.use(key)
    _evaluation(flat, out)
    if "lora_rank" in flat and "lora_alpha" not in flat:  # LLaMA-Factory's alpha: twice r
        out.set(["lora_rank"], "adapter.r", flat["lora_rank"])
        out.set(["lora_rank"], "adapter.alpha", 2 * flat["lora_rank"])
    return out


def _method(flat: dict[str, Any], out: Combined) -> None:
    """finetuning_type (lora/full/freeze) + use_dora + quantization_bit -> method and dtype."""
    keys = [k for k in ("finetuning_type", "use_dora", "quantization_bit") if k in flat]
    if not keys:
        return
    kind = str(flat.get("finetuning_type", "lora"))
    if kind not in ("lora", "full"):
        out.refuse("finetuning_type", f"no tui-tune adapter method for {kind!r} (lora, full)")
        return
    bits = flat.get("quantization_bit")
    method = "full" if kind == "full" else ("dora" if flat.get("use_dora") is True else "lora")
    if bits in (4, 8) and method != "full":
        method = "q" + method
        out.set(keys, "architecture.backbone_dtype", f"int{bits}")
    elif bits not in (None, 4, 8):
        out.refuse("quantization_bit", f"no {bits}-bit loading in tui-tune (4 or 8)")
        keys.remove("quantization_bit")
    out.set(keys, "adapter.method", method)


def _evaluation(flat: dict[str, Any], out: Combined) -> None:
    """eval_strategy steps + eval_steps, or epoch; "no" leaves evaluation at its default."""
    strategy = str(flat.get("eval_strategy", flat.get("evaluation_strategy", "")))
    keys = [k for k in ("eval_strategy", "evaluation_strategy", "eval_steps") if k in flat]
    if not keys:
        return
    if strategy == "steps" and isinstance(flat.get("eval_steps"), int):
        out.set(keys, "training.eval_every_steps", flat["eval_steps"])
    elif strategy == "epoch":
        out.set(keys, "training.eval_every_epochs", 1.0)
    else:
        for key in keys:
            out.refuse(key, "tui-tune evaluates every eval_every_epochs or eval_every_steps; "
                       "it cannot turn evaluation off")
