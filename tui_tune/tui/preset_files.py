"""File operations on presets for the Presets screen: duplicate, rename, delete, import.

Only local and user presets are changed; built-in ones are read-only.
"""

from __future__ import annotations

from pathlib import Path

from tui_tune.config import ConfigError, Problem
from tui_tune.config.foreign_import import Imported, import_preset
from tui_tune.config.presets import PresetInfo, check_name, local_dir, save_preset
from tui_tune.config.toml_io import read_toml

EDITABLE_SOURCES = ("local", "user")


def _local_target(name: str) -> Path:
    target = local_dir() / f"{check_name(name)}.toml"
    if target.exists():
        raise ConfigError([Problem("", "already exists; pick another name.", str(target))])
    return target


def duplicate(preset: PresetInfo, name: str) -> Path:
    """A local copy of any preset under a new name (its `extends`, if any, is kept)."""
    target = _local_target(name)
    data = read_toml(preset.path)
    data.setdefault("general", {})["experiment_name"] = name
    return save_preset(target, data)


def rename(preset: PresetInfo, name: str) -> Path:
    _require_editable(preset, "rename")
    target = preset.path.with_name(f"{check_name(name)}.toml")
    if target.exists():
        raise ConfigError([Problem("", "already exists; pick another name.", str(target))])
    preset.path.rename(target)
    return target


def delete(preset: PresetInfo) -> None:
    _require_editable(preset, "delete")
    preset.path.unlink()


def import_file(path_text: str) -> Imported:
    """A TOML preset, or an H2O LLM Studio / axolotl / LLaMA-Factory config, validated and
    written into ./presets under the file's name (see config/foreign_import.py)."""
    return import_preset(path_text)


def _require_editable(preset: PresetInfo, verb: str) -> None:
    if preset.source not in EDITABLE_SOURCES:
        raise ConfigError([Problem("", f"is a {preset.source} preset and cannot be {verb}d; "
                                   "duplicate it first.", str(preset.path))])
