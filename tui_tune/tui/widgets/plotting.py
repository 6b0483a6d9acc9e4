"""Pure numpy helpers behind the charts: decimation, smoothing, braille packing, sparklines.

Kept apart from the widget so they can be measured and tested without a terminal.
"""

from __future__ import annotations

import math

import numpy as np

from tui_tune.tui.formatting import format_number  # noqa: F401 - re-exported

# Braille dot bits by (row in cell 0..3, column in cell 0..1).
BRAILLE_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint8)
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average (TensorBoard style, debiased), vectorised in blocks.

    `weight` is the smoothing factor in [0, 1): 0 returns the values, 0.9 is heavy.
    NaNs are carried through without poisoning later points.
    """
    values = np.asarray(values, dtype=np.float64)
    if weight <= 0 or values.size == 0:
        return values
    finite = np.isfinite(values)
    if not finite.all():  # NaN/inf points are skipped: they neither count nor decay the average
        result = np.full_like(values, np.nan)
        result[finite] = ema(values[finite], weight)
        return result
    alpha = 1.0 - weight
    clean = values
    out = np.empty_like(clean)
    norm = np.empty_like(clean)
    block = max(8, min(256, int(200 / -math.log10(weight)) if weight < 1 else 8))
    powers = weight ** np.arange(block, dtype=np.float64)
    state_v = state_n = 0.0
    for start in range(0, clean.size, block):
        x = clean[start:start + block]
        f = finite[start:start + block].astype(np.float64)
        n = x.size
        p = powers[:n]
        inv = 1.0 / p
        acc_v = np.cumsum(alpha * x * inv) * p + state_v * weight * p
        acc_n = np.cumsum(alpha * f * inv) * p + state_n * weight * p
        out[start:start + n] = acc_v
        norm[start:start + n] = acc_n
        state_v, state_n = acc_v[-1], acc_n[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return out / norm


def column_ranges(x: np.ndarray, y: np.ndarray, x_lo: float, x_hi: float,
                  columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min, max and last finite y per pixel column for points with x in [x_lo, x_hi] (x sorted).

    Decimating this way keeps spikes visible however many points fall into one column.
    Columns without finite points hold NaN. Column c holds the points nearest its centre; as x
    is sorted, its points are found by a binary search of its edges, and the min and max are
    reduced over views of y (NaN-skipping fmin/fmax), so no per-point array is made: a frame
    of 1,000,000 points costs a few passes over y, not a dozen temporaries.
    """
    lo_i = int(np.searchsorted(x, x_lo, side="left"))
    hi_i = int(np.searchsorted(x, x_hi, side="right"))
    xs, ys = x[lo_i:hi_i], y[lo_i:hi_i]
    mins = np.full(columns, np.nan)
    maxs = np.full(columns, np.nan)
    lasts = np.full(columns, np.nan)
    if ys.size == 0:
        return mins, maxs, lasts
    span = (x_hi - x_lo) or 1.0
    edges = x_lo + (np.arange(1, columns) - 0.5) * (span / max(columns - 1, 1))
    bounds = np.r_[0, np.searchsorted(xs, edges, side="left"), ys.size]
    used = np.flatnonzero(bounds[1:] > bounds[:-1])
    starts, ends = bounds[used], bounds[used + 1]
    with np.errstate(invalid="ignore"):
        mins[used] = np.fmin.reduceat(ys, starts)
        maxs[used] = np.fmax.reduceat(ys, starts)
    lasts[used] = ys[ends - 1]
    # rare: a column with inf in it, or whose last point is NaN/inf: redo it on its finite points
    odd = np.isinf(mins[used]) | np.isinf(maxs[used]) | (np.isfinite(mins[used])
                                                         & ~np.isfinite(lasts[used]))
    for index in np.flatnonzero(odd):
        segment = ys[starts[index]:ends[index]]
        finite = segment[np.isfinite(segment)]
        column = used[index]
        if finite.size:
            mins[column], maxs[column], lasts[column] = finite.min(), finite.max(), finite[-1]
        else:
            mins[column] = maxs[column] = lasts[column] = np.nan
    return mins, maxs, lasts


