"""The compact live view of one run for the CLI (`tui-tune run`, `watch`) and the `ls` table,
drawn with rich; status colours and durations read as in the app (tui_tune/display.py).

Without a terminal it prints one plain line per new step event instead, so logs of scripted
runs stay readable.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from rich.console import Console, Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from tui_tune.display import duration, metric_title, status_style
from tui_tune.runs.store import RunStore, RunSummary


def number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}"


def rate(value: float | None) -> str:
    """Tokens/s as a whole number (9894, not 9894.4); small rates keep three digits."""
    if value is None or not math.isfinite(value) or value < 100:
        return number(value, 3)
    return f"{value:.0f}"


def progress(summary: RunSummary) -> str:
    total = summary.steps_total
    return f"{summary.step}/{total}" if total else str(summary.step or "-")


def eval_metric(summary: RunSummary) -> tuple[str, str] | None:
    """(the run's eval metric by its name, its latest value), once an eval named it."""
    if not summary.metric:
        return None
    return metric_title(summary.metric), number(summary.metrics.get("metric_value"))


def live_panel(summary: RunSummary) -> Group:
    """Header line, progress bar and one row of the numbers that matter while training (the
    eval metric by its name: accuracy, MSE, perplexity)."""
    extra = summary.extra
    header = Text.assemble((summary.run_id, "bold"), "  ",
                           (summary.status, status_style(summary.status)))
    if summary.stalled_s is not None:
        header.append(f"  stalled: no step for {duration(summary.stalled_s)}",
                      status_style("stalled"))
    bar = Table.grid(padding=(0, 1))  # a bare ProgressBar ends no line: the table would follow it
    bar.add_row(ProgressBar(total=float(summary.steps_total or 1), completed=float(summary.step),
                            width=48),
                f"{100 * summary.step / summary.steps_total:.0f}%" if summary.steps_total else "")
    table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 2))
    metric = eval_metric(summary)
    names = ["step", "loss", "lr", "grad norm", "val loss", "tokens/s", "elapsed", "ETA"]
    values = [progress(summary), number(summary.last_loss), number(extra.get("lr"), 3),
              number(extra.get("grad_norm"), 3), number(extra.get("val_loss")),
              rate(summary.tokens_per_s), duration(summary.elapsed_s), duration(summary.eta_s)]
    if metric:  # after val loss
        names.insert(5, metric[0])
        values.insert(5, metric[1])
    for name in names:
        table.add_column(name, justify="right", style="cyan" if name == "loss" else None)
    table.add_row(*values)
    parts: list = [header, bar, table]
    if summary.reason and summary.status not in ("running", "completed"):
        parts.append(Text(summary.reason, style="red"))
    return Group(*parts)


def plain_line(summary: RunSummary) -> str:
    extra = summary.extra
    metric = eval_metric(summary)
    return (f"step {progress(summary)}  loss {number(summary.last_loss)}  "
            f"lr {number(extra.get('lr'), 3)}  grad_norm {number(extra.get('grad_norm'), 3)}  "
            + (f"{metric[0]} {metric[1]}  " if metric else "")
            + f"tokens/s {rate(summary.tokens_per_s)}  elapsed {duration(summary.elapsed_s)}  "
            f"ETA {duration(summary.eta_s)}")


# columns `ls` leaves out first when the table is wider than the terminal; the run id is never
# cut or wrapped, and a sweep member's values go last (they tell its runs apart)
DROP_ORDER = ("metric", "tokens/s", "elapsed", "name", "preset", "ETA", "loss", "step")


def runs_table(summaries: list[RunSummary], width: int | None = None) -> Table:
    """`tui-tune ls`: one row per run. Name and preset get columns when some run's experiment
    name differs from its preset (renamed runs); a sweep's members are listed together under a
    row for the sweep (how many ended, the best validation loss and the values that got it),
    each with the values it sets (`swept`). Once a run has evaluated, `metric` shows each run's
    eval metric by name (accuracy 0.93). Columns that do not fit `width` are left out
    (DROP_ORDER; `--json` has them all), so the run id is never wrapped or cut."""
    dropped: list[str] = []
    table = _runs_table(summaries, dropped)
    if width is None:
        return table
    for column in DROP_ORDER:
        if table_width(table) <= width:
            break
        if column in [c.header for c in table.columns]:
            dropped.append(column)
            table = _runs_table(summaries, dropped)
    return table


