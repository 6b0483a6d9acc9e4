"""The memory estimate beside the measured peak of one run, for `ls --json` and the monitor.

The `start` event carries the estimate (runs/estimate, per GPU) and the `end` event the peak
torch measured on the GPU. A CPU run has no GPU peak to compare with (its process size is not
what the estimate counts), so its measured peak is "n/a", never a number that looks like one.
"""

from __future__ import annotations

from typing import Any

from tui_tune.runs.event_values import finite


def measured_peak_gib(end: dict[str, Any] | None) -> float | None:
    """The GPU peak the end event carries (torch's max_memory_allocated); None without one."""
    value = finite((end or {}).get("mem_peak_gib"))
    return value if value is not None and value > 0 else None


def estimate_error(estimate_gib: float | None, measured_gib: float | None) -> float | None:
    """(estimate - measured) / measured: positive when the estimate was too high."""
    if estimate_gib is None or not measured_gib:
        return None
    return round((estimate_gib - measured_gib) / measured_gib, 4)


def memory_text(estimate_gib: float | None, measured_gib: float | None) -> str:
    """One line: 'estimated 9.86 GiB, measured 9.99 GiB (estimate 1% low)'; measured n/a
    without a GPU peak (a CPU run, or one that has not ended)."""
    estimated = f"{estimate_gib:.2f} GiB" if estimate_gib is not None else "n/a"
    if measured_gib is None:
        return f"estimated {estimated}, measured n/a (no GPU peak)"
    text = f"estimated {estimated}, measured {measured_gib:.2f} GiB"
    error = estimate_error(estimate_gib, measured_gib)
    if error is not None:
        text += f" (estimate {abs(error):.0%} {'high' if error > 0 else 'low'})"
    return text
