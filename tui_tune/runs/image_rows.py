"""The image cells of a multimodal_causal_lm file: which image files a row names, and whether
each can be read as an RGB image, checked before launch (and by the worker's loader, the same
function) so that a bad image is reported with its file, row and path, not as a traceback in
the middle of training.

A cell holds one path or a list of them (a JSON list in a csv cell), relative to the data
file's folder or absolute; an empty cell is a text-only row. URLs are refused: runs read
everything offline. Pillow only (no torch): this is the app side.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SETTING = "dataset.image_column"
# integer / float pixels: Pillow's RGB conversion clips them to 0..255 (a 16-bit scan turns
# white), so they are refused rather than silently mangled
WIDE_MODES = ("I", "F")
URL_PREFIXES = ("http://", "https://", "ftp://", "s3://", "gs://", "hf://")


class ImageCellError(ValueError):
    """Why a row's image cell cannot be used (the message names the row and the path)."""


def cell_paths(cell: Any, number: int, column: str) -> list[str]:
    """The paths a cell names, as written: None/"" -> [], "a.png" -> ["a.png"], a list (or a
    JSON list in text) -> its items."""
    if cell is None:
        return []
    if isinstance(cell, str) and cell.strip().startswith("["):
        try:
            cell = json.loads(cell)
        except json.JSONDecodeError:
            raise ImageCellError(f"row {number}, column '{column}' starts like a JSON list of "
                                 f"paths but is not one: {cell[:80]!r}.") from None
    items = cell if isinstance(cell, (list, tuple)) else [cell]
    paths = []
    for item in items:
        if not isinstance(item, str):
            raise ImageCellError(f"row {number}, column '{column}' holds {item!r}, not an "
                                 "image path (text, or a list of paths).")
        if item.strip():
            paths.append(item.strip())
    return paths


def images_base(data_path: str) -> Path:
    """Where a data source's relative image paths start: a dataset folder itself, else the
    data file's folder."""
    path = Path(data_path).expanduser()
    return path if path.is_dir() else path.parent


def resolve(path: str, base: Path, number: int, column: str) -> Path:
    """A cell's path as a file: relative to the data file's folder; a URL is refused."""
    if path.lower().startswith(URL_PREFIXES):
        raise ImageCellError(f"row {number}, column '{column}': {path} is a URL; runs read "
                             "images offline: download it and name the local file.")
    return (base / Path(path).expanduser()).resolve()


def row_images(row: dict[str, Any], column: str, base: Path, number: int) -> list[Path]:
    return [resolve(p, base, number, column) for p in cell_paths(row.get(column), number,
                                                                 column)]


def image_problem(file: Path, shown: str, number: int, column: str) -> str | None:
    """Why the file cannot be an RGB image for the model (None when it can): missing, not an
    image Pillow reads, or in a mode that has no RGB conversion."""
    from PIL import Image, UnidentifiedImageError

    where = f"row {number}, column '{column}': {shown}"
    if not file.is_file():
        return f"{where} is not found (looked for {file})."
    try:
        with Image.open(file) as image:
            mode = image.mode
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        return f"{where} cannot be read as an image ({error})."
    if mode in WIDE_MODES or mode.startswith("I;"):
        return (f"{where} holds {mode} pixels (16 or 32 bits per value), which the model's "
                "8-bit RGB would clip; save it as 8-bit RGB or L.")
    try:
        Image.new(mode, (1, 1)).convert("RGB")
    except (ValueError, OSError):
        return f"{where} is in mode {mode}, which cannot be converted to RGB; save it as RGB."
    return None

