"""Chart frame time: our braille chart against textual-plotext on the same data (a ratio).

One frame = everything the widget does to produce its lines at a fixed size, with the data
already loaded: decimation + braille packing for ours, plotext's build() for textual-plotext.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from benchmarks.common import Result

WIDTH, HEIGHT = 100, 25


def loss_curve(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.arange(1, n + 1, dtype=np.float64)
    return x, 3.0 * np.exp(-x / (n / 4)) + 0.5 + rng.normal(0, 0.05, n)


def frame_ms(draw, repeats: int) -> float:
    draw()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        draw()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def ours(n: int) -> float:
    from tui_tune.tui.widgets.braille_chart import BrailleChart
    chart = BrailleChart("loss")
    x, y = loss_curve(n)
    chart.set_series("train", x, y)
    chart.set_series("val", x[::100], y[::100] + 0.1)
    return frame_ms(lambda: chart.render_strips(WIDTH, HEIGHT), 20)


def plotext(n: int) -> float:
    from rich.text import Text
    from textual_plotext import PlotextPlot
    plt = PlotextPlot().plt
    x, y = loss_curve(n)
    plt.plot(x.tolist(), y.tolist(), marker="braille")
    plt.plot(x[::100].tolist(), (y[::100] + 0.1).tolist(), marker="braille")

    def draw() -> None:
        plt.plotsize(WIDTH, HEIGHT)
        plt._set_size(WIDTH, HEIGHT)
        Text.from_ansi(plt.build())
    return frame_ms(draw, 3 if n > 20_000 else 5)


def run() -> list[Result]:
    results = []
    for n in (10_000, 100_000):
        mine, theirs = ours(n), plotext(n)
        results.append(Result(f"chart frame, {n:,} points ({WIDTH}x{HEIGHT})", mine, "ms",
                              "< 16", f"textual-plotext {theirs:.0f} ms: "
                              f"{theirs / mine:.0f}x slower"))
    million = ours(1_000_000)
    results.append(Result("chart frame, 1,000,000 points", million, "ms", "< 16",
                          f"{WIDTH}x{HEIGHT}, every frame decimated anew (no frame cache)"))
    return results


def run_gpu() -> list[Result]:
    return []


if __name__ == "__main__":
    for result in run():
        print(result.row())
