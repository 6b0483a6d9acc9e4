"""Errors a user can cause and fix: they end a run as `failed` with a message, not a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem in the settings or the data, explained with the setting and file to change."""

    def __init__(self, message: str, setting: str | None = None, file: str | None = None):
        # (a message that starts with its file, as a config error does, is not prefixed twice)
        where = ", ".join(part for part in (setting and f"setting {setting}", file
                                            and not message.startswith(f"{file}:")
                                            and f"file {file}") if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.setting, self.file = setting, file
