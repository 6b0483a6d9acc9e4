"""axolotl YAML (its examples/*.yml) -> tui-tune settings. axolotl's keys are flat; a few
only mean something together (adapter + load_in_4bit, the datasets list, evals_per_epoch)."""

from __future__ import annotations

from typing import Any

from tui_tune.config.foreign_values import (
    UNSET,
    Combined,
    Rule,
    choice,
    flag_true,
    is_empty,
    negated,
    positive,
    text,
    text_list,
)

TOOL = "axolotl"

OPTIMIZERS = {"adamw_torch": "adamw", "adamw_torch_fused": "adamw", "adamw_hf": "adamw",
              "adamw": "adamw", "adam": "adam", "sgd": "sgd", "rmsprop": "rmsprop",
              "adadelta": "adadelta", "adamw_bnb_8bit": "adamw_8bit", "adamw_8bit": "adamw_8bit",
              "paged_adamw_8bit": "paged_adamw_8bit", "paged_adamw_32bit": "paged_adamw_32bit"}
SCHEDULES = {"cosine": "cosine", "linear": "linear", "constant": "constant",
             "constant_with_warmup": "constant"}


def _precision(value: Any) -> Any:
    return UNSET if value is False or is_empty(value) else value


TABLE: dict[str, Rule] = {
    "base_model": "general.backbone",
    "revision_of_model": ("general.revision", text),
    "trust_remote_code": "general.trust_remote_code",
    "sequence_len": "tokenizer.max_length",
    "sample_packing": "training.packing",
    "lora_r": "adapter.r",
    "lora_alpha": "adapter.alpha",
    "lora_dropout": "adapter.dropout",
    "lora_target_modules": ("adapter.target_modules", text_list),
    "lora_target_linear": ("adapter.target_modules", flag_true(["all-linear"])),
    "lora_modules_to_save": ("adapter.unfreeze_layers", text_list),
    "peft_use_rslora": "adapter.use_rslora",
    "micro_batch_size": "training.batch_size",
    "gradient_accumulation_steps": "training.grad_accumulation",
    "num_epochs": "training.epochs",
    "max_steps": ("training.max_steps", positive),
    "optimizer": ("training.optimizer", choice(OPTIMIZERS, "optimizer")),
    "lr_scheduler": ("training.schedule", choice(SCHEDULES, "schedule")),
    "learning_rate": "training.lr",
    "warmup_ratio": "training.warmup_ratio",
    "cosine_min_lr_ratio": "training.min_lr_ratio",
    "weight_decay": "training.weight_decay",
    "max_grad_norm": "training.grad_clip",
    "gradient_checkpointing": "architecture.gradient_checkpointing",
    "flash_attention": ("architecture.attn_implementation", flag_true("flash_attention_2")),
    "sdp_attention": ("architecture.attn_implementation", flag_true("sdpa")),
    "eager_attention": ("architecture.attn_implementation", flag_true("eager")),
    "torch_compile": ("architecture.compile", lambda v: v is True),
    "train_on_inputs": ("dataset.mask_prompt_labels", negated),
    "val_set_size": ("dataset.validation_size", positive),
    "seed": "environment.seed",
    "dataloader_num_workers": "environment.dataloader_workers",
    "logging_steps": "logging.log_every_steps",
    "save_steps": ("training.checkpoint_every_steps", positive),
    "save_total_limit": "training.keep_checkpoints",
    "eval_steps": ("training.eval_every_steps", positive),
    "neftune_noise_alpha": ("augmentation.neftune_noise_alpha", lambda v: v or UNSET),
    "wandb_name": ("logging.run_name", text),
    "chat_template": ("dataset.use_chat_template", lambda v: True),
}

NOTES = {
    "output_dir": "not part of a preset: runs go under --runs-dir or $TUI_TUNE_RUNS",
    "dataset_prepared_path": "tui-tune tokenizes when a run starts and keeps no cache",
    "special_tokens.pad_token": "special tokens come from the backbone's tokenizer",
    "resume_from_checkpoint": "resume a run with `tui-tune resume RUN`",
    "warmup_steps": "tui-tune warms up by warmup_ratio or warmup_epochs, not steps",
    "deepspeed": "set environment.distributed_backend = \"deepspeed\" and an accelerate config "
    "file (environment.accelerate_config) naming this DeepSpeed file",
    "strict": "presets are always strict: unknown settings are errors",
}


