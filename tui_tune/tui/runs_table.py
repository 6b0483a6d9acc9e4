"""Which columns the runs table shows at a given terminal width, and how each cell looks.

At 120 columns everything but the preset fits (the run id ends with the preset name anyway); at
100 elapsed goes too; at 80 the eval metric goes as well and the narrow widths are used, so
status, run, progress, loss with its trend, tokens/s and ETA stay visible without scrolling
sideways; a run id too long for its column loses its date first (shown_id).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

# key, label, wide width, narrow width ("run" takes what is left)
COLUMNS = (("status", "status", 10, 10), ("run", "run", 0, 0), ("progress", "progress", 16, 12),
           ("loss", "loss", 7, 6), ("trend", "trend", 10, 6), ("metric", "metric", 12, 10),
           ("tok/s", "tok/s", 7, 6),
           ("elapsed", "elapsed", 8, 7), ("eta", "ETA", 8, 7), ("preset", "preset", 14, 14))
RUN_WIDTH = (25, 27)  # wanted (a run id with a short preset name), most useful
RUN_MIN = 12
CELL_PADDING = 2  # DataTable: one cell each side of every column
SCROLLBAR = 2
LAYOUTS = ((False, ()), (True, ()), (True, ("preset",)), (True, ("preset", "elapsed")),
           (True, ("preset", "elapsed", "metric")))


def fit_columns(width: int) -> list[tuple[str, str, int]]:
    """(key, label, width) of the columns to show in a table `width` cells wide."""
    for attempt, (narrow, dropped) in enumerate(LAYOUTS):
        columns = [(key, label, narrow_w if narrow else wide_w)
                   for key, label, wide_w, narrow_w in COLUMNS if key not in dropped]
        used = sum(w for _, _, w in columns) + CELL_PADDING * len(columns) + SCROLLBAR
        run = width - used
        if run >= RUN_WIDTH[0] or attempt == len(LAYOUTS) - 1:
            run = max(RUN_MIN, min(RUN_WIDTH[1], run))
            return [(k, label, run if k == "run" else w) for k, label, w in columns]
    raise AssertionError("unreachable")


def shown_id(run_id: str, width: int) -> str:
    """A run id in `width` cells: whole where it fits, else without its date
    (`20260101-000300-demo-classify` -> `000300-demo-classify`: the time and name tell runs
    of one listing apart), else cut with an ellipsis; never cut without saying so."""
    if not width or len(run_id) <= width:
        return run_id
    date, _, rest = run_id.partition("-")
    if len(date) == 8 and date.isdigit() and rest and len(rest) <= width:
        return rest
    return cut(rest if len(date) == 8 and date.isdigit() and rest else run_id, width)


def cut(text: str, width: int) -> str:
    """`text` in `width` cells, with an ellipsis where it is cut."""
    return text if not width or len(text) <= width else text[:max(width - 1, 0)] + "…"


class FittedCell:
    """A runs-table cell that holds its whole text (what `.plain`, sorting and copying see)
    and draws it within its column, shortened by `shorten` (shown_id: a run id loses its date
    first) rather than cut at the column's edge; `after` (tags) follows and is cut first."""

    def __init__(self, text: str, style: str = "", after: Text | None = None,
                 shorten: Callable[[str, int], str] = shown_id):
        self.text, self.style, self.after, self.shorten = text, style, after, shorten

    @property
    def plain(self) -> str:
        return self.text + (self.after.plain if self.after is not None else "")

    def __str__(self) -> str:
        return self.plain

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        shown = Text(self.shorten(self.text, options.max_width), style=self.style,
                     no_wrap=True, overflow="crop")
        if self.after is not None:
            shown.append_text(self.after)
        yield shown


def progress_cell(step: int, total: int | None, width: int = 16) -> Text:
    """A bar and step/total in `width` cells (the bar shrinks first)."""
    if not total:
        return Text(f"{step}", style="dim")
    numbers = f" {step}/{total}"
    bar = min(8, max(3, width - len(numbers)))
    fraction = max(0.0, min(1.0, step / total))
    filled = round(fraction * bar)
    text = Text("█" * filled, style="green")
    text.append("░" * (bar - filled), style="dim")
    text.append(numbers)
    return text
