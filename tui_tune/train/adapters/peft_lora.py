"""The LoRA family through peft: LoRA, DoRA, rsLoRA and their quantized twins (QLoRA, QDoRA),
saved as peft adapters (adapter_config.json + adapter_model.safetensors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui_tune.train.adapters.layers import check_patterns
from tui_tune.train.errors import UserError

SAVED_AS = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
INIT_WEIGHTS: dict[str, Any] = {"default": True, "gaussian": "gaussian", "pissa": "pissa",
                                "olora": "olora"}


def apply(model, exp, task):
    """peft's task type makes the task's head train and save along with the adapter; all-linear
    leaves the head out (a classifier head is a linear layer that peft would otherwise give an
    adapter and then refuse to train whole)."""
    from peft import LoraConfig, get_peft_model

    a = exp.adapter
    targets = "all-linear" if a.target_modules == ["all-linear"] else list(a.target_modules)
    if targets != "all-linear":
        check_patterns(model, targets, "adapter.target_modules", suffix=True)
    check_patterns(model, a.unfreeze_layers, "adapter.unfreeze_layers", suffix=True)
    targets = task.lora_targets(model, exp, targets)
    config = LoraConfig(r=a.r, lora_alpha=a.alpha, lora_dropout=a.dropout,
                        target_modules=targets, use_dora=a.method in ("dora", "qdora"),
                        use_rslora=a.use_rslora, init_lora_weights=INIT_WEIGHTS[a.init_weights],
                        modules_to_save=list(a.unfreeze_layers) or None,
                        exclude_modules=list(task.head_modules) if targets == "all-linear"
                        else None,
                        task_type=task.peft_task_type)
    return get_peft_model(model, config)


def save(model, folder: Path) -> None:
    model.save_pretrained(folder, safe_serialization=True)


def load(model, folder: Path) -> None:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(folder / ADAPTER_WEIGHTS))


def merge_into_backbone(model, folder: Path, seen: frozenset = frozenset()):
    """peft's adapter loading, then merge_and_unload: the backbone with the adapter folded in.
    An adapter fits only what its own run started from, so that goes in first (a chain of
    continued runs; `seen` stops a cycle)."""
    from peft import PeftModel

    from tui_tune.train.adapters import load_pretrained_weights

    parent = weights_under(folder) if folder.resolve() not in seen else None
    if parent:
        model = load_pretrained_weights(model, str(parent), seen | {folder.resolve()})
    try:
        merged = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    except (ValueError, RuntimeError, KeyError) as error:  # another backbone's adapter
        raise UserError(f"its adapter does not fit this backbone ({error}).",
                        "general.pretrained_weights", str(folder)) from error
    for weight in merged.parameters():  # peft froze them for inference: back to as loaded
        if weight.is_floating_point():
            weight.requires_grad_(True)
    return merged


def weights_under(folder: Path) -> Path | None:
    """What the run that saved `folder` (its final/ or checkpoints/step-N) itself started
    from: its config.toml's general.pretrained_weights, resolved; None when nothing."""
    from tui_tune.config.toml_io import read_toml
    from tui_tune.rundir import RunDir

    run = RunDir.holding(folder)
    run_dir, config = run.root, run.config
    parent = read_toml(config).get("general", {}).get("pretrained_weights") \
        if config.is_file() else None
    if not parent:
        return None
    path = (run_dir / parent).resolve()
    if not path.exists():
        raise UserError(f"that adapter was trained on top of {parent} (its run's config.toml), "
                        "which no longer exists: without it the adapter does not fit.",
                        "general.pretrained_weights", str(folder))
    return path
