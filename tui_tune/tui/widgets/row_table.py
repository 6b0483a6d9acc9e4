"""A DataTable of rows where Home and End go to the first and last row.

Textual's DataTable binds Home/End to scrolling sideways (moving between columns of a cell
cursor); with a row cursor that did nothing a user could see, so here they move the cursor, as
in every list a terminal user knows (less, a file manager)."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import DataTable


class RowTable(DataTable):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]
