"""A multimodal sample's images beside its text in the monitor: the first readable image as a
small picture (Kitty or Sixel graphics through textual-image where tui/image_terminal.py chose
them, else a half-block thumbnail), "+N" for the row's other images, and a one-line
"image missing: PATH" for each file that is gone or is no image.

Files are decoded once (tui/image_files.py; the monitor's feed decodes the newest samples'
images off the app thread), the half-block cells once per image: redraws and browsing back
to a step read nothing again.
"""

from __future__ import annotations

from functools import lru_cache

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Static

from tui_tune.tui import image_terminal
from tui_tune.tui.image_files import SampleImage, read_image

THUMB_COLS, THUMB_ROWS = 12, 6  # cells; half blocks make that 12 x 12 pixels


@lru_cache(maxsize=256)
def half_blocks(image: SampleImage, cols: int = THUMB_COLS, rows: int = THUMB_ROWS) -> Text:
    """The picture in at most cols x rows cells, two pixels a cell: `▀` in the upper pixel's
    colour on the lower one's."""
    thumb = image.picture.copy()
    thumb.thumbnail((cols, rows * 2))
    width, height = thumb.size
    data = thumb.tobytes()  # RGB, row by row
    pixels = [tuple(data[i:i + 3]) for i in range(0, len(data), 3)]
    out = Text(no_wrap=True, overflow="crop")
    for y in range(0, height, 2):
        for x in range(width):
            upper = pixels[y * width + x]
            lower = pixels[(y + 1) * width + x] if y + 1 < height else None
            out.append("▀", Style(color=Color.from_rgb(*upper),
                                  bgcolor=Color.from_rgb(*lower) if lower else None))
        if y + 2 < height:
            out.append("\n")
    return out


def missing_lines(images: list[SampleImage]) -> Text:
    """`image missing: PATH` for each image that cannot be shown."""
    out = Text()
    for image in images:
        if image.picture is None:
            out.append(f"{image.problem}: {image.path}\n", "red")
    return out


def picture_widget(image: SampleImage) -> Widget:
    """The picture as the chosen renderer draws it, in at most THUMB_COLS x THUMB_ROWS cells
    (its shape kept: the cells' size in pixels was measured before the app started)."""
    chosen = image_terminal.renderer()
    if chosen != image_terminal.HALFBLOCK:  # imported before the app started (prepare)
        from textual_image._terminal import get_cell_size
        from textual_image.widget import SixelImage, TGPImage
        widget = (TGPImage if chosen == image_terminal.KITTY else SixelImage)(
            image.picture, classes="sample-picture")
        widget.styles.width, widget.styles.height = graphic_cells(image.picture.size,
                                                                  get_cell_size())
        return widget
    return Static(half_blocks(image), classes="sample-picture")


def graphic_cells(pixels: tuple[int, int], cell: tuple[int, int]) -> tuple[int, int]:
    """(columns, rows) that show an image of `pixels` (width, height) in its shape, in at
    most THUMB_COLS x THUMB_ROWS cells of `cell` (width, height) pixels."""
    scale = min(THUMB_COLS * cell[0] / pixels[0], THUMB_ROWS * cell[1] / pixels[1])
    return (max(1, min(THUMB_COLS, round(pixels[0] * scale / cell[0]))),
            max(1, min(THUMB_ROWS, round(pixels[1] * scale / cell[1]))))


class SampleImages(Vertical):
    """The first readable image of a row, and "+N" for the others that can be shown."""

    DEFAULT_CSS = """
    SampleImages { width: auto; height: auto; margin-right: 1; }
    SampleImages .sample-picture { width: auto; height: auto; }
    SampleImages .more-images { width: auto; color: $text-muted; }
    """

    def __init__(self, images: list[SampleImage], **kwargs):
        super().__init__(**kwargs)
        self.images = [image for image in images if image.picture is not None]

    def compose(self) -> ComposeResult:
        yield picture_widget(self.images[0])
        if len(self.images) > 1:
            yield Static(f"+{len(self.images) - 1} more", classes="more-images")


class SampleRow(Horizontal):
    """One sample: its images on the left, its text (after any missing image) on the right."""

    DEFAULT_CSS = """
    SampleRow { height: auto; margin-bottom: 1; }
    SampleRow .sample-text { width: 1fr; height: auto; }
    """

    def __init__(self, paths: list[str], text: Text, **kwargs):
        super().__init__(**kwargs)
        self.images = [read_image(path) for path in paths]
        self.text = missing_lines(self.images) + text

    def compose(self) -> ComposeResult:
        if any(image.picture is not None for image in self.images):
            yield SampleImages(self.images)
        yield Static(self.text, classes="sample-text")
