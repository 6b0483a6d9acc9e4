"""Small text formatting shared by screens; no numpy, so the start screen imports fast."""

from __future__ import annotations

import math

from tui_tune.display import STATUS_COLOURS, duration, status_style

__all__ = ["STATUS_COLOURS", "duration", "format_number", "status_markup"]  # shared with the CLI


def status_markup(status: str) -> str:
    """The status word in its colour (tui_tune/display.py, the palette the CLI uses too)."""
    return f"[{status_style(status)}]{status}[/]"


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
