"""Setting-by-setting differences between two experiments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tui_tune.config.experiment import Experiment, flatten


@dataclass(frozen=True)
class Change:
    key: str
    old: Any  # None where the setting is unset on that side
    new: Any

    def __str__(self) -> str:
        return f"{self.key}: {_show(self.old)} -> {_show(self.new)}"


def _show(value: Any) -> str:
    return "(unset)" if value is None else repr(value)


def diff_experiments(old: Experiment, new: Experiment) -> list[Change]:
    a = flatten(old.model_dump(mode="json"))
    b = flatten(new.model_dump(mode="json"))
    return [Change(key, a.get(key), b.get(key)) for key in sorted(set(a) | set(b))
            if a.get(key) != b.get(key)]