def table_width(table: Table) -> int:
    return Console(width=100_000).measure(table).maximum


def _runs_table(summaries: list[RunSummary], dropped: list[str]) -> Table:
    from tui_tune.runs.listing import swept_text
    from tui_tune.runs.sweep_groups import SweepGroup, grouped

    table = Table(box=None, header_style="bold", pad_edge=False)
    rows = grouped(summaries)
    with_sweeps = any(isinstance(r, SweepGroup) for r in rows)
    with_names = any(s.name != s.preset and not s.sweep_id for s in summaries)
    with_metrics = any(s.metric for s in summaries)
    id_width = max((len(f"sweep {r.sweep_id}" if isinstance(r, SweepGroup) else r.run_id)
                    for r in rows), default=3)
    columns = [("run", "left")] + ([("swept", "left")] if with_sweeps else []) \
        + ([("name", "left"), ("preset", "left")] if with_names else []) \
        + [("status", "left"), ("step", "right"), ("loss", "right")] \
        + ([("metric", "right")] if with_metrics else []) \
        + [("tokens/s", "right"), ("elapsed", "right"), ("ETA", "right")]
    columns = [(name, justify) for name, justify in columns if name not in dropped]
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis",
                         min_width=id_width if name == "run" else len(name))
    for row in rows:
        if isinstance(row, SweepGroup):  # how many ended, the best val loss and its values
            best = row.best
            cells = {"run": Text(f"sweep {row.sweep_id}", "bold magenta"),
                     "status": Text(f"{row.ended}/{len(row.members)} ended", "magenta"),
                     "swept": Text(f"★{swept_text(best.swept)}" if best else "-", "magenta"),
                     "loss": Text(f"val {number(best.best_val_loss)}" if best else "-",
                                  "magenta"),
                     "metric": " ".join(eval_metric(best) or ("-",)) if best else "-",
                     "preset": row.preset}
        else:
            cells = {"run": row.run_id, "swept": swept_text(row.swept),
                     "name": "" if row.sweep_id else row.name,  # (its values name it)
                     "preset": row.preset,
                     "status": Text(row.shown_status, status_style(row.shown_status)),
                     "step": progress(row), "loss": number(row.last_loss),
                     "metric": " ".join(eval_metric(row) or ("-",)),
                     "tokens/s": rate(row.tokens_per_s), "elapsed": duration(row.elapsed_s),
                     "ETA": duration(row.eta_s)}
        table.add_row(*(cells.get(name, "") for name, _ in columns))
    return table


class RunWatcher:
    """Re-reads one run's progress cheaply (only new events) for a refreshing view."""

    def __init__(self, store: RunStore, run_dir: Path):
        self.store, self.run_dir = store, run_dir
        self.last_step_printed = -1

    def summary(self) -> RunSummary:
        return self.store.summary(self.run_dir)

    def wait_until_started(self, timeout_s: float = 5.0) -> None:
        """Wait for a just-launched run to show up as started; a sweep member waits for its
        turn as long as the sweep's runner is alive to start it."""
        deadline = time.monotonic() + timeout_s
        while (summary := self.summary()).status == "queued":
            if time.monotonic() >= deadline and not self._sweep_will_start(summary):
                return
            time.sleep(0.1 if time.monotonic() < deadline else 1.0)

    def _sweep_will_start(self, summary: RunSummary) -> bool:
        from tui_tune.runs.sweep import runner_process, sweeps_root

        if not summary.sweep_id:
            return False
        return runner_process(sweeps_root(self.store) / summary.sweep_id) is not None
