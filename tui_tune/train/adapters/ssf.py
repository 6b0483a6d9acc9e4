"""SSF: a learnable per-channel scale and shift on the outputs of chosen layers.

peft has no SSF (Lian et al., 2022, "Scaling & Shifting Your Features"), so this small module
adds it. It wraps any layer whose output's last dimension is its `out_features`, which covers
torch Linear as well as bitsandbytes' 4-bit and 8-bit Linear (Q-SSF).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from tui_tune.train.adapters.layers import check_patterns, set_trainable
from tui_tune.train.errors import UserError

SSF_CONFIG = "ssf_config.json"
SSF_WEIGHTS = "ssf_weights.pt"
SAVED_AS = SSF_CONFIG


class SSFLayer(nn.Module):
    """`base(x) * scale + shift`, starting as the identity (scale 1, shift 0)."""

    def __init__(self, base: nn.Module, out_features: int):
        super().__init__()
        self.base = base
        device = next(base.parameters()).device
        self.ssf_scale = nn.Parameter(torch.ones(out_features, device=device))
        self.ssf_shift = nn.Parameter(torch.zeros(out_features, device=device))

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        out = self.base(x, *args, **kwargs)
        return out * self.ssf_scale.to(out.dtype) + self.ssf_shift.to(out.dtype)


HEADS = ("lm_head",)  # output layers "all-linear" leaves out (a task adds its own)


def in_head(name: str, heads: tuple[str, ...]) -> bool:
    """Whether a module or parameter name lies in one of the named head modules."""
    return any(part in heads for part in name.split("."))


def _is_target(name: str, module: nn.Module, targets: list[str],
               heads: tuple[str, ...]) -> bool:
    if not isinstance(module, nn.Linear) or isinstance(module, SSFLayer):
        return False
    if targets == ["all-linear"]:
        return not in_head(name, heads)
    leaf = name.rsplit(".", 1)[-1]
    return leaf in targets or any(name.endswith(t) for t in targets)


def apply_ssf(model: nn.Module, targets: list[str], heads: tuple[str, ...] = HEADS) -> list[str]:
    """Freeze the model and wrap every target layer; returns the wrapped layer names."""
    for param in model.parameters():
        param.requires_grad_(False)
    chosen = [(n, m) for n, m in model.named_modules() if _is_target(n, m, targets, heads)]
    if not chosen:
        raise ValueError(f"adapter.target_modules {targets} matched no linear layer of the model")
    for name, module in chosen:
        parent_name, _, leaf = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, leaf, SSFLayer(module, module.out_features))
    return [name for name, _ in chosen]


def ssf_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The scales and shifts, and every other weight that learns beside them (a task's new
    head, adapter.unfreeze_layers): all a frozen backbone needs to become the trained model."""
    learned = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu() for k, v in model.state_dict().items()
            if k.endswith(("ssf_scale", "ssf_shift")) or k in learned}


def save_ssf(model: nn.Module, layers: list[str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(ssf_state_dict(model), folder / SSF_WEIGHTS)
    (folder / SSF_CONFIG).write_text(json.dumps({"method": "ssf", "layers": layers}, indent=1))


def load_ssf(model: nn.Module, folder: Path) -> nn.Module:
    """Re-create the SSF layers on a freshly loaded backbone and load their weights."""
    layers = json.loads((folder / SSF_CONFIG).read_text())["layers"]
    apply_ssf(model, layers)
    missing = model.load_state_dict(torch.load(folder / SSF_WEIGHTS), strict=False)
    if missing.unexpected_keys:
        raise ValueError(f"SSF weights in {folder} do not fit this model: "
                         f"{missing.unexpected_keys[:3]}")
    return model


def apply(model, exp, task):
    """The backbone frozen, SSF on adapter.target_modules, adapter.unfreeze_layers and a
    task's new head trained."""
    a = exp.adapter
    heads = tuple(dict.fromkeys((*HEADS, *task.head_modules)))
    try:
        model.ssf_layers = apply_ssf(model, list(a.target_modules), heads)
    except ValueError as error:
        raise UserError(str(error), "adapter.target_modules") from error
    if task.head_is_new:  # drawn at random on load: it must learn, as peft's modules_to_save
        for name, param in model.named_parameters():
            if in_head(name, task.head_modules):
                param.requires_grad = True
    check_patterns(model, a.unfreeze_layers, "adapter.unfreeze_layers")
    set_trainable(model, a.unfreeze_layers, True)
    return model


def save(model, folder: Path) -> None:
    """The scales and shifts, which layers carry them, and the backbone's config."""
    save_ssf(model, model.ssf_layers, folder)
    model.config.save_pretrained(folder)


def load(model, folder: Path) -> None:
    model.load_state_dict(torch.load(folder / SSF_WEIGHTS), strict=False)


def merge_into_backbone(model, folder: Path, seen: frozenset = frozenset()):
    """A shift cannot fold into Llama's bias-free layers: refused, with what to do instead."""
    raise UserError("it is an SSF run's final/: its scales and shifts cannot replace the "
                    "backbone's weights. Start from that run's backbone with SSF again, or "
                    "from a LoRA/DoRA or full run's final/.", "general.pretrained_weights",
                    str(folder))
