"""User keymap: rebind any action by its Binding id from a TOML file in the config dir.

keymap.toml holds `binding-id = "key[,key...]"` lines, at the top level or under [keys],
for example `"runs.stop" = "x,ctrl+x"`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path


def keymap_path() -> Path:
    base = os.environ.get("TUI_TUNE_CONFIG_DIR")
    if base:
        return Path(base) / "keymap.toml"
    from platformdirs import user_config_dir
    return Path(user_config_dir("tui-tune")) / "keymap.toml"


def load_keymap(path: Path | None = None) -> tuple[dict[str, str], str | None]:
    """The keymap and a problem message (None when fine); a missing file is an empty keymap."""
    path = path or keymap_path()
    if not path.is_file():
        return {}, None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        return {}, f"{path}: ignored, not valid TOML ({error})"
    table = data.get("keys", data)
    keymap = {str(k): v for k, v in table.items() if isinstance(v, str)}
    bad = sorted(str(k) for k, v in table.items() if not isinstance(v, str))
    problem = f"{path}: ignored {', '.join(bad)} (values must be key strings)" if bad else None
    return keymap, problem


def all_binding_ids() -> set[str]:
    """Every Binding id of the app and its screens (the screen registry): what a keymap may
    rebind."""
    from tui_tune.tui.screens.registry import binding_ids
    return binding_ids()


def unknown_ids_problem(keymap: dict[str, str]) -> str | None:
    """A message naming keymap entries that match no action (typos are otherwise silent)."""
    unknown = sorted(set(keymap) - all_binding_ids())
    if not unknown:
        return None
    return (f"{keymap_path()}: no action has the id {', '.join(unknown)} "
            "(F1 lists each screen's ids)")
