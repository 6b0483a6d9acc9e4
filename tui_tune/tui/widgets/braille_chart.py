"""A braille line chart on numpy arrays: several series, legend, axes, log scale, smoothing, zoom.

Each terminal cell holds 2x4 braille dots. Points are decimated to min/max per pixel column,
so 1,000,000 points draw as fast as 1,000 and spikes stay visible. New data only marks the
chart dirty; a timer redraws it at most `max_fps` times a second.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from tui_tune.tui.widgets.plotting import (
    column_ranges,
    ema,
    format_number,
    last_finite,
    line_mask,
    nice_ticks,
    pack_braille,
)

# ANSI names: they look right on 16- and 256-colour terminals, not only truecolor ones.
PALETTE = ("cyan", "yellow", "magenta", "green", "red", "blue", "bright_white", "bright_cyan")
SMOOTHING_STEPS = (0.0, 0.6, 0.9, 0.99)
ZOOM_STEPS = (None, 10_000, 1_000, 100)
# every segment carries a style: Textual's NO_COLOR filter fails on a segment without one
PLAIN = Style()
GUTTER = 8
COST_FACTOR = 10  # wait at least 10x the last draw's time before the next one


@dataclass
class Series:
    name: str
    x: np.ndarray
    y: np.ndarray
    color: str
    _smoothed: tuple[int, float, np.ndarray] | None = field(default=None, repr=False)
    _logged: tuple[int, float, np.ndarray] | None = field(default=None, repr=False)

    def smoothed(self, weight: float) -> np.ndarray:
        """EMA of y, cached until the data or the weight changes."""
        if weight <= 0:
            return self.y
        cached = self._smoothed
        if cached is None or cached[0] != self.y.size or cached[1] != weight:
            self._smoothed = cached = (self.y.size, weight, ema(self.y, weight))
        return cached[2]

    def log10(self, weight: float) -> np.ndarray:
        """log10 of the (smoothed) values, NaN where not positive; cached like `smoothed`
        (at 1,000,000 points the transform costs more than the rest of a frame)."""
        cached = self._logged
        if cached is None or cached[0] != self.y.size or cached[1] != weight:
            y = self.smoothed(weight)
            with np.errstate(divide="ignore", invalid="ignore"):
                self._logged = cached = (self.y.size, weight,
                                         np.where(y > 0, np.log10(y), np.nan))
        return cached[2]


@dataclass
class Frame:
    """What one draw needs: pixel extents and the visible x/y ranges."""

    columns: int
    rows: int
    x_lo: float
    x_hi: float
    y_lo: float = math.nan
    y_hi: float = math.nan


WAITING_FOR_STEPS = "waiting for the first step"
NO_EVALUATION = "no evaluation yet"


def empty_text_for(choice: str) -> str:
    """What a chart of `choice` ("step.loss", "eval.val_loss") says before it has a point."""
    return NO_EVALUATION if choice.startswith("eval.") else WAITING_FOR_STEPS


class BrailleChart(Widget):
    """Line chart widget. Call `set_series` with numpy arrays (x sorted ascending)."""

    DEFAULT_CSS = """
    BrailleChart { height: 1fr; min-height: 6; }
    """

    def __init__(self, title: str = "", *, log_scale: bool = False, smoothing: float = 0.0,
                 window: int | None = None, max_fps: float = 4.0, name: str | None = None,
                 id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.title = title
        self.log_scale = log_scale
        self.smoothing = smoothing
        self.window = window
        self.max_fps = max_fps
        self.series: dict[str, Series] = {}
        # what an empty chart says: what it waits for (its screen sets "no evaluation yet"
        # for eval metrics); points that are all NaN/inf say so instead
        self.empty_text = WAITING_FOR_STEPS
        self._dirty = True
        self._strips: list[Strip] | None = None
        self._cached_size: tuple[int, int] = (0, 0)
        self._drawn_at = 0.0
        self._draw_cost = 0.0

    def on_mount(self) -> None:
        self.set_interval(1.0 / self.max_fps, self._redraw_if_dirty)

    # -- data -------------------------------------------------------------------------------
    def set_series(self, name: str, x: np.ndarray, y: np.ndarray, color: str | None = None) -> None:
        """Replace one series' data; drawn at the next timer tick, never immediately."""
        color = color or (self.series[name].color if name in self.series
                          else PALETTE[len(self.series) % len(PALETTE)])
        old = self.series.get(name)
        series = Series(name, np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64),
                        color)
        if old is not None and old._smoothed is not None and old.y.size == series.y.size:
            series._smoothed = old._smoothed
        self.series[name] = series
        self.mark_dirty()

    def clear(self) -> None:
        self.series.clear()
        self.mark_dirty()

    def mark_dirty(self) -> None:
        self._dirty = True

    def redraw_now(self) -> None:
        """Draw at the next refresh instead of the next timer tick (the first data)."""
        self._dirty = True
        self._redraw_if_dirty()

    def _redraw_if_dirty(self) -> None:
        """Redraw if the data changed, and never spend more than ~10% of the time drawing:
        a chart that takes 25 ms (1,000,000 points) redraws every 0.25 s at most."""
        if not self._dirty:
            return
        if time.monotonic() - self._drawn_at < COST_FACTOR * self._draw_cost:
            return  # stays dirty: drawn at a later tick
        self._strips = None
        self._dirty = False
        self.refresh()

    # -- toggles ----------------------------------------------------------------------------
    def toggle_log(self) -> None:
        self.log_scale = not self.log_scale
        self.mark_dirty()

    def cycle_smoothing(self) -> float:
        i = SMOOTHING_STEPS.index(self.smoothing) if self.smoothing in SMOOTHING_STEPS else 0
        self.smoothing = SMOOTHING_STEPS[(i + 1) % len(SMOOTHING_STEPS)]
        self.mark_dirty()
        return self.smoothing

    def cycle_zoom(self) -> int | None:
        i = ZOOM_STEPS.index(self.window) if self.window in ZOOM_STEPS else 0
        self.window = ZOOM_STEPS[(i + 1) % len(ZOOM_STEPS)]
        self.mark_dirty()
        return self.window

    # -- drawing ----------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        size = (self.content_size.width, self.content_size.height)
        if self._strips is None or size != self._cached_size:
            start = time.monotonic()
            self._strips = self.render_strips(*size)
            self._drawn_at = time.monotonic()
            self._draw_cost = self._drawn_at - start
            self._cached_size = size
        return self._strips[y] if y < len(self._strips) else Strip.blank(size[0], PLAIN)

    def render_strips(self, width: int, height: int) -> list[Strip]:
        """All lines of the chart at this size (public so benchmarks can time one frame)."""
        if width < GUTTER + 4 or height < 3:
            small = Strip([Segment("chart too small"[:width], PLAIN)])
            return [small.adjust_cell_length(width, PLAIN)] + \
                [Strip.blank(width, PLAIN)] * (height - 1)
        frame = Frame(columns=(width - GUTTER) * 2, rows=(height - 2) * 4,
                      x_lo=math.nan, x_hi=math.nan)
        prepared = self._prepare(frame)
        lines = [self._legend_line(width)]
        if not prepared:
            has_points = any(s.x.size for s in self.series.values())
            message = "no finite values" if has_points else self.empty_text
            lines.append(Strip([Segment(" " * GUTTER + message, Style(dim=True))])
                         .adjust_cell_length(width, PLAIN))
            return lines + [Strip.blank(width, PLAIN)] * (height - 2)
        codes, colors = self._cells(frame, prepared)
        lines.extend(self._plot_lines(frame, codes, colors, width))
        lines.append(self._x_axis_line(frame, width))
        return lines

    def _prepare(self, frame: Frame) -> list[tuple[Series, np.ndarray, np.ndarray, np.ndarray]]:
        """Per series: column min/max/last in plot units; sets the frame's x and y ranges."""
        visible = [s for s in self.series.values() if s.x.size]
        if not visible:
            return []
        frame.x_hi = max(float(s.x[-1]) for s in visible)
        if self.window:
            frame.x_lo = min(float(s.x[max(0, s.x.size - self.window)]) for s in visible)
        else:
            frame.x_lo = min(float(s.x[0]) for s in visible)
        out = []
        for s in visible:
            y = s.log10(self.smoothing) if self.log_scale else s.smoothed(self.smoothing)
            mins, maxs, lasts = column_ranges(s.x, y, frame.x_lo, frame.x_hi, frame.columns)
            if np.isfinite(mins).any():
                out.append((s, mins, maxs, lasts))
        if not out:
            return []
        frame.y_lo = float(min(np.nanmin(m) for _, m, _, _ in out))
        frame.y_hi = float(max(np.nanmax(m) for _, _, m, _ in out))
        if frame.y_hi - frame.y_lo < 1e-12:
            pad = abs(frame.y_hi) * 0.05 or 1.0
            frame.y_lo, frame.y_hi = frame.y_lo - pad, frame.y_hi + pad
        return out

    def _cells(self, frame: Frame, prepared) -> tuple[np.ndarray, np.ndarray]:
        """Braille codes per cell (OR of all series) and the index of the series drawn on top."""
        shape = (frame.rows // 4, frame.columns // 2)
        codes = np.zeros(shape, dtype=np.uint8)
        colors = np.full(shape, -1, dtype=np.int16)
        for index, (_, mins, maxs, lasts) in enumerate(prepared):
            mask = line_mask(mins, maxs, lasts, frame.y_lo, frame.y_hi, frame.rows)
            cell = pack_braille(mask)
            codes |= cell
            colors[cell != 0] = index
        self._drawn = [s for s, *_ in prepared]
        return codes, colors

    def _plot_lines(self, frame: Frame, codes: np.ndarray, colors: np.ndarray,
                    width: int) -> list[Strip]:
        labels = self._y_labels(frame, codes.shape[0])
        axis_style = Style(dim=True)
        styles = [Style(color=s.color) for s in self._drawn]
        chars = np.where(codes == 0, 0x20, 0x2800 + codes.astype(np.int32))
        strips = []
        for row in range(codes.shape[0]):
            segments = [Segment(labels.get(row, "").rjust(GUTTER - 1)[:GUTTER - 1] + "┤"
                                if row in labels else " " * (GUTTER - 1) + "│", axis_style)]
            row_chars = "".join(map(chr, chars[row]))
            row_colors = colors[row]
            breaks = np.flatnonzero(np.diff(row_colors)) + 1
            start = 0
            for end in [*breaks.tolist(), row_colors.size]:
                index = int(row_colors[start])
                style = styles[index] if index >= 0 else PLAIN
                segments.append(Segment(row_chars[start:end], style))
                start = end
            strips.append(Strip(segments, width))
        return strips

    def _y_labels(self, frame: Frame, cell_rows: int) -> dict[int, str]:
        ticks = nice_ticks(frame.y_lo, frame.y_hi, max(2, cell_rows // 3))
        span = (frame.y_hi - frame.y_lo) or 1.0
        labels: dict[int, str] = {}
        for tick in ticks:
            row = round((frame.y_hi - tick) / span * (cell_rows - 1))
            value = 10 ** tick if self.log_scale else tick
            labels[min(max(row, 0), cell_rows - 1)] = format_number(value, GUTTER - 1)
        return labels

    def _x_axis_line(self, frame: Frame, width: int) -> Strip:
        plot_width = width - GUTTER
        line = [" "] * plot_width
        for tick in nice_ticks(frame.x_lo, frame.x_hi, max(2, plot_width // 10)):
            span = (frame.x_hi - frame.x_lo) or 1.0
            col = int((tick - frame.x_lo) / span * (plot_width - 1))
            text = format_number(tick, 7)
            col = min(max(col - len(text) // 2, 0), plot_width - len(text))
            if all(c == " " for c in line[max(col - 1, 0):col + len(text) + 1]):
                line[col:col + len(text)] = text
        return Strip([Segment(" " * GUTTER + "".join(line), Style(dim=True))], width)

    def _legend_line(self, width: int) -> Strip:
        """Title, flags and each series' last value, in the first form that fits the width
        (issue 21: 80 columns): spaced, tight, names cut to a unique prefix, values alone;
        else cut with an ellipsis. Never cut in the middle of a value without saying so."""
        flags = [f for f, on in (("log", self.log_scale),
                                 (f"ema {self.smoothing:g}", self.smoothing > 0),
                                 (f"last {self.window}", bool(self.window))) if on]
        def head(title: str) -> list[Segment]:
            return [Segment(title, Style(bold=True))] + \
                ([Segment(f" [{', '.join(flags)}]", Style(dim=True))] if flags else [])
        first_word = self.title.split(" ")[0]  # "memory GiB" -> "memory", at the last
        entries = []
        for s in self.series.values():
            last = last_finite(s.y)
            entries.append((s, "-" if last is None else format_number(last)))
        short = _unique_prefixes([s.name for s in self.series.values()])
        forms = [(self.title, "  ━ ", lambda s, v: f"{s.name} {v}"),
                 (self.title, " ━", lambda s, v: f"{s.name} {v}"),
                 (self.title, " ━", lambda s, v: f"{short[s.name]} {v}"),
                 (self.title, " ━", lambda s, v: v),
                 (first_word, " ━", lambda s, v: f"{short[s.name]} {v}"),
                 (first_word, " ━", lambda s, v: v)]
        for title, glyph, label in forms:
            segments = head(title)
            for s, value in entries:
                segments.append(Segment(glyph, Style(color=s.color)))
                segments.append(Segment(label(s, value), PLAIN))
            line = Strip(segments)
            if line.cell_length <= width:
                break
        if line.cell_length > width:  # still too long: say it is cut
            line = line.crop(0, max(width - 1, 0)) if width > 1 else line.crop(0, width)
            line = Strip([*line, Segment("…", Style(dim=True))]) if width > 1 else line
        # Strip(segments, width) would only claim the width: a short legend then leaves the
        # previous screen's characters on the rest of the line. Pad or crop for real.
        return line.adjust_cell_length(width, PLAIN)


def _unique_prefixes(names: list[str]) -> dict[str, str]:
    """Each name's shortest prefix that no other name starts with (train/val -> t/v)."""
    out = {}
    for name in names:
        others = [n for n in names if n != name]
        size = next((k for k in range(1, len(name) + 1)
                     if not any(o.startswith(name[:k]) for o in others)), len(name))
        out[name] = name[:size]
    return out
