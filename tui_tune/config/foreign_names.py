"""Other tools' setting names -> tui-tune's, for "did you mean" on an unknown setting
(`training.learning_rate` -> `training.lr`, `lora_r` -> `adapter.r`), read from the import
tables so that both always agree."""

from __future__ import annotations

from functools import cache

# the tables by name: importing the modules through the package (`from tui_tune.config
# import foreign_h2o`) would tie this module, which experiment imports, to config/__init__
from tui_tune.config.foreign_axolotl import TABLE as AXOLOTL
from tui_tune.config.foreign_h2o import LORA_KEYS as H2O_LORA
from tui_tune.config.foreign_h2o import TABLE as H2O
from tui_tune.config.foreign_llamafactory import TABLE as LLAMAFACTORY


@cache
def foreign_names() -> dict[str, str]:
    """The last part of each foreign key that maps to one setting -> that setting's path."""
    names: dict[str, str] = {}
    for rules in ({**H2O, **H2O_LORA}, AXOLOTL, LLAMAFACTORY):
        for key, rule in rules.items():
            path = rule if isinstance(rule, str) else rule[0]
            if path:
                names.setdefault(key.rsplit(".", 1)[-1], path)
    return names
