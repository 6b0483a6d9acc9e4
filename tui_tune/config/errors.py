"""Turn every way a preset can be wrong into a list of problems a person can act on."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class Problem:
    key: str  # dotted setting path, or "" for the file as a whole
    message: str
    source: str = ""  # the file the value came from, when known

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class ConfigError(Exception):
    """One or more problems with an experiment or preset; str() lists them one per line."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    def with_source(self, source: str) -> ConfigError:
        return ConfigError([p if p.source else Problem(p.key, p.message, source)
                            for p in self.problems])


class RuleViolations(ValueError):
    """Raised inside a model validator so the list of problems survives pydantic's wrapping."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.key}: {p.message}" for p in problems))


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown_key_problems(data: dict[str, Any], model: type[BaseModel], prefix: str = "",
                         all_leaves: dict[str, str] | None = None) -> list[Problem]:
    """Unknown keys with a suggestion from the same table, or from anywhere in the schema."""
    problems = []
    fields = model.model_fields
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in fields:
            hint = did_you_mean(key, list(fields))
            exact = (all_leaves or {}).get(key)  # a name the schema or another tool uses
            if exact and f"'{exact.rsplit('.', 1)[-1]}'" not in hint:
                hint = f" Did you mean '{exact}'?"  # over a look-alike (stop_tokens: top_k)
            problems.append(Problem(path, f"unknown setting.{hint}"))
            continue
        sub = fields[key].annotation
        if isinstance(value, dict) and isinstance(sub, type) and issubclass(sub, BaseModel):
            problems.extend(unknown_key_problems(value, sub, f"{path}.", all_leaves))
    return problems


def problems_from_validation(error: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for item in error.errors():
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, RuleViolations):
            problems.extend(cause.problems)
            continue
        path = ".".join(str(p) for p in item["loc"] if not str(p).startswith("function-"))
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown setting."
        elif "input" in item and not isinstance(item["input"], (dict, list)):
            message = f"{message} (got {item['input']!r})"
        problems.append(Problem(path, message))
    return problems
