"""Pure functions turning a RunSeries into what the monitor header and charts show."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rich.text import Text

from tui_tune.display import metric_title
from tui_tune.events import METRICS
from tui_tune.runs.memory_check import measured_peak_gib, memory_text
from tui_tune.tui.formatting import duration, status_markup
from tui_tune.tui.run_data import RunSeries

METRIC_VALUE = "eval.metric_value"  # the run's chosen metric (prediction.metric), by any name


def chart_choices(runs: Sequence[RunSeries] = ()) -> list[tuple[str, str]]:
    """("kind.metric", title) for every metric of step and eval events (events.METRICS): what
    the chart pickers of the monitor and compare offer, so a new metric needs no edit here.
    The eval metric is called by its name in `runs` (accuracy, MSE); metrics that none of
    `runs` has a value of (another problem type's) come last, marked."""
    with_values, without = [], []
    for kind, names in METRICS.items():
        for name, title in names.items():
            choice = f"{kind}.{name}"
            if choice == METRIC_VALUE and runs:
                title = f"{chart_title(runs, choice)}, chosen metric"
            label = f"{title} ({kind})" if kind == "eval" else title
            if not runs or any(np.isfinite(chart_values(r, choice)[1]).any() for r in runs):
                with_values.append((choice, label))
            else:
                without.append((choice, f"{label}  - no values"))
    return with_values + without


def chart_title(runs: RunSeries | Sequence[RunSeries], choice: str) -> str:
    """The picked metric's title; the eval metric is called by its name (accuracy, MSE,
    perplexity), or by each run's when they differ."""
    runs = [runs] if isinstance(runs, RunSeries) else list(runs)
    kind, name = choice.split(".", 1)
    names = list(dict.fromkeys(metric_title(r.metric_name) for r in runs if r.metric_name))
    if choice == METRIC_VALUE and len(names) == 1:
        exact = runs[0].exact if len(runs) == 1 and runs[0].metric_name == "exact_match" \
            else None
        return f"{exact[0]:,} of {exact[1]:,} exact" if exact else names[0]  # fits at 80
    if choice == METRIC_VALUE and names:
        return f"eval metric: {' / '.join(names)}"
    return METRICS[kind][name]


def chart_values(series: RunSeries, choice: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of a picked metric ("kind.metric", as chart_choices names it)."""
    kind, name = choice.split(".", 1)
    if kind == "step":
        return series.step_values("step"), series.step_values(name)
    return series.eval_values("step"), series.eval_values(name)


def header_markup(series: RunSeries, status: str, elapsed_s: float | None = None,
                  eta_s: float | None = None, width: int | None = None) -> str:
    """The monitor's header; elapsed and ETA come from the run's summary (RunFeed), computed
    as the runs list and `ls` compute them. Within `width` cells, whole facts are left out
    (elapsed first, then epoch, tok/s, ETA), never a fact cut in the middle (issue 21)."""
    total = series.start.get("steps_total")
    step = series.last_step
    epoch = series.step_values("epoch")
    parts = [(0, status_markup(status)), (0, f"step {step}" + (f"/{total}" if total else ""))]
    if epoch.size and math.isfinite(epoch[-1]):
        parts.append((3, f"epoch {epoch[-1]:.2f}"))
    if status == "running" and eta_s is not None:
        parts.append((1, f"ETA {duration(eta_s)}"))
    tps = series.step_values("tokens_per_s")
    if tps.size and math.isfinite(tps[-1]):
        parts.append((2, f"{tps[-1]:,.0f} tok/s"))
    if elapsed_s is not None:
        parts.append((4, f"elapsed {duration(elapsed_s)}"))
    while width is not None and len(parts) > 2 and \
            Text.from_markup("  ".join(text for _, text in parts)).cell_len > width:
        parts.remove(max(parts, key=lambda part: part[0]))
    return "  ".join(text for _, text in parts)


def finite_last(values: np.ndarray) -> float | None:
    good = values[np.isfinite(values)]
    return float(good[-1]) if good.size else None


def run_info_text(series: RunSeries, run_id: str) -> str:
    """The `i` dialog: what the run is and what it ran on (the latest start's environment)."""
    start, env = series.start, series.environment
    rows = [("run", run_id), ("method", start.get("method")),
            ("parameters", _params(start.get("params_trainable"), start.get("params_total"))),
            ("rows", _rows(start.get("train_rows"), start.get("val_rows"))),
            ("devices", _join(start.get("devices"))),
            ("memory", memory_text(start.get("mem_estimate_gib"), measured_peak_gib(series.end)))]
    if env:
        rows += [("python", env.get("python")), ("torch", env.get("torch")),
                 ("CUDA", env.get("cuda") or "none (CPU build)"),
                 *((name, env.get(name)) for name in ("transformers", "peft", "accelerate",
                                                      "bitsandbytes")),
                 ("GPUs", _join(env.get("gpus")) or "none"), ("driver", env.get("driver")),
                 ("tui-tune", _version_commit(env))]
    text = "\n".join(f"{name:<13}{_shown(value)}" for name, value in rows)
    if not env:
        text += "\n\nNo environment recorded: the run started before tui-tune recorded one."
    return text


def _shown(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _join(values: object) -> str:
    if not isinstance(values, list):
        return _shown(values)
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return ", ".join(f"{count} x {name}" if count > 1 else name for name, count in counts.items())


def _params(trainable: object, total: object) -> str:
    if isinstance(trainable, int) and isinstance(total, int):
        return f"{trainable:,} trainable of {total:,}"
    return "-"


def _rows(train: object, val: object) -> str:
    return f"{_shown(train)} training, {_shown(val)} validation"


def _version_commit(env: dict) -> str:
    text = _shown(env.get("tui_tune"))
    commit = env.get("git_commit")
    if isinstance(commit, str) and commit:
        text += f", commit {commit[:12]}"
        if env.get("git_dirty") is True:
            text += " with uncommitted changes"
    return text
