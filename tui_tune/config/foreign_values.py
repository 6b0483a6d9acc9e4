"""Building blocks of the foreign-config tables (foreign_h2o, foreign_axolotl,
foreign_llamafactory): how one value of another tool becomes a tui-tune value, or why it cannot.

A table maps the other tool's dotted key to a rule: a tui-tune setting path (the value is kept
as it is), or (path, converter). A converter returns the new value, `UNSET` (the setting has an
equivalent but this value means "leave it at its default", such as H2O's "None" strings), or a
dict of setting path -> value when one key sets several (path None); it raises NoEquivalent
with the reason when this value has no equivalent, and the importer lists it.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

UNSET = object()  # mapped, and nothing to write: the tui-tune default means the same
EMPTY_TEXTS = ("", "none", "null")


class NoEquivalent(Exception):
    """This value (or key) has no tui-tune equivalent; the message says why."""


Converter = Callable[[Any], Any]
Rule = str | tuple[str | None, Converter]


@dataclass
class Combined:
    """What a tool's combine() made of keys that only mean something together (H2O's lora +
    backbone_dtype -> adapter.method): the settings, which keys it used, what it refused."""
    settings: dict[str, Any] = field(default_factory=dict)
    used: dict[str, list[str]] = field(default_factory=dict)  # foreign key -> setting paths
    refused: dict[str, str] = field(default_factory=dict)  # foreign key -> why

    def set(self, keys: list[str], path: str, value: Any) -> None:
        self.settings[path] = value
        for key in keys:
            self.used.setdefault(key, []).append(path)

    def use(self, *keys: str) -> None:
        """Keys read with nothing to write (the default means the same)."""
        for key in keys:
            self.used.setdefault(key, [])

    def refuse(self, key: str, why: str) -> None:
        self.refused[key] = why


def is_empty(value: Any) -> bool:
    """None, "", "None" (H2O writes missing values so) and empty lists mean "not set"."""
    if value is None or value == []:
        return True
    return isinstance(value, str) and value.strip().lower() in EMPTY_TEXTS


def choice(options: dict[str, Any], what: str = "value") -> Converter:
    """Case-insensitive value renaming; a value not in `options` has no equivalent."""
    lowered = {k.lower(): v for k, v in options.items()}

    def convert(value: Any) -> Any:
        key = str(value).strip().lower()
        if key not in lowered:
            known = ", ".join(sorted(k for k, v in options.items() if v is not UNSET))
            raise NoEquivalent(f"no tui-tune {what} for {value!r} (it has: {known})")
        return lowered[key]
    return convert


def text(value: Any) -> Any:
    return UNSET if is_empty(value) else str(value)


def escaped_text(value: Any) -> str:
    """H2O writes separators escaped ("\\n\\n" for two newlines)."""
    return codecs.decode(str(value), "unicode_escape")


def text_list(value: Any) -> Any:
    """A list, or one text of comma-separated items (how H2O and LLaMA-Factory write them)."""
    items = value if isinstance(value, list) else str(value).split(",")
    items = [str(item).strip() for item in items if not is_empty(item)]
    return items or UNSET


def one_text(value: Any) -> Any:
    """One column name, given alone or as a one-item list."""
    if isinstance(value, list):
        if len(value) != 1:
            raise NoEquivalent(f"{len(value)} columns where tui-tune reads one")
        value = value[0]
    return text(value)


def positive(value: Any) -> Any:
    """A count where 0 or a negative number means "off": left at the default."""
    return UNSET if value is None or value <= 0 else value


def flag_true(target_value: Any) -> Converter:
    """A switch that sets a value when on and leaves the default when off."""
    return lambda value: target_value if value is True else UNSET


def negated(value: Any) -> bool:
    return not bool(value)


def flatten_foreign(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables -> dotted keys; lists (axolotl's datasets) stay one value."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten_foreign(value, f"{path}."))
        else:
            out[path] = value
    return out
