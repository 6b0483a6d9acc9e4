"""Parse the editor's sweep text (`group.setting = v1, v2`) into the [sweep] table."""

from __future__ import annotations

from typing import Any

from tui_tune.config.overrides import parse_value


def parse_sweep(text: str) -> tuple[dict[str, list[Any]], list[str]]:
    """The sweep grid and messages for lines that are not `path = values`."""
    grid: dict[str, list[Any]] = {}
    errors = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path, sep, values = line.partition("=")
        path = path.strip()
        if not sep or not path:
            errors.append(f"line {number}: write it as group.setting = value, value")
            continue
        body = values.strip()
        if body.startswith("[") and body.endswith("]"):
            body = body[1:-1]
        grid[path] = [parse_value(v.strip()) for v in body.split(",") if v.strip()]
    return grid, errors
