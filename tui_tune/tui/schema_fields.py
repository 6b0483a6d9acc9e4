"""What the form needs to know about each setting: its kind of control, choices, help, bounds.

Read from the pydantic schema in tui_tune.config, so a new setting appears in the editor
without touching the app.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic.fields import FieldInfo
from rich.markup import escape

from tui_tune.config import GROUPS
from tui_tune.config.overrides import parse_value


@dataclass(frozen=True)
class FieldSpec:
    group: str
    name: str
    kind: str  # bool | choice | number | text | list | toml
    choices: tuple[Any, ...] = ()
    optional: bool = False
    item_type: type | None = None  # for lists
    info: FieldInfo | None = None

    @property
    def path(self) -> str:
        return f"{self.group}.{self.name}"

    @property
    def widget_id(self) -> str:
        return f"field-{self.group}-{self.name}"

    @property
    def advanced(self) -> bool:
        extra = self.info.json_schema_extra if self.info else None
        return bool(isinstance(extra, dict) and extra.get("advanced"))

    @property
    def unit(self) -> str | None:
        extra = self.info.json_schema_extra if self.info else None
        return extra.get("unit") if isinstance(extra, dict) else None


def _split_optional(annotation: Any) -> tuple[list[Any], bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        return [a for a in args if a is not type(None)], type(None) in args
    return [annotation], False


def field_spec(group: str, name: str, info: FieldInfo) -> FieldSpec:
    core, optional = _split_optional(info.annotation)
    optional = optional or info.default is None
    if len(core) != 1:
        return FieldSpec(group, name, "toml", optional=optional, info=info)
    kind_type = core[0]
    origin = typing.get_origin(kind_type)
    if kind_type is bool:
        return FieldSpec(group, name, "bool", info=info)
    if origin is Literal:
        return FieldSpec(group, name, "choice", typing.get_args(kind_type), optional, info=info)
    if origin is list:
        item = (typing.get_args(kind_type) or (str,))[0]
        return FieldSpec(group, name, "list", optional=optional, item_type=item, info=info)
    if kind_type in (int, float):
        return FieldSpec(group, name, "number", optional=optional, info=info)
    if kind_type is str:
        return FieldSpec(group, name, "text", optional=optional, info=info)
    return FieldSpec(group, name, "toml", optional=optional, info=info)


def group_specs(group: str) -> list[FieldSpec]:
    """The settings of one group, everyday ones first, advanced ones after."""
    specs = [field_spec(group, name, info) for name, info in GROUPS[group].model_fields.items()]
    return [s for s in specs if not s.advanced] + [s for s in specs if s.advanced]


# -- text <-> value ------------------------------------------------------------------------
def escape_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def unescape_text(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "nt\\,":
            out.append({"n": "\n", "t": "\t", "\\": "\\", ",": ","}[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def split_items(text: str) -> list[str]:
    """Split a list field's text on commas, except escaped ones (`\\,`); escapes are kept."""
    items, current, i = [], [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if text[i] == ",":
            items.append("".join(current))
            current = []
        else:
            current.append(text[i])
        i += 1
    items.append("".join(current))
    return [item.strip() for item in items]


def value_to_text(spec: FieldSpec, value: Any) -> str:
    """How a value shows in an Input."""
    if value is None:
        return ""
    if spec.kind == "list":
        return ", ".join(escape_text(v).replace(",", "\\,") if isinstance(v, str)
                         else _toml_scalar(v) for v in value)
    if spec.kind == "text":
        return escape_text(value)
    if spec.kind == "toml":
        return _toml_value(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _toml_scalar(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml_value(v) if not isinstance(v, str) else repr(v)}"
                          for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return _toml_scalar(value)


_MISSING = object()


def text_to_value(spec: FieldSpec, text: str) -> Any:
    """The value typed into an Input; `None` means unset (the key is dropped).

    Text that is not a valid value is passed on as text, so the schema's own message
    (for example "Input should be a valid number") reaches the user.
    """
    stripped = text.strip()
    if not stripped and spec.optional:
        return None
    if spec.kind == "text":
        return unescape_text(text)
    if spec.kind == "number":
        return parse_value(stripped) if stripped else stripped
    if spec.kind == "list":
        parts = split_items(stripped) if stripped else []
        if spec.item_type is str:
            return [unescape_text(p) for p in parts if p]
        return [parse_value(p) for p in parts if p]
    return parse_value(stripped)


def help_text(spec: FieldSpec) -> str:
    """Rich markup: what the setting does, its unit, bounds, choices and default."""
    info = spec.info
    lines = [f"[b]{spec.path}[/b]" + ("  [dim](advanced)[/dim]" if spec.advanced else "")]
    if info and info.description:
        lines.append(escape(info.description))
    if spec.unit:
        lines.append(f"[dim]unit:[/dim] {spec.unit}")
    bounds = bounds_text(info)
    if bounds:
        lines.append(f"[dim]bounds:[/dim] {bounds}")
    if spec.choices:
        lines.append(f"[dim]choices:[/dim] {', '.join(map(str, spec.choices))}")
    if info is not None:
        default = info.get_default(call_default_factory=True)
        shown = "(unset)" if default is None else repr(default)
        lines.append(f"[dim]default:[/dim] {escape(shown)}")
    if spec.kind == "list":
        lines.append("[dim]comma-separated values; \\, for a comma inside a value[/dim]")
    if spec.optional:
        lines.append("[dim]leave empty to unset[/dim]")
    return "\n".join(lines)


def bounds_text(info: FieldInfo | None) -> str:
    symbols = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=",
               "min_length": "at least", "max_length": "at most"}
    parts = []
    # a text's length is in characters, a list's in items
    annotation = info.annotation if info else None
    texts = annotation is str or (isinstance(annotation, types.UnionType)
                                  and str in get_args(annotation))
    for item in info.metadata if info else []:
        for attr, symbol in symbols.items():
            value = getattr(item, attr, None)
            if value is not None:
                suffix = (" characters" if texts else " items") if "length" in attr else ""
                parts.append(f"{symbol} {value}{suffix}")
    return ", ".join(parts)
