"""Dotted `--set group.key=value` overrides with TOML-typed values."""

from __future__ import annotations

import tomllib
from typing import Any

from tui_tune.config.errors import ConfigError, Problem
from tui_tune.config.experiment import set_path


def parse_value(text: str) -> Any:
    """TOML syntax when it parses (2e-4, true, [1, 2], "x"); otherwise the bare text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_override(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError([Problem("--set", f"'{item}' is not KEY=VALUE "
                                   "(for example training.lr=2e-4).")])
    return key, parse_value(value.strip())


def apply_overrides(data: dict[str, Any], items: list[str]) -> dict[str, Any]:
    for item in items:
        key, value = parse_override(item)
        set_path(data, key, value)
    return data


def overrides_as_dict(items: list[str]) -> dict[str, Any]:
    return apply_overrides({}, items)
