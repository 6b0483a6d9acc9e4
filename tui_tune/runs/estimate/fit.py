"""Whether an estimate fits each visible GPU, and when it does not, what would make it fit:
the changes one at a time, largest saving first, and the largest batch size that fits."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tui_tune.config.rules import QUANTIZED_TWIN
from tui_tune.runs.estimate.memory import Settings, estimate
from tui_tune.runs.estimate.shape import ModelShape

MAX_BATCH = 65536  # training.batch_size's bound
LENGTH_STEP = 64


@dataclass(frozen=True)
class GpuFit:
    index: int
    name: str
    total_gib: float
    free_gib: float
    needed_gib: float

    @property
    def verdict(self) -> str:
        if self.needed_gib <= self.free_gib:
            return "fits"
        if self.needed_gib <= self.total_gib:
            return "fits when the GPU is free"
        return "does not fit"


@dataclass(frozen=True)
class Change:
    settings: dict[str, object]  # setting path -> value, as --set takes them
    total_gib: float
    saving_gib: float
    fits: bool
    combined: bool = False  # several of the changes above, together

    @property
    def text(self) -> str:
        return " ".join(f"{k}={_value(v)}" for k, v in self.settings.items())


def _value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def gpu_fits(needed_gib: float, readings) -> list[GpuFit]:
    """One line per GPU reading (monitor.gpu.GpuReading)."""
    return [GpuFit(r.index, r.name, r.mem_total_gib, max(r.mem_total_gib - r.mem_used_gib, 0),
                   needed_gib) for r in readings]


def total(shape: ModelShape, s: Settings) -> float:
    return estimate(shape, s).total_gib


def largest_batch(shape: ModelShape, s: Settings, budget_gib: float) -> int:
    """The largest batch_size whose step fits in budget_gib (0 when not even 1 fits)."""
    if total(shape, s.but(batch_size=1)) > budget_gib:
        return 0
    low, high = 1, MAX_BATCH
    while low < high:
        middle = (low + high + 1) // 2
        if total(shape, s.but(batch_size=middle)) <= budget_gib:
            low = middle
        else:
            high = middle - 1
    return low


def longest_length(shape: ModelShape, s: Settings, budget_gib: float) -> int:
    """The longest max_length (a multiple of 64, below the current one) that fits; 0: none."""
    low, high = 0, (s.max_length - 1) // LENGTH_STEP
    while low < high:
        middle = (low + high + 1) // 2
        if total(shape, s.but(max_length=middle * LENGTH_STEP)) <= budget_gib:
            low = middle
        else:
            high = middle - 1
    return low * LENGTH_STEP


def candidates(shape: ModelShape, s: Settings, budget_gib: float) -> list[tuple[dict, Settings]]:
    out: list[tuple[dict, Settings]] = []
    if not s.gradient_checkpointing:
        out.append(({"architecture.gradient_checkpointing": True},
                    s.but(gradient_checkpointing=True)))
    if s.backbone_dtype != "int4":
        twin = QUANTIZED_TWIN.get(s.method, s.method if s.method.startswith("q") else "qlora")
        change: dict[str, object] = {"architecture.backbone_dtype": "int4"}
        if twin != s.method:
            change["adapter.method"] = twin
        out.append((change, s.but(backbone_dtype="int4", method=twin)))
    if s.optimizer in ("adamw", "adam", "paged_adamw_32bit", "adadelta"):
        out.append(({"training.optimizer": "paged_adamw_8bit"},
                    s.but(optimizer="paged_adamw_8bit")))
    if s.batch_size > 1:
        batch = max(largest_batch(shape, s, budget_gib), 1)
        if batch < s.batch_size:
            accumulation = math.ceil(s.batch_size * s.grad_accumulation / batch)
            out.append(({"training.batch_size": batch,
                         "training.grad_accumulation": accumulation},
                        s.but(batch_size=batch, grad_accumulation=accumulation)))
    length = longest_length(shape, s, budget_gib)
    if LENGTH_STEP <= length < s.max_length:
        out.append(({"tokenizer.max_length": length}, s.but(max_length=length)))
    return out


def changes(shape: ModelShape, s: Settings, budget_gib: float) -> list[Change]:
    """Each change alone, largest saving first; then, when none fits alone, them together in
    that order until it fits (one more Change holding all of them)."""
    now = total(shape, s)
    found = []
    for settings, varied in candidates(shape, s, budget_gib):
        after = total(shape, varied)
        found.append(Change(settings, after, now - after, after <= budget_gib))
    found.sort(key=lambda c: -c.saving_gib)
    if found and not any(c.fits for c in found):
        combined, settings = s, {}
        for change in found:
            combined = _apply(combined, change.settings)
            settings.update(change.settings)
            if total(shape, combined) <= budget_gib:
                break
        batch = largest_batch(shape, combined, budget_gib)
        if 0 < batch < combined.batch_size:
            settings["training.batch_size"] = batch
            combined = combined.but(batch_size=batch)
        after = total(shape, combined)
        found.append(Change(settings, after, now - after, after <= budget_gib, combined=True))
    return found


SETTING_FIELDS = {"architecture.gradient_checkpointing": "gradient_checkpointing",
                  "architecture.backbone_dtype": "backbone_dtype",
                  "adapter.method": "method", "training.optimizer": "optimizer",
                  "training.batch_size": "batch_size",
                  "training.grad_accumulation": "grad_accumulation",
                  "tokenizer.max_length": "max_length"}


def _apply(s: Settings, settings: dict[str, object]) -> Settings:
    return s.but(**{SETTING_FIELDS[k]: v for k, v in settings.items()})
