"""Other tools' setting names -> tui-tune's, for "did you mean" on an unknown setting
(`training.learning_rate` -> `training.lr`, `lora_r` -> `adapter.r`), read from the import
tables so that both always agree."""

from __future__ import annotations

from functools import cache

from tui_tune.config import foreign_axolotl, foreign_h2o, foreign_llamafactory


@cache
def foreign_names() -> dict[str, str]:
    """The last part of each foreign key that maps to one setting -> that setting's path."""
    names: dict[str, str] = {}
    for tool in (foreign_h2o, foreign_axolotl, foreign_llamafactory):
        rules = {**tool.TABLE, **getattr(tool, "LORA_KEYS", {})}
        for key, rule in rules.items():
            path = rule if isinstance(rule, str) else rule[0]
            if path:
                names.setdefault(key.rsplit(".", 1)[-1], path)
    return names
