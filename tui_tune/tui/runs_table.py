"""Which columns the runs table shows at a given terminal width, and how each cell looks.

At 120 columns everything but the preset fits (the run id ends with the preset name anyway); at
100 elapsed goes too; at 80 the eval metric goes as well and the narrow widths are used, so
status, run, progress, loss with its trend, tokens/s and ETA stay visible without scrolling
sideways.
"""

from __future__ import annotations

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
