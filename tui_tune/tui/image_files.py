"""Image files named by multimodal samples, read for the monitor: decoded once per (path,
modification time, size), kept small, and never an exception: a file that is gone or is no
image comes back with the reason it cannot be shown.

Decoding can take a while for a big photo, so the monitor's feed (tui/live.py) reads the
newest samples' images in its thread before it posts them; the panel then finds them here.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

GRAPHIC_PX = 256  # the largest side kept in memory (Kitty/Sixel draw at the cells' pixels)


@dataclass(frozen=True, eq=False)  # hashed by identity: the half-block cache's key
class SampleImage:
    """One image file as read for the monitor: the picture, or why there is none."""

    path: str
    picture: Any = None  # a PIL image (RGB, at most GRAPHIC_PX a side); None: see problem
    problem: str = ""


def read_image(path: str) -> SampleImage:
    """The image at `path`, decoded once while the file stays the same."""
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return SampleImage(path, problem="image missing")
    if not stat.S_ISREG(found.st_mode):  # a folder, or a pipe that would never end
        return SampleImage(path, problem="image missing (not a file)")
    return _decoded(path, found.st_mtime_ns, found.st_size)


@lru_cache(maxsize=256)
def _decoded(path: str, mtime_ns: int, size: int) -> SampleImage:
    from PIL import Image
    try:
        with Image.open(path) as opened:
            opened.draft("RGB", (GRAPHIC_PX, GRAPHIC_PX))  # JPEG: decode at a fraction
            picture = _rgb(opened)
        picture.thumbnail((GRAPHIC_PX, GRAPHIC_PX))
    except Exception as error:  # noqa: BLE001 - any unreadable file is shown, never raised
        reason = "not an image" if isinstance(error, Image.UnidentifiedImageError) \
            else "unreadable"
        return SampleImage(path, problem=f"image missing ({reason})")
    return SampleImage(path, picture)


def _rgb(image: Any) -> Any:
    """RGB, transparent parts on black (the monitor's dark background)."""
    from PIL import Image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def read_newest(samples: Iterable[Any]) -> None:
    """Decode the images of the newest eval step's samples (what the panel shows next)."""
    samples = list(samples)
    newest = samples[-1].step if samples else None
    for sample in reversed(samples):
        if sample.step != newest:
            break
        for path in sample.images or ():
            read_image(path)
