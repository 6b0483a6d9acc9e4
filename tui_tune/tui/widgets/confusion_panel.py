"""The monitor's confusion-matrix panel (classification runs): counts per true x predicted
class with the class names and per-class recall, from the latest evaluation. Drawn for the
panel's size: the classes that do not fit are summed in one last row and column, whose name
("+N more") says how many."""

from __future__ import annotations

import math
import os
import re

from rich.text import Text
from textual.widget import Widget

from tui_tune.tui.confusion import Confusion

RECALL_WIDTH = 5  # " 100%"
MIN_NAME = 4  # the row-name column never gets narrower than this


def confusion_text(matrix: Confusion | None, width: int, height: int) -> Text:
    """The panel's text in `width` x `height` cells: a status line, the predicted-class
    header, then one row per true class (counts, its recall)."""
    if matrix is None:
        return Text("no evaluation yet", style="dim")
    names = max(MIN_NAME, min(max(9, *map(len, matrix.labels)), 12, width // 4))
    cell = _cell_width(matrix, width - names - RECALL_WIDTH)
    keep = min((width - names - RECALL_WIDTH) // cell, height - 2, matrix.size)
    shown = matrix.folded(keep) if keep >= 2 else None
    accuracy = matrix.accuracy
    out = Text(f"step {matrix.step}", style="bold")
    if accuracy is not None:
        out.append(f"  accuracy {100 * accuracy:.1f}%")
    if shown is None:
        out.append(f"\n{matrix.size} classes: too small a panel", style="yellow")
        return out
    if shown.hidden and len(out) + 20 <= width:
        out.append(f"  {shown.size - 1} of {matrix.size} classes", style="yellow")
    recall_width = RECALL_WIDTH + 2 if width - names - shown.size * cell >= RECALL_WIDTH + 2 \
        else RECALL_WIDTH
    out.append("\n" + _cut("true\\pred" if names >= 9 else "t\\p", names), style="dim")
    for label in _column_names(shown, cell - 1):
        out.append(label.rjust(cell), style="bold")
    out.append(("recall" if recall_width > RECALL_WIDTH else "rec").rjust(recall_width),
               style="dim")
    for i, (label, recall) in enumerate(zip(shown.labels, shown.recall(), strict=True)):
        out.append("\n" + _cut(label, names), style="bold")
        for j, value in enumerate(shown.counts[i]):
            style = "bold green" if i == j and not (shown.hidden and i == shown.size - 1) \
                else "dim" if value == 0 else "yellow"
            out.append(str(int(value)).rjust(cell), style=style)
        out.append(("-" if math.isnan(recall) else f"{100 * recall:.0f}%").rjust(recall_width))
    out.no_wrap, out.overflow = True, "ellipsis"
    return out


def _cell_width(matrix: Confusion, room: int) -> int:
    """A count column's width (with its space): wide enough for the class names where every
    class fits so, else just wide enough for the counts (and 4 letters of a name)."""
    narrow = max(len(str(int(matrix.counts.sum()))), 4) + 1
    wide = max(narrow, min(max(len(n) for n in matrix.labels), 10) + 1)
    return next((cell for cell in range(wide, narrow, -1) if cell * matrix.size <= room),
                narrow)


def _column_names(matrix: Confusion, width: int) -> list[str]:
    """The classes' names in `width` cells: when some are longer, the part every class name
    starts with (up to a separator: "class-" of class-13, class-14) is left out first."""
    names = list(matrix.labels[:-1] if matrix.hidden else matrix.labels)
    if len(names) > 1 and max(map(len, names)) > width:
        common = re.match(r".*[-_ ./:]", os.path.commonprefix(names))
        if common:
            names = [name[common.end():] or name for name in names]
    if matrix.hidden:
        names.append(matrix.labels[-1].split()[0])  # "+N"
    return [name[:width] for name in names]


def _cut(label: str, width: int) -> str:
    return (label if len(label) <= width else label[:width - 1] + "…").ljust(width)


class ConfusionPanel(Widget):
    """Shows `matrix` (set it; None: nothing evaluated yet), redrawn for every size."""

    DEFAULT_CSS = "ConfusionPanel { height: 1fr; }"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.matrix: Confusion | None = None
        self.border_title = "confusion: true x predicted"

    def set_matrix(self, matrix: Confusion | None) -> None:
        if matrix is not self.matrix:
            self.matrix = matrix
            self.refresh()

    def render(self) -> Text:
        size = self.content_region.size
        return confusion_text(self.matrix, size.width, size.height)
