"""How this terminal shows the images of multimodal samples: Kitty graphics, Sixel, or
half-block thumbnails (coloured `▀` cells, which any terminal with colours shows).

textual-image asks the terminal what it supports when `textual_image.renderable` is first
imported (it writes escape sequences and reads the answer from stdin, up to 0.1 s each). That
only works before Textual owns stdin, and must not happen on a terminal that cannot show
graphics anyway (tmux over SSH) nor without one (tests, pipes). So nothing imports
textual-image at module level: `prepare()` runs once before the app starts and asks the
terminal only where the environment names a graphics terminal; everywhere else, and until
`prepare()` ran, images are half-block thumbnails, drawn by tui/widgets/sample_images.py.
`TUI_TUNE_IMAGES=kitty|sixel|halfblock` overrides the choice.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

KITTY, SIXEL, HALFBLOCK = "kitty", "sixel", "halfblock"
RENDERERS = (KITTY, SIXEL, HALFBLOCK)
OVERRIDE = "TUI_TUNE_IMAGES"
# terminals that show Sixel images (by $TERM_PROGRAM, or a prefix of $TERM)
SIXEL_PROGRAMS = ("WezTerm", "iTerm.app", "mintty", "contour", "Black Box")
SIXEL_TERMS = ("foot", "mlterm", "contour", "yaft")

_chosen = HALFBLOCK


def guess(environ: Mapping[str, str], is_tty: bool) -> str:
    """The renderer the environment suggests, without asking the terminal anything."""
    forced = environ.get(OVERRIDE, "").strip().lower()
    if forced in RENDERERS:
        return forced
    if not is_tty or environ.get("TMUX") or environ.get("STY"):
        return HALFBLOCK  # a pipe; tmux/screen pass graphics through only when set up to
    term = environ.get("TERM", "")
    if "kitty" in term or "ghostty" in term or environ.get("KITTY_WINDOW_ID"):
        return KITTY
    if environ.get("TERM_PROGRAM", "") in SIXEL_PROGRAMS or environ.get("KONSOLE_VERSION") \
            or term.startswith(SIXEL_TERMS):
        return SIXEL
    return HALFBLOCK


def prepare(environ: Mapping[str, str] | None = None, stdout: TextIO | None = None) -> str:
    """Choose the renderer once, before the app starts: where the environment suggests (or
    TUI_TUNE_IMAGES asks for) Kitty or Sixel graphics, textual-image is imported now, while
    nothing else reads stdin, and what its terminal query finds wins unless the choice was
    forced; half-block thumbnails otherwise. Returns the choice."""
    global _chosen
    environ = os.environ if environ is None else environ
    stdout = sys.__stdout__ if stdout is None else stdout
    choice = guess(environ, bool(stdout) and stdout.isatty())
    if choice != HALFBLOCK:
        found = _asked()
        forced = environ.get(OVERRIDE, "").strip().lower() == choice
        choice = HALFBLOCK if found is None else choice if forced else found
    _chosen = choice
    return choice


def _asked() -> str | None:
    """What textual-image's terminal query found (Sixel first, then Kitty; half-block when
    neither), or None when it cannot be imported. Importing its widgets also measures the
    cell size in pixels (ioctl, else one more query)."""
    try:
        from textual_image import renderable, widget  # noqa: F401 - imported for the query
    except Exception:  # noqa: BLE001 - no graphics is no reason not to start
        return None
    if renderable.Image is renderable.TGPImage:
        return KITTY
    if renderable.Image is renderable.SixelImage:
        return SIXEL
    return HALFBLOCK


def use(renderer: str) -> None:
    """Set the renderer (tests, and `prepare`)."""
    global _chosen
    if renderer not in RENDERERS:
        raise ValueError(f"{OVERRIDE}: {renderer!r} is none of {', '.join(RENDERERS)}")
    _chosen = renderer


def renderer() -> str:
    return _chosen


def pictures_at_start(environ: Mapping[str, str] | None = None) -> bool:
    """Whether samples open with their pictures: not with NO_COLOR on half blocks (Textual
    then draws no colours, and a thumbnail is a grey square; the paths say more)."""
    environ = os.environ if environ is None else environ
    return _chosen != HALFBLOCK or not environ.get("NO_COLOR")
