"""The app's own speed: first frame from process start (headless), and opening a run with
1,000,000 events (time to the first chart with data, to the full history, and peak RSS)."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, Result

BIG_RUN = Path(tempfile.gettempdir()) / "tui-tune-bench" / "run-1m"
EVENTS = 1_000_000

# The auto pilot starts once the app is ready: its first screen composed and drawn.
FIRST_FRAME = """
import sys
from tui_tune.tui.app import TuneApp
async def first_frame(pilot):
    print("ready", flush=True)
    pilot.app.exit()
TuneApp(runs_dir=sys.argv[1]).run(headless=True, size=(120, 40), auto_pilot=first_frame)
"""

OPEN_RUN = """
import resource, sys, time, psutil
from pathlib import Path
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.monitor import MonitorScreen
born = float(sys.argv[2])  # the parent's clock just before it started this process
async def measure(pilot):
    app = pilot.app
    first = None
    while True:
        await pilot.pause(0.02)
        if first is None and app.screen.watcher.first_drawn.is_set():
            first = time.time() - born  # set right after the refresh that drew the recent part
        if first is not None and not app.screen.history_loading:
            break
    full = time.time() - born
    await pilot.pause(0.5)
    rss = psutil.Process().memory_info().rss / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(first, full, rss, peak, app.screen.series.step_values("step").size)
    app.exit()
app = TuneApp(start=lambda: MonitorScreen(Path(sys.argv[1]), read_only=True, sample_gpus=False))
app.run(headless=True, size=(120, 40), auto_pilot=measure)
"""


def make_big_run(path: Path = BIG_RUN, events: int = EVENTS) -> Path:
    """A run with `events` step events (plus evals and samples), written once and reused."""
    marker = path / ".complete"
    if marker.exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "events.jsonl", "w", encoding="utf-8") as handle:
        handle.write(json.dumps({"v": 1, "t": 0.0, "kind": "start", "run_id": path.name,
                                 "world_size": 1, "devices": ["cpu"], "params_total": 1,
                                 "params_trainable": 1, "steps_total": events,
                                 "train_rows": 1, "val_rows": 1}) + "\n")
        for step in range(1, events + 1):
            handle.write(json.dumps(
                {"v": 1, "t": step * 0.1, "kind": "step", "step": step, "epoch": step / 1e4,
                 "loss": 2.5 * math.exp(-3 * step / events) + 0.05 * math.sin(step),
                 "lr": 1e-4, "grad_norm": 0.5 + 0.1 * math.cos(step), "tokens": 2048,
                 "tokens_per_s": 10000.0 + step % 100, "step_time_s": 0.2,
                 "mem_allocated_gib": 1.2, "mem_reserved_gib": 2.0, "mem_peak_gib": 1.5},
                separators=(",", ":")) + "\n")
            if step % 10_000 == 0:
                handle.write(json.dumps({"v": 1, "t": step * 0.1, "kind": "eval", "step": step,
                                         "val_loss": 2.0, "perplexity": 7.0,
                                         "metric": "perplexity", "metric_value": 7.0}) + "\n")
                handle.write(json.dumps({"v": 1, "t": step * 0.1, "kind": "sample",
                                         "step": step, "prompt": "What is 2 + 2?",
                                         "generation": "4", "reference": "4"}) + "\n")
    marker.touch()
    return path


def _python(code: str, *args: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=300)
    return [float(v) for v in out.stdout.split()]


def first_frame_s(runs_dir: Path) -> float:
    """Seconds from starting the process to the app's first drawn frame, timed by the parent
    (psutil's create_time is only as precise as the boot time, whole seconds)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", FIRST_FRAME, str(runs_dir)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.wait(timeout=60)
    return elapsed


def run() -> list[Result]:
    empty = Path(tempfile.mkdtemp(prefix="tui-tune-bench-runs-"))
    first_frame_s(empty)  # warm the file cache
    first_frame = statistics.median(first_frame_s(empty) for _ in range(5))
    run_dir = make_big_run()
    size_mb = (run_dir / "events.jsonl").stat().st_size / 2**20
    first, full, rss, peak, steps = _python(OPEN_RUN, str(run_dir), repr(time.time()))
    return [
        Result("app first frame (headless, from process start)", first_frame, "s", "< 1"),
        Result("open 1M-event run: recent curve drawn", first, "s", "< 2",
               f"{size_mb:.0f} MiB events.jsonl, from process start"),
        Result("open 1M-event run: whole history loaded", full, "s", "",
               f"{int(steps):,} steps in numpy columns"),
        Result("open 1M-event run: memory (RSS after load)", rss, "MiB", "< 300",
               f"peak RSS {peak:.0f} MiB"),
    ]


def run_gpu() -> list[Result]:
    return []


if __name__ == "__main__":
    for result in run():
        print(result.row())