def last_finite(values: np.ndarray) -> float | None:
    """The last finite value, looking back from the end (a legend's value: no full pass)."""
    block = 1024
    for stop in range(values.size, 0, -block):
        tail = values[max(0, stop - block):stop]
        finite = tail[np.isfinite(tail)]
        if finite.size:
            return float(finite[-1])
    return None


def line_mask(mins: np.ndarray, maxs: np.ndarray, lasts: np.ndarray, y_lo: float,
              y_hi: float, rows: int) -> np.ndarray:
    """A rows x columns boolean pixel mask of the line (row 0 at the top).

    Each column fills from its min to its max, stretched to meet the previous column's
    last value so the line has no gaps.
    """
    span = (y_hi - y_lo) or 1.0
    mins, maxs, lasts = _bridge_gaps(mins, maxs, lasts)

    def to_row(v: np.ndarray) -> np.ndarray:
        return (rows - 1) - (v - y_lo) / span * (rows - 1)

    top, bottom, last = to_row(maxs), to_row(mins), to_row(lasts)
    prev = _forward_fill(last)
    prev = np.r_[np.nan, prev[:-1]]
    has_prev = np.isfinite(prev) & np.isfinite(top)
    top = np.where(has_prev, np.fmin(top, prev), top)
    bottom = np.where(has_prev, np.fmax(bottom, prev), bottom)
    top = np.round(top)
    bottom = np.round(bottom)
    row_index = np.arange(rows)[:, None]
    with np.errstate(invalid="ignore"):
        return (row_index >= top[None, :]) & (row_index <= bottom[None, :])


def _bridge_gaps(mins: np.ndarray, maxs: np.ndarray,
                 lasts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns between two points (fewer points than columns) get the straight line between."""
    valid = np.flatnonzero(np.isfinite(lasts))
    if valid.size < 2 or valid.size == lasts.size:
        return mins, maxs, lasts
    inside = np.arange(valid[0], valid[-1] + 1)
    gaps = inside[~np.isfinite(lasts[inside])]
    if gaps.size == 0:
        return mins, maxs, lasts
    filled = np.interp(gaps, valid, lasts[valid])
    mins, maxs, lasts = mins.copy(), maxs.copy(), lasts.copy()
    mins[gaps] = maxs[gaps] = lasts[gaps] = filled
    return mins, maxs, lasts


def _forward_fill(values: np.ndarray) -> np.ndarray:
    valid = np.isfinite(values)
    index = np.where(valid, np.arange(values.size), 0)
    np.maximum.accumulate(index, out=index)
    filled = values[index]
    filled[~np.maximum.accumulate(valid)] = np.nan
    return filled


def pack_braille(mask: np.ndarray) -> np.ndarray:
    """(4*H, 2*W) pixel mask -> (H, W) braille bit codes (0 = empty cell)."""
    rows, cols = mask.shape
    cells = mask.reshape(rows // 4, 4, cols // 2, 2)
    return np.einsum("hiwj,ij->hw", cells.astype(np.uint8), BRAILLE_BITS.astype(np.uint16)) \
        .astype(np.uint8)


def nice_ticks(lo: float, hi: float, count: int) -> list[float]:
    """Round tick values between lo and hi (about `count` of them)."""
    if not math.isfinite(lo) or not math.isfinite(hi) or count < 1:
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    count = int((hi - first) / step + 1e-9) + 1
    return [first + i * step for i in range(max(count, 0))]


def sparkline(values: np.ndarray | list[float], width: int = 12) -> str:
    """A one-line block sparkline of the last values, max-decimated to `width` characters."""
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    if data.size == 0 or width < 1:
        return ""
    if data.size > width:
        edges = np.linspace(0, data.size, width + 1).astype(np.int64)
        data = np.maximum.reduceat(data, edges[:-1])
    lo, hi = float(data.min()), float(data.max())
    if hi - lo < 1e-12:
        return SPARK_BLOCKS[3] * data.size
    levels = ((data - lo) / (hi - lo) * (len(SPARK_BLOCKS) - 1)).round().astype(int)
    return "".join(SPARK_BLOCKS[i] for i in levels)
