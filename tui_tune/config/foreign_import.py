"""`preset import`: a TOML preset, or another tool's config (H2O LLM Studio cfg.yaml, axolotl
or LLaMA-Factory YAML) turned into a preset that extends the closest built-in.

Every key of the file is either mapped (the report says to what) or listed with its value and
why it has no equivalent: nothing is dropped silently. A mapped value tui-tune refuses (out of
its range, a problem type not supported yet) is taken out and listed with the refusal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tui_tune.config import foreign_axolotl, foreign_h2o, foreign_llamafactory
from tui_tune.config.errors import ConfigError, Problem
from tui_tune.config.experiment import set_path, validate_experiment
from tui_tune.config.foreign_values import UNSET, NoEquivalent, flatten_foreign
from tui_tune.config.presets import (
    PRESET_KEYS,
    _merged_from,
    check_name,
    deep_merge,
    find_preset,
    resolve,
    save_preset,
)
from tui_tune.config.toml_io import read_toml

TOOLS: tuple[ModuleType, ...] = (foreign_h2o, foreign_axolotl, foreign_llamafactory)


@dataclass(frozen=True)
class Mapped:
    key: str  # the other tool's dotted key
    value: Any
    setting: str  # the tui-tune setting path
    new_value: Any  # UNSET: left at its default, which means the same


@dataclass(frozen=True)
class Unmapped:
    key: str
    value: Any
    why: str

    def __str__(self) -> str:
        return f"{self.key} = {self.value!r}: {self.why}"


@dataclass
class Imported:
    tool: str  # "tui-tune" for a TOML preset
    base: str | None  # the built-in the preset extends
    settings: dict[str, Any]  # setting path -> value written
    mapped: list[Mapped] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    path: Path | None = None  # where the preset was written


def read_foreign(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([Problem("", "file not found.", str(path))]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError([Problem("", f"not valid YAML: {error}", str(path))]) from None
    if not isinstance(data, dict):
        raise ConfigError([Problem("", "holds no table of settings.", str(path))])
    return data


def detect(data: dict[str, Any], source: str) -> ModuleType:
    for tool in TOOLS:
        if tool.detect(data):
            return tool
    raise ConfigError([Problem("", "not a config tui-tune can import: expected a tui-tune "
                               "TOML preset, an H2O LLM Studio cfg.yaml (llm_backbone), an "
                               "axolotl YAML (base_model) or a LLaMA-Factory YAML "
                               "(model_name_or_path).", source)])


def convert(data: dict[str, Any], tool: ModuleType) -> Imported:
    """The other tool's settings as tui-tune setting paths, with what could not be mapped."""
    flat = flatten_foreign(data)
    combined = tool.combine(flat)
    out = Imported(tool.TOOL, None, dict(combined.settings))
    for key, value in flat.items():
        if key in combined.used:
            paths = combined.used[key] or [""]
            out.mapped += [Mapped(key, value, p, combined.settings.get(p, UNSET)) for p in paths]
        elif key in combined.refused:
            out.unmapped.append(Unmapped(key, value, combined.refused[key]))
        elif key in tool.TABLE:
            _apply_rule(key, value, tool.TABLE[key], out)
        else:
            out.unmapped.append(Unmapped(key, value, tool.NOTES.get(key, "no equivalent "
                                                                    "in tui-tune")))
    return out


def _apply_rule(key: str, value: Any, rule: Any, out: Imported) -> None:
    path, convert_value = (rule, None) if isinstance(rule, str) else rule
    try:
        new = UNSET if _is_null(value) and convert_value is None else (
            convert_value(value) if convert_value else value)
    except NoEquivalent as error:
        out.unmapped.append(Unmapped(key, value, str(error)))
        return
    except (TypeError, ValueError) as error:
        out.unmapped.append(Unmapped(key, value, f"cannot read this value ({error})"))
        return
    values = (new or {"": UNSET}) if path is None else {path: new}  # {}: implied by other settings
    for setting, setting_value in values.items():
        out.mapped.append(Mapped(key, value, setting, setting_value))
        if setting_value is not UNSET:
            out.settings[setting] = setting_value