def detect(data: dict[str, Any]) -> bool:
    return "base_model" in data or ("micro_batch_size" in data and "datasets" in data)


def combine(flat: dict[str, Any]) -> Combined:
    out = Combined()
    _method(flat, out)
    _precision_keys(flat, out)
    _datasets(flat, out)
    if "evals_per_epoch" in flat:
        per_epoch = flat["evals_per_epoch"]
        if isinstance(per_epoch, (int, float)) and per_epoch > 0:
            out.set(["evals_per_epoch"], "training.eval_every_epochs", 1 / per_epoch)
        else:
            out.use("evals_per_epoch")
    if "wandb_project" in flat:
        if is_empty(flat["wandb_project"]):
            out.use("wandb_project")
        else:
            out.set(["wandb_project"], "logging.tracker", "wandb")
            out.set(["wandb_project"], "logging.project", str(flat["wandb_project"]))
    return out


def _method(flat: dict[str, Any], out: Combined) -> None:
    """adapter (lora/qlora/empty) + peft_use_dora + load_in_4bit/8bit -> method and dtype."""
    keys = [k for k in ("adapter", "peft_use_dora", "load_in_4bit", "load_in_8bit")
            if k in flat]
    if not keys:
        return
    adapter = "" if is_empty(flat.get("adapter")) else str(flat["adapter"]).lower()
    if adapter not in ("", "lora", "qlora"):
        out.refuse("adapter", f"no tui-tune adapter method for {flat['adapter']!r}")
        keys.remove("adapter")
        adapter = "lora"
    bits = 4 if flat.get("load_in_4bit") is True or adapter == "qlora" else (
        8 if flat.get("load_in_8bit") is True else 0)
    method = "full" if not adapter else ("dora" if flat.get("peft_use_dora") is True
                                         else "lora")
    if bits and method != "full":
        method = "q" + method
    out.set(keys, "adapter.method", method)
    if bits:
        out.set(keys, "architecture.backbone_dtype", f"int{bits}")


def _precision_keys(flat: dict[str, Any], out: Combined) -> None:
    """bf16 (true/auto) or fp16 -> mixed_precision; tf32 has no equivalent."""
    keys = [k for k in ("bf16", "fp16") if k in flat]
    if not keys:
        return
    if _precision(flat.get("bf16")) is not UNSET:
        out.set(keys, "environment.mixed_precision", "bf16")
    elif _precision(flat.get("fp16")) is not UNSET:
        out.set(keys, "environment.mixed_precision", "fp16")
    else:
        out.set(keys, "environment.mixed_precision", "no")


DATASET_FORMATS = {"alpaca": "alpaca", "sharegpt": "sharegpt", "chat_template": "messages"}


def _datasets(flat: dict[str, Any], out: Combined) -> None:
    """One training dataset -> train_file (and its layout); one test dataset -> a custom
    validation file."""
    for key, file_setting in (("datasets", "dataset.train_file"),
                              ("test_datasets", "dataset.validation_file")):
        if key not in flat:
            continue
        items = flat[key] if isinstance(flat[key], list) else []
        if len(items) != 1 or not isinstance(items[0], dict) or "path" not in items[0]:
            out.refuse(key, "tui-tune trains on one dataset file: merge them into one")
            continue
        out.set([key], file_setting, str(items[0]["path"]))
        # a hub dataset's split, subset (axolotl's name) and revision
        split_setting = "dataset.train_split" if key == "datasets" else "dataset.validation_split"
        for name, setting in (("split", split_setting), ("name", "dataset.subset"),
                              ("revision", "dataset.revision")):
            if items[0].get(name):
                out.set([key], setting, str(items[0][name]))
        if key == "test_datasets":
            out.set([key], "dataset.validation_strategy", "custom")
        kind = str(items[0].get("type", "")).split(".")[0]
        if kind in DATASET_FORMATS and key == "datasets":
            out.set([key], "dataset.format", DATASET_FORMATS[kind])
