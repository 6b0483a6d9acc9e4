"""Presets: TOML files holding an experiment, or only its differences from another (`extends`).

Search order: ./presets (local), the user config dir, then the presets shipped inside the
package (built-in, read-only). ./presets is always the user's own folder, in a checkout of
this repository too: the built-ins are never there, so "Save as" never writes one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_tune.config.errors import ConfigError, Problem
from tui_tune.config.experiment import (
    SCHEMA_VERSION,
    Experiment,
    experiment_dict,
    flatten,
    validate_experiment,
)
from tui_tune.config.overrides import apply_overrides
from tui_tune.config.rules import ignored_settings
from tui_tune.config.toml_io import dumps, read_toml, write_atomic

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# version -> function turning a preset dict of that version into the next version.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
PRESET_KEYS = ("schema_version", "extends")


def builtin_dir() -> Path:
    """The presets shipped with tui-tune: inside the package, in a checkout as installed."""
    return Path(__file__).resolve().parent.parent / "_builtin_presets"


def local_dir() -> Path:
    """./presets: the user's own presets where tui-tune is started (Save as writes here)."""
    return Path.cwd() / "presets"


def user_dir() -> Path:
    base = os.environ.get("TUI_TUNE_CONFIG_DIR")
    if base:
        return Path(base) / "presets"
    from platformdirs import user_config_dir
    return Path(user_config_dir("tui-tune")) / "presets"


def search_dirs() -> list[tuple[str, Path]]:
    dirs = [("local", local_dir()), ("user", user_dir()), ("built-in", builtin_dir())]
    seen, out = set(), []
    for source, path in dirs:  # one folder named twice (the config dir set to ./) counts once,
        key = path.resolve()  # as the first, editable source
        if key not in seen:
            seen.add(key)
            out.append((source, path))
    return out


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name) or ".." in name:
        raise ConfigError([Problem("name", f"'{name}' is not a valid preset name: use letters, "
                                   "digits, '.', '_' and '-', no path separators or '..'.")])
    return name


@dataclass(frozen=True)
class PresetInfo:
    name: str
    source: str
    path: Path

    @property
    def where(self) -> str:
        """Where it lives, as labels say it (`local ./presets/x.toml`, `built-in`)."""
        return source_label(self.source, self.path)


def source_label(source: str, path: Path) -> str:
    """`local ./presets/x.toml`, `user ~/.config/tui-tune/presets/x.toml`, `built-in` (inside
    the package, read-only: its path is no use to the user, and the editor's title at 80
    columns has no room for more)."""
    if source == "built-in":
        return "built-in"
    try:
        shown = f"./{path.resolve().relative_to(Path.cwd().resolve())}"
    except ValueError:
        home = Path.home()
        shown = f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)
    return f"{source} {shown}"


def list_presets() -> list[PresetInfo]:
    """Every preset file found, first the ones that win a name lookup."""
    out = []
    for source, folder in search_dirs():
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            out.append(PresetInfo(path.stem, source, path))
    return out


def find_preset(name: str, after: Path | None = None) -> PresetInfo:
    """The first preset called `name`; with `after`, the first one found past that file."""
    check_name(name)
    candidates = [p for p in list_presets() if p.name == name]
    if after is not None:
        paths = [c.path.resolve() for c in candidates]
        if after.resolve() in paths:
            candidates = candidates[paths.index(after.resolve()) + 1:]
    if not candidates:
        where = ", ".join(str(d) for _, d in search_dirs())
        raise ConfigError([Problem("", f"no preset named '{name}' (looked in {where}); "
                                   "`tui-tune preset list` shows what exists.")])
    return candidates[0]