def _is_null(value: Any) -> bool:
    """No value ("None" is how H2O writes one); "" is kept: an empty marker text is a value."""
    return value is None or (isinstance(value, str) and value.strip().lower() in ("none",
                                                                                   "null"))


def closest_builtin(settings: dict[str, Any]) -> str:
    """The shipped preset whose problem type and method are the imported one's."""
    kind = settings.get("general.problem_type", "causal_lm")
    if kind in ("classification", "regression"):
        return kind
    method = settings.get("adapter.method", "lora")
    return {"full": "full-finetune", "last_layer": "full-finetune", "dora": "dora",
            "qlora": "qlora-4bit", "qdora": "qlora-4bit", "qssf": "qlora-4bit"}.get(method,
                                                                                 "lora")


def preset_body(imported: Imported, name: str) -> dict[str, Any]:
    body: dict[str, Any] = {"extends": imported.base}
    settings = {"general.experiment_name": name, "dataset.train_file": "",
                **imported.settings}
    for path, value in settings.items():
        set_path(body, path, value)
    return body


def _refuse_bad_values(imported: Imported, name: str, base_data: dict[str, Any]) -> None:
    """Take out mapped values tui-tune refuses, listing them; what is left validates."""
    for _ in range(len(imported.settings) + 1):
        body = preset_body(imported, name)
        merged = deep_merge(base_data, body)
        try:
            validate_experiment({k: v for k, v in merged.items() if k not in PRESET_KEYS})
            return
        except ConfigError as error:
            ours = [p for p in error.problems if p.key in imported.settings]
            if not ours:
                raise
            for problem in ours:
                _take_out(imported, problem)
    raise AssertionError("unreachable: every round takes a setting out")


def _take_out(imported: Imported, problem: Problem) -> None:
    value = imported.settings.pop(problem.key, None)
    keys = [m for m in imported.mapped if m.setting == problem.key]
    imported.mapped = [m for m in imported.mapped if m.setting != problem.key]
    for mapped in keys:
        imported.unmapped.append(Unmapped(mapped.key, mapped.value,
                                          f"as {problem.key} = {value!r} tui-tune refuses it: "
                                          f"{problem.message}"))


def default_name(source: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", source.stem).strip("-.") or "imported"
    return name[:64]


def import_preset(path_text: str, name: str | None = None, folder: Path | None = None,
                  force: bool = False) -> Imported:
    """Write ./presets/NAME.toml from a TOML preset or another tool's config."""
    source = Path(path_text).expanduser()
    if not source.is_file():
        raise ConfigError([Problem("", "file not found.", str(source))])
    target = (folder or Path.cwd() / "presets") / f"{check_name(name or default_name(source))}" \
                                                  ".toml"
    if target.exists() and not force:
        raise ConfigError([Problem("", "already exists; pick another name (--name) or pass "
                                   "--force.", str(target))])
    if source.suffix.lower() == ".toml":
        resolve(str(source))
        imported = Imported("tui-tune", None, {}, path=save_preset(target, read_toml(source)))
        return imported
    tool = detect(read_foreign(source), str(source))
    imported = convert(read_foreign(source), tool)
    imported.base = closest_builtin(imported.settings)
    _refuse_bad_values(imported, target.stem, _merged_from(find_preset(imported.base).path))
    imported.path = save_preset(target, preset_body(imported, target.stem))
    return imported


def report_lines(imported: Imported) -> list[str]:
    """What was read as what, then every key that was not mapped, with its value and why."""
    if imported.tool == "tui-tune":
        return [f"wrote {imported.path}"]
    lines = [f"read {imported.tool} config; wrote {imported.path} (extends {imported.base})"]
    sources: dict[str, list[str]] = {}
    for item in imported.mapped:
        if item.new_value is not UNSET:
            sources.setdefault(item.setting, []).append(item.key)
    lines += [f"  {setting} = {imported.settings[setting]!r}  <- {', '.join(keys)}"
              for setting, keys in sources.items()]
    unset = sorted({m.key for m in imported.mapped} - {k for ks in sources.values() for k in ks})
    if unset:
        lines.append(f"left at tui-tune's default (same meaning): {', '.join(unset)}")
    if imported.unmapped:
        lines.append(f"not mapped ({len(imported.unmapped)}):")
        lines += [f"  {item}" for item in imported.unmapped]
    return lines
