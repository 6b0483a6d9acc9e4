"""Full fine-tuning and last_layer: the backbone's own weights learn (all of them, or the last
block with what follows it, the final norm and the task's head), minus adapter.freeze_layers.
Saved and loaded as plain model weights (model*.safetensors)."""

from __future__ import annotations

from pathlib import Path

import torch

from tui_tune.train.adapters.layers import (
    check_patterns,
    last_block_parameters,
    set_trainable,
)
from tui_tune.train.errors import UserError

SAVED_AS = None  # plain weights: what a folder holds when no family marks it


def apply(model, exp, task):
    a = exp.adapter
    if a.method == "last_layer":
        last = last_block_parameters(model)
        for name, param in model.named_parameters():
            param.requires_grad = (name in last
                                   or any(head in name for head in task.head_modules))
    check_patterns(model, a.freeze_layers, "adapter.freeze_layers")
    set_trainable(model, a.freeze_layers, False)
    task.freeze_parts(model, exp)
    if not any(p.requires_grad for p in model.parameters()):
        raise UserError("no parameter is left to train.", "adapter.freeze_layers")
    return model


def save(model, folder: Path) -> None:
    model.save_pretrained(folder, safe_serialization=True)


def load(model, folder: Path) -> None:
    from safetensors.torch import load_file

    names = saved_names(model)
    for shard in sorted(folder.glob("model*.safetensors")):
        state = load_file(shard)
        model.load_state_dict({names.get(k, k): v for k, v in state.items()}, strict=False)


def saved_names(model) -> dict[str, str]:
    """The name save_pretrained writes a weight under -> the model's own name, where they
    differ: transformers 5 saves some models under their legacy names (LLaVA's language model
    as language_model.model.*, its own being model.language_model.*), which a plain
    load_state_dict(strict=False) would skip without a word."""
    try:
        from transformers.core_model_loading import revert_weight_conversion
    except ImportError:  # transformers < 5: saved as named
        return {}
    own = model.state_dict()
    by_tensor = {id(t): name for name, t in own.items()}
    try:
        saved = revert_weight_conversion(model, own)
    except (AttributeError, TypeError, ValueError):  # not a transformers model
        return {}
    return {name: by_tensor[id(t)] for name, t in saved.items()
            if id(t) in by_tensor and by_tensor[id(t)] != name}


def merge_into_backbone(model, path: Path, seen: frozenset = frozenset()):
    """A .safetensors / .bin state dict, or a folder of them, replaces the backbone's weights."""
    from safetensors.torch import load_file

    files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
    if not path.exists() or not files:
        raise UserError("not found: give a .safetensors or .bin file, or a folder holding "
                        "model*.safetensors.", "general.pretrained_weights", str(path))
    for file in files:
        state = load_file(file) if file.suffix == ".safetensors" else torch.load(
            file, map_location="cpu", weights_only=True)
        names = saved_names(model)
        result = model.load_state_dict({names.get(k, k): v for k, v in state.items()},
                                       strict=False)
        if len(result.unexpected_keys) == len(state):
            raise UserError("none of its weights fit the backbone's layers.",
                            "general.pretrained_weights", str(file))
    return model
