"""Reading and atomically writing TOML: a crash never leaves a half-written preset."""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from tui_tune.config.errors import ConfigError, Problem


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError([Problem("", "file not found.", str(path))]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([Problem("", f"not valid TOML: {error}", str(path))]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([Problem("", f"cannot read as UTF-8 TOML: {error}", str(path))]) from None


def dumps(data: dict[str, Any]) -> str:
    """Scalars first, then tables: the layout tomli-w gives, stable for the same data."""
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    return tomli_w.dumps({**scalars, **tables}, multiline_strings=False)


def write_atomic(path: Path, text: str) -> None:
    """Write to a temp file beside the target, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
