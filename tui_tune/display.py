"""How a run's status, its durations and its metric's name read, the same in the CLI (`ls`,
`watch`) and the app.

Plain strings: rich style names and text, no rich or Textual import, so both sides share them.
"""

from __future__ import annotations

import math

from tui_tune.events import METRICS

STATUS_COLOURS = {"running": "green", "queued": "blue", "completed": "cyan", "stopped": "yellow",
                  "failed": "red", "oom": "red", "died": "red", "stalled": "yellow"}
OTHER_COLOUR = "white"  # a status this version does not know


def status_style(status: str) -> str:
    """The rich style of a status word: bold, in the status's colour."""
    return f"bold {STATUS_COLOURS.get(status, OTHER_COLOUR)}"


def duration(seconds: float | None) -> str:
    """Elapsed or remaining time as m:ss, or h:mm:ss from an hour on; "-" when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def metric_title(name: str) -> str:
    """A run's eval metric (prediction.metric) by its title in the event schema: mse -> MSE,
    auc -> ROC AUC, f1 -> F1; a name the schema has no field for (bleu) as it is."""
    return METRICS["eval"].get(name, name) if name not in ("val_loss", "metric_value") else name


SHORT_TITLES = {"perplexity": "ppl", "accuracy": "acc", "ROC AUC": "AUC", "log loss": "logloss"}


def metric_short(name: str) -> str:
    """A metric's title where a column is narrow (the runs list): accuracy -> acc."""
    title = metric_title(name)
    return SHORT_TITLES.get(title, title)


def fit_lines(estimate) -> list[str]:
    """Whether an estimate fits each visible GPU (or the GPU size asked about) and the largest
    batch that fits, as rich markup lines: `tui-tune estimate` and the editor print the same."""
    lines = [f"GPU {g.index} {g.name.replace('[', chr(92) + '[')}: {g.total_gib:.1f} GiB, "
             f"{g.free_gib:.1f} free: [b]{g.verdict}[/b]" for g in estimate.gpus]
    if estimate.budget_gib is not None and not estimate.gpus:
        fits = estimate.memory.total_gib <= estimate.budget_gib
        lines.append(f"a {estimate.budget_gib:g} GiB GPU: [b]{'fits' if fits else 'does not fit'}"
                     "[/b]")
    if estimate.largest_batch is not None:
        lines.append(f"largest batch size that fits: {estimate.largest_batch or 'none'}")
    return lines
