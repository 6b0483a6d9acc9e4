"""Which columns the runs table shows at a given terminal width, and how each cell looks.

At 120 columns everything but the preset fits (the run id ends with the preset name anyway); at
100 elapsed goes too; at 80 the eval metric goes as well and the narrow widths are used, so
status, run, progress, loss with its trend, tokens/s and ETA stay visible without scrolling
sideways; a run id too long for its column loses its date first (shown_id). run_cells and
group_cells build a run's and a sweep summary's cells for the columns shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from tui_tune.display import metric_short
from tui_tune.runs.listing import setting_name, swept_forms
from tui_tune.runs.sweep_groups import SweepGroup
from tui_tune.tui.formatting import STATUS_COLOURS, duration, format_number

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


def first_fitting(forms: list[str], width: int) -> str:
    """The first of `forms` (longest first) that fits `width` cells, else the last one cut."""
    return next((form for form in forms if not width or len(form) <= width),
                cut(forms[-1], width))


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


def _number(value: float | None, width: int) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:,.0f}" if 100 <= abs(value) < 1e5 else format_number(value, width)


def _metric_cell(s, width: int) -> str:
    """The run's eval metric by its short name and latest value (acc 0.931), once evaluated."""
    if not s.metric:
        return "-"
    name = metric_short(s.metric)
    return f"{name} {_number(s.metrics.get('metric_value'), max(4, width - len(name) - 1))}"


def run_cells(s, columns: list[tuple[str, str, int]], spark: str, *, detailed: bool,
              marked: bool, group: SweepGroup | None) -> list:
    """One run's cells for `columns` (fit_columns). `detailed`: its events were read (else the
    status is run.json's word, dimmed); `group`: the sweep it belongs to, shown as a branch
    that reads as the values it sets."""
    width = {key: w for key, _, w in columns}
    colour = STATUS_COLOURS.get(s.shown_status, "white")
    style = f"bold {colour}" if detailed else "dim"
    mark = "*" if marked else " "
    cells = {"status": Text(mark + s.shown_status, style=style),
             "run": FittedCell(s.run_id),
             "progress": progress_cell(s.step, s.steps_total, width.get("progress", 16)),
             "loss": _number(s.last_loss, width.get("loss", 7)),
             "trend": Text(spark[-width.get("trend", 10):], style="cyan"),
             "metric": _metric_cell(s, width.get("metric", 12)),
             "tok/s": _number(s.tokens_per_s, width.get("tok/s", 7)),
             "elapsed": duration(s.elapsed_s), "eta": duration(s.eta_s),
             "preset": s.preset}
    if s.short_reason and detailed:  # why it failed, not its loss
        cells["trend"] = Text(s.short_reason[:width.get("trend", 10)], style="red")
    if s.tags:  # after the id, so a narrow column cuts the tags first
        cells["run"] = FittedCell(s.run_id, after=Text(
            " " + " ".join(f"#{t}" for t in s.tags), style="yellow"))
    if group is not None:
        branch = "└" if group.members[-1] is s else "├"
        star = "★" if group.best is s else " "
        forms = [branch + star + form for form in swept_forms(s.swept)] if s.swept \
            else [branch + star + s.name]
        cells["run"] = FittedCell(forms[0], style="bold" if star != " " else "",
                                  shorten=lambda text, width: first_fitting(forms, width))
    return [cells[key] for key, _, _ in columns]


def group_cells(group: SweepGroup, columns: list[tuple[str, str, int]]) -> list:
    """A sweep's one-line summary: its runs, how many ended, the best validation loss (in the
    loss column, marked `best val`) with its metric; ★ marks the member that got it. Where
    the members show their values alone, the sweep's row names the settings after its id."""
    width = {key: w for key, _, w in columns}
    best = group.best
    names = " ".join(dict.fromkeys(setting_name(path) for member in group.members
                                   for path in member.swept))
    cells = {"status": Text(f" sweep ×{len(group.members)}", style="bold magenta"),
             "run": FittedCell(group.sweep_id, style="magenta",
                               after=Text(f" {names}", style="dim") if names else None),
             "progress": Text(f"{group.ended}/{len(group.members)} ended", style="dim"),
             "loss": _number(best.best_val_loss if best else None, width.get("loss", 7)),
             "trend": Text("best val" if width.get("trend", 10) >= 8 else "best", style="dim"),
             "metric": _metric_cell(best, width.get("metric", 12)) if best else "-",
             "tok/s": "", "elapsed": "", "eta": "", "preset": group.preset}
    return [cells[key] for key, _, _ in columns]
