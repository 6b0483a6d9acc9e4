"""docs/h2o-settings-map.md agrees with the H2O import table (config/foreign_h2o.py): a key the
map calls imported is read by the importer, a key it says has no equivalent is not, every key
of the table is in the map, and so is every problem type."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from tui_tune.config import foreign_h2o
from tui_tune.config.problem_types import PROBLEM_TYPES

MAP = Path(__file__).resolve().parents[1] / "docs" / "h2o-settings-map.md"


def settings_rows() -> list[tuple[str, str]]:
    """(the first H2O key of a row, its status) for each row of the settings table."""
    text = MAP.read_text(encoding="utf-8").split("## Settings", 1)[1]
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        key = re.match(r"`([a-z_]+(\.[a-z0-9_]+)?)", cells[0])
        if len(cells) == 3 and key:
            rows.append((key.group(1), cells[2]))
    return rows


def test_the_map_agrees_with_the_import_table():
    source = inspect.getsource(foreign_h2o)
    read = set(foreign_h2o.TABLE) | set(foreign_h2o.LORA_KEYS)
    rows = settings_rows()
    assert len(rows) > 60
    for key, status in rows:
        without = status.startswith("no equivalent")
        if without:
            assert key not in read, f"{key}: the map says no equivalent, the importer maps it"
        else:
            assert key in read or f'"{key}"' in source, f"{key}: the map says it is imported"


def test_every_imported_key_and_problem_type_is_in_the_map():
    text = MAP.read_text(encoding="utf-8")
    for key in [*foreign_h2o.TABLE, *foreign_h2o.LORA_KEYS, *foreign_h2o.NOTES]:
        leaf = key.rsplit(".", 1)[-1]
        if key.startswith("environment.deepspeed_"):
            leaf = "deepspeed_"
        assert leaf in text, key
    for h2o_name in foreign_h2o.PROBLEM_TYPES:
        assert f"`{h2o_name}`" in text
    for name in PROBLEM_TYPES:
        assert f"`{name}`" in text, name