def locate(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or os.sep in name_or_path:
        if not path.is_file():
            raise ConfigError([Problem("", "file not found.", name_or_path)])
        return path
    return find_preset(name_or_path).path


@dataclass
class ResolvedPreset:
    experiment: Experiment
    path: Path | None
    chain: list[Path] = field(default_factory=list)  # the file, then its bases
    origins: dict[str, str] = field(default_factory=dict)  # dotted key -> file or --set
    # settings that do not apply to the chosen method/choice, named with where they were set
    warnings: list[Problem] = field(default_factory=list)


def migrate(data: dict[str, Any], source: str) -> dict[str, Any]:
    version = data.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or version > SCHEMA_VERSION or version < 0:
        raise ConfigError([Problem("schema_version", f"{version!r} is not a version this "
                                   f"tui-tune reads (it reads up to {SCHEMA_VERSION}).", source)])
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise ConfigError([Problem("schema_version", f"no migration from version {version}.",
                                       source)])
        data = MIGRATIONS[version](data)
        version += 1
    return {**data, "schema_version": SCHEMA_VERSION}


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "sweep":
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _load_layers(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """The file and its bases, base-most first, each migrated, with extends cycles refused."""
    if path.resolve() in seen:
        cycle = " -> ".join(p.name for p in (*seen, path.resolve()))
        raise ConfigError([Problem("extends", f"cycle: {cycle}", str(path))])
    data = migrate(read_toml(path), str(path))
    base = data.pop("extends", None)
    if base is None:
        return [(path, data)]
    if not isinstance(base, str):
        raise ConfigError([Problem("extends", "must be a preset name.", str(path))])
    try:
        base_path = find_preset(base, after=path).path
    except ConfigError as error:
        raise error.with_source(str(path)) from None
    return [*_load_layers(base_path, (*seen, path.resolve())), (path, data)]


def _origin_of(key: str, origins: dict[str, str]) -> str:
    while key and key not in origins:
        key = key.rpartition(".")[0]
    return origins.get(key, "")


def resolve(name_or_path: str, overrides: list[str] | None = None) -> ResolvedPreset:
    """Load a preset by name or path, apply its bases and `--set` overrides, and validate."""
    path = locate(name_or_path)
    layers = _load_layers(path)
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for layer_path, data in layers:
        merged = deep_merge(merged, data)
        origins.update(dict.fromkeys(flatten(data), str(layer_path)))
    if overrides:
        set_layer = apply_overrides({}, overrides)
        merged = deep_merge(merged, set_layer)
        origins.update(dict.fromkeys(flatten(set_layer), "--set"))
    try:
        experiment = validate_experiment(merged)
    except ConfigError as error:
        raise ConfigError([Problem(p.key, p.message, p.source or _origin_of(p.key, origins)
                                   or str(path)) for p in error.problems]) from None
    warnings = [Problem(p.key, p.message, _origin_of(p.key, origins) or str(path))
                for p in ignored_settings(experiment)]
    return ResolvedPreset(experiment, path, [p for p, _ in reversed(layers)], origins, warnings)


def experiment_toml(exp: Experiment) -> str:
    return dumps(experiment_dict(exp))


def save_preset(path: Path, data: dict[str, Any]) -> Path:
    """Validate (through any `extends`) before writing, so a bad preset never reaches disk."""
    body = {"schema_version": SCHEMA_VERSION, **{k: v for k, v in data.items()
                                                 if k != "schema_version"}}
    base = body.get("extends")
    merged = body
    if base:
        merged = deep_merge(_merged_from(find_preset(base, after=path).path), body)
    validate_experiment({k: v for k, v in merged.items() if k not in PRESET_KEYS})
    write_atomic(path, dumps(body))
    return path


def _merged_from(path: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for _, data in _load_layers(path):
        merged = deep_merge(merged, data)
    return merged


def new_preset(name: str, base: str, overrides: list[str], folder: Path | None = None,
               force: bool = False) -> Path:
    target = (folder or local_dir()) / f"{check_name(name)}.toml"
    if target.exists() and not force:
        raise ConfigError([Problem("", "already exists; pick another name or pass --force.",
                                   str(target))])
    find_preset(base)
    return save_preset(target, {"extends": base, **apply_overrides({}, overrides)})


PATH_SETTINGS = ("general.backbone", "general.pretrained_weights", "dataset.train_file",
                 "dataset.validation_file", "dataset.test_file",
                 "environment.accelerate_config")


def confirmation_reasons(resolved: ResolvedPreset, workdir: Path | None = None) -> list[str]:
    """Why a preset from outside the usual preset folders should be confirmed before it runs.

    Such a file may come from anyone; running it must not silently execute remote code or
    read files outside the working tree.
    """
    trusted = {folder.resolve() for _, folder in search_dirs()}
    if resolved.path is None or resolved.path.resolve().parent in trusted:
        return []
    root = (workdir or Path.cwd()).resolve()
    exp, reasons = resolved.experiment, []
    if exp.general.trust_remote_code:
        reasons.append("general.trust_remote_code is on: the backbone's own Python code will run")
    flat = flatten(exp.model_dump())
    for key in PATH_SETTINGS:
        value = flat.get(key)
        if not value or (key == "general.backbone" and not _looks_like_path(value)):
            continue
        target = (root / Path(value).expanduser()).resolve()
        if not target.is_relative_to(root):
            reasons.append(f"{key} points outside the working tree: {value}")
    return reasons


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", ".", "~")) or Path(value).exists()


MAX_PASSES = 10  # rounds of "set the wrong settings aside, validate again" for every_problem


def every_problem(name_or_path: str) -> list[Problem]:
    """Every problem of a preset in one pass (for `preset validate`): validation stops at the
    first kind it finds (unknown keys, then values, then the cross-field rules), so the
    settings found wrong are set aside and the rest is validated again, until it passes."""
    path = locate(name_or_path)
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for layer_path, data in _load_layers(path):
        merged = deep_merge(merged, data)
        origins.update(dict.fromkeys(flatten(data), str(layer_path)))
    merged = {k: v for k, v in merged.items() if k not in PRESET_KEYS}
    found: list[Problem] = []
    for _ in range(MAX_PASSES):
        try:
            validate_experiment(merged)
            break
        except ConfigError as error:
            new = [p for p in error.problems if (p.key, p.message) not in
                   {(f.key, f.message) for f in found}]
            found += [Problem(p.key, p.message, p.source or _origin_of(p.key, origins)
                              or str(path)) for p in new]
            if not [p for p in new if _set_aside(merged, p.key)]:
                break
    return found


def _set_aside(data: dict[str, Any], dotted: str) -> bool:
    """Remove `group.name` (or a whole group) from the merged preset; False when not there."""
    group, _, name = dotted.partition(".")
    table = data.get(group)
    if not name:
        return data.pop(group, None) is not None if group else False
    if isinstance(table, dict) and name in table:
        del table[name]
        return True
    return False
