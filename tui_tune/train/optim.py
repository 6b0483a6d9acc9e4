"""Optimizer with parameter groups (differential lr, no decay on biases/norms) and lr schedules."""

from __future__ import annotations

import math
from functools import partial

import torch

from tui_tune.train.errors import UserError


def no_decay(name: str, param: torch.Tensor) -> bool:
    return param.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")


def parameter_groups(model, training) -> list[dict]:
    """One group per (learning rate, decays?) pair; the first matching pattern sets the lr."""
    groups: dict[tuple[float, bool], list] = {}
    names: dict[tuple[float, bool], list[str]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr = next((lr for pattern, lr in training.differential_lr.items() if pattern in name),
                  training.lr)
        key = (lr, not no_decay(name, param))
        groups.setdefault(key, []).append(param)
        names.setdefault(key, []).append(name)
    return [{"params": params, "lr": lr, "weight_decay": training.weight_decay if decays else 0.0,
             "names": names[(lr, decays)]} for (lr, decays), params in groups.items()]


def make_optimizer(model, training, on_cuda: bool):
    groups = parameter_groups(model, training)
    for group in groups:
        group.pop("names")
    name, betas = training.optimizer, tuple(training.betas)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=training.lr, betas=betas, eps=training.eps,
                                 fused=on_cuda or None)
    if name == "adam":
        return torch.optim.Adam(groups, lr=training.lr, betas=betas, eps=training.eps)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=training.lr, momentum=training.momentum)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=training.lr, momentum=training.momentum,
                                   eps=training.eps)
    if name == "adadelta":
        return torch.optim.Adadelta(groups, lr=training.lr, eps=training.eps)
    return _bnb_optimizer(name, groups, training)


def _bnb_optimizer(name: str, groups, training):
    try:
        import bitsandbytes as bnb
    except ImportError as error:
        raise UserError(f"'{name}' needs the bitsandbytes package; install it or pick adamw.",
                        "training.optimizer") from error
    cls = {"paged_adamw_32bit": bnb.optim.PagedAdamW32bit,
           "paged_adamw_8bit": bnb.optim.PagedAdamW8bit,
           "adamw_8bit": bnb.optim.AdamW8bit}[name]
    return cls(groups, lr=training.lr, betas=tuple(training.betas), eps=training.eps)


def lr_factor(step: int, warmup: int, total: int, schedule: str, floor: float) -> float:
    """Linear warmup to 1, then constant / linear / cosine decay down to the floor ratio."""
    if warmup > 0 and step < warmup:
        return (step + 1) / (warmup + 1)
    if schedule == "constant":
        return 1.0
    progress = min(max(step - warmup, 0) / max(total - warmup, 1), 1.0)
    decay = 1.0 - progress if schedule == "linear" else 0.5 * (1 + math.cos(math.pi * progress))
    return floor + (1.0 - floor) * decay


def warmup_steps(training, steps_total: int, steps_per_epoch: int) -> int:
    if training.warmup_epochs > 0:
        return round(training.warmup_epochs * steps_per_epoch)
    return round(training.warmup_ratio * steps_total)


def make_scheduler(optimizer, training, steps_total: int, steps_per_epoch: int):
    warmup = warmup_steps(training, steps_total, steps_per_epoch)
    factor = partial(lr_factor, warmup=warmup, total=steps_total, schedule=training.schedule,
                     floor=training.min_lr_ratio)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
