"""The experiment being edited: values as typed, their problems, and saving them as a preset.

Kept apart from the screen so the rules (what is saved, what a problem is) are plain Python.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_tune.config import (
    ConfigError,
    Experiment,
    experiment_dict,
    ignored_settings,
    validate_experiment,
)
from tui_tune.config.diff import Change, diff_experiments
from tui_tune.config.presets import (
    PRESET_KEYS,
    check_name,
    find_preset,
    local_dir,
    resolve,
    save_preset,
    source_label,
)
from tui_tune.config.toml_io import read_toml


@dataclass
class EditorState:
    data: dict[str, Any]  # group -> field -> value, as typed (None = unset)
    extends: str | None  # the preset the saved file builds on
    target: Path | None  # where save writes; None: save asks for a name
    label: str  # what the editor shows as the source
    base: Experiment | None = None  # what "diff" compares with
    dirty: bool = False
    problems: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)  # ignored settings: save still works
    # the values as last opened or saved: `dirty` is whether they differ now (a change typed
    # and taken back is none); None for changes recovered from a hang-up, saved nowhere yet
    saved: dict[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.dirty:
            self.saved = _clean(self.data)

    def _note_change(self) -> None:
        self.dirty = self.saved is None or _clean(self.data) != self.saved

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name_or_path: str) -> EditorState:
        """Open a preset: built-ins become the base of a new file, others are edited in place."""
        resolved = resolve(name_or_path)
        data = experiment_dict(resolved.experiment)
        path = resolved.path
        source = _source_of(path)
        if source == "built-in":
            return cls(data, path.stem, None, f"{path.stem} ({source_label(source, path)})",
                       resolved.experiment)
        raw = read_toml(path)
        extends = raw.get("extends") if isinstance(raw.get("extends"), str) else None
        base = resolve(extends).experiment if extends else resolved.experiment
        return cls(data, extends, path, f"{path.stem} ({source_label(source, path)})", base)

    @classmethod
    def from_run_config(cls, config_path: Path, preset: str | None) -> EditorState:
        """A copy of a run's frozen config, to edit and save as a new preset."""
        experiment = validate_experiment(read_toml(config_path))
        label = f"copy of run {config_path.parent.name}" + (f" (preset {preset})" if preset else "")
        return cls(experiment_dict(experiment), None, None, label, experiment)

    # -- editing -------------------------------------------------------------------------
    def value(self, path: str) -> Any:
        group, name = path.split(".", 1)
        return self.data.get(group, {}).get(name)

    def set_value(self, path: str, value: Any) -> bool:
        """Set one setting (None unsets it); True when it changed anything."""
        group, name = path.split(".", 1)
        table = self.data.setdefault(group, {})
        if table.get(name) == value and (name in table) == (value is not None):
            return False
        if value is None:
            table.pop(name, None)
        else:
            table[name] = value
        self._note_change()
        return True

    def name_for(self, preset: str) -> None:
        """Save as `preset`: the experiment (and so its runs) takes the new preset's name,
        unless the user gave it a name of its own."""
        opened = (self.saved or {}).get("general", {}).get("experiment_name")
        if self.value("general.experiment_name") in (opened, self.preset_name(), None):
            self.set_value("general.experiment_name", preset)

    def set_sweep(self, grid: dict[str, list[Any]]) -> bool:
        if self.data.get("sweep", {}) == grid:
            return False
        self.data["sweep"] = grid
        self._note_change()
        return True

    def validate(self) -> Experiment | None:
        """Validate everything; problems are kept by dotted path ('' for the whole)."""
        try:
            experiment = validate_experiment(_clean(self.data))
        except ConfigError as error:
            self.problems, self.warnings = {}, {}
            for problem in error.problems:
                self.problems.setdefault(problem.key, problem.message)
            return None
        self.problems = {}
        self.warnings = {p.key: p.message for p in ignored_settings(experiment)}
        return experiment

    # -- saving and comparing ------------------------------------------------------------
    def body_for(self, experiment: Experiment) -> dict[str, Any]:
        """What the preset file holds: differences from `extends`, or everything."""
        full = experiment_dict(experiment)
        if not self.extends:
            return full
        base = experiment_dict(resolve(self.extends).experiment)
        changes = diff_experiments(validate_experiment(base), experiment)
        if any(c.new is None for c in changes):
            return full  # an unset value cannot be written as a difference
        body: dict[str, Any] = {"extends": self.extends}
        for change in changes:
            group, _, rest = change.key.partition(".")
            if group == "sweep":
                body["sweep"] = full.get("sweep", {})
            else:
                body.setdefault(group, {})[rest] = change.new
        return body

    def save(self, target: Path | None = None) -> Path:
        """Validate and write the preset; raises ConfigError with the problems otherwise."""
        experiment = self.validate()
        if experiment is None:
            raise ConfigError(_problem_list(self.problems))
        path = target or self.target
        if path is None:
            raise ValueError("no file to save to: use save as")
        save_preset(path, self.body_for(experiment))
        self.target = path
        self.label = f"{path.stem} ({source_label(_source_of(path), path)})"
        self.dirty, self.saved = False, _clean(self.data)
        return path

    def diff(self) -> list[Change]:
        experiment = self.validate()
        if experiment is None or self.base is None:
            return []
        return diff_experiments(self.base, experiment)

    def preset_name(self) -> str:
        return self.target.stem if self.target else (self.extends or "experiment")


def save_as_path(name: str) -> Path:
    """Where `save as NAME` writes: ./presets/NAME.toml (a local preset, never a built-in)."""
    return local_dir() / f"{check_name(name)}.toml"


def _source_of(path: Path) -> str:
    try:
        return find_preset(path.stem).source if find_preset(path.stem).path.resolve() == \
            path.resolve() else "file"
    except ConfigError:
        return "file"


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy({k: v for k, v in data.items() if k not in PRESET_KEYS})
    for table in out.values():
        if isinstance(table, dict):
            for key in [k for k, v in table.items() if v is None]:
                del table[key]
    return out


def _problem_list(problems: dict[str, str]):
    from tui_tune.config.errors import Problem
    return [Problem(key, message) for key, message in problems.items()]
