"""Image files named by multimodal samples, read for the monitor: decoded once per (path,
modification time, size), kept small, and never an exception: a file that is gone or is no
image comes back with the reason it cannot be shown.

Decoding can take a while for a big photo (a second for 4000 x 4000 pixels), so it never
happens on the app thread: the monitor's feed (tui/live.py) reads the newest samples' images
in its thread before it posts them, and the samples panel has a worker read the images of an
older step it browses to.
"""

from __future__ import annotations

import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GRAPHIC_PX = 256  # the largest side kept in memory (Kitty/Sixel draw at the cells' pixels)
CACHE_SIZE = 256  # files kept decoded (at most 256 x 256 x 3 bytes each)
_CACHE: OrderedDict[tuple[str, int, int], SampleImage] = OrderedDict()
_LOCK = threading.Lock()  # the feed's thread and the panel's worker read files too


@dataclass(frozen=True, eq=False)  # hashed by identity: the half-block cache's key
class SampleImage:
    """One image file as read for the monitor: the picture, or why there is none."""

    path: str
    picture: Any = None  # a PIL image (RGB, at most GRAPHIC_PX a side); None: see problem
    problem: str = ""


def read_image(path: str, cached_only: bool = False) -> SampleImage | None:
    """The image at `path`, decoded once while the file stays the same (the newest
    CACHE_SIZE files are kept). `cached_only`: None instead of decoding (the app thread asks
    so, and has a worker decode what is missing)."""
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return SampleImage(path, problem="image missing")
    if not stat.S_ISREG(found.st_mode):  # a folder, or a pipe that would never end
        return SampleImage(path, problem="image missing (not a file)")
    key = (path, found.st_mtime_ns, found.st_size)
    with _LOCK:
        image = _CACHE.get(key)
        if image is not None:
            _CACHE.move_to_end(key)
            return image
    if cached_only:
        return None
    image = _decoded(path)
    with _LOCK:
        _CACHE[key] = image
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return image


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def _decoded(path: str) -> SampleImage:
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
