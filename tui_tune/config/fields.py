"""One helper to declare a setting, so help text, unit and bounds live on the field itself.

The form in the app, `preset schema`, and error messages all read this metadata.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def setting(default: Any = ..., help: str = "", *, unit: str | None = None,
            advanced: bool = False, **constraints: Any) -> Any:
    """A pydantic Field with our metadata: `unit` for display, `advanced` to fold it in the form."""
    extra: dict[str, Any] = {"advanced": advanced}
    if unit:
        extra["unit"] = unit
    return Field(default, description=help, json_schema_extra=extra, **constraints)


def list_setting(default: list, help: str, **kw: Any) -> Any:
    return Field(default_factory=lambda: list(default), description=help,
                 json_schema_extra={"advanced": kw.pop("advanced", False)}, **kw)


class Group(BaseModel):
    """A settings group: one TOML table, one tab in the editor. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=False)
