"""Pure functions turning a RunSeries into what the monitor header and charts show."""

from __future__ import annotations

import math

import numpy as np

from tui_tune.tui.formatting import duration, status_markup
from tui_tune.tui.run_data import RunSeries


def step_rate(series: RunSeries, window: int = 50) -> float | None:
    """Optimizer steps per second over the last logged steps (from event times, not a clock)."""
    steps, times = series.step_values("step"), series.step_values("t")
    if steps.size < 2:
        return None
    lo = max(0, steps.size - window)
    dt = times[-1] - times[lo]
    return float((steps[-1] - steps[lo]) / dt) if dt > 0 else None


def header_markup(series: RunSeries, status: str) -> str:
    total = series.start.get("steps_total")
    step = series.last_step
    epoch = series.step_values("epoch")
    parts = [status_markup(status), f"step {step}" + (f"/{total}" if total else "")]
    if epoch.size and math.isfinite(epoch[-1]):
        parts.append(f"epoch {epoch[-1]:.2f}")
    rate = step_rate(series)
    if status == "running" and rate and total:
        parts.append(f"ETA {duration((int(total) - step) / rate)}")
    tps = series.step_values("tokens_per_s")
    if tps.size and math.isfinite(tps[-1]):
        parts.append(f"{tps[-1]:,.0f} tok/s")
    start_t, times = series.start.get("t"), series.step_values("t")  # last: cut first at 80
    if isinstance(start_t, (int, float)) and times.size:
        parts.append(f"elapsed {duration(times[-1] - start_t)}")
    return "  ".join(parts)


def finite_last(values: np.ndarray) -> float | None:
    good = values[np.isfinite(values)]
    return float(good[-1]) if good.size else None
