"""Small text formatting shared by screens; no numpy, so the start screen imports fast."""

from __future__ import annotations

import math

STATUS_COLOURS = {"running": "green", "queued": "blue", "completed": "cyan", "stopped": "yellow",
                  "failed": "red", "oom": "red", "died": "red", "stalled": "yellow"}


def status_markup(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "white")
    return f"[b {colour}]{status}[/]"


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_number(value: float, width: int = 7) -> str:
    """A compact label that fits `width` characters: 1.2e-4, 0.25, 12k, 3.4M."""
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1e6:
        text = f"{value / 1e6:.3g}M"
    elif magnitude >= 1e4:
        text = f"{value / 1e3:.3g}k"
    elif magnitude == 0 or magnitude >= 0.01:
        text = f"{value:.4g}"
    else:
        text = f"{value:.1e}".replace("e-0", "e-")
    return text[:width]
