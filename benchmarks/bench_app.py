"""The app's own speed: first frame from process start (headless), the runs screen with 1,000
runs (time to the rows drawn, and to every row's details), and opening a run with 1,000,000
events (time to the first chart with data, to the full history, and peak RSS)."""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, Result
from tui_tune.rundir import RunDir

BIG_RUN = Path(tempfile.gettempdir()) / "tui-tune-bench" / "run-1m"
EVENTS = 1_000_000
MANY_RUNS = Path(tempfile.gettempdir()) / "tui-tune-bench" / "runs-1000"
RUN_COUNT = 1000

# The auto pilot starts once the app is ready: its first screen composed and drawn.
FIRST_FRAME = """
import sys
from tui_tune.tui.app import TuneApp
async def first_frame(pilot):
    print("ready", flush=True)
    pilot.app.exit()
TuneApp(runs_dir=sys.argv[1]).run(headless=True, size=(120, 40), auto_pilot=first_frame)
"""

# Every row's details: the complete listing is in (the pilot's pauses wait for the app's
# queued messages, so this is a little late, never early).
RUNS_DETAILED = """
import sys, time
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.runs import RunsScreen
born, want = float(sys.argv[2]), int(sys.argv[3])
async def detailed(pilot):
    app = pilot.app
    while not (isinstance(app.screen, RunsScreen) and len(app.screen.summaries) == want):
        await pilot.pause(0.05)
    print(time.time() - born)
    app.exit()
TuneApp(runs_dir=sys.argv[1]).run(headless=True, size=(120, 40), auto_pilot=detailed)
"""
CSI = re.compile(rb"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>]")

OPEN_RUN = """
import sys, time, psutil
from pathlib import Path
from tui_tune.monitor.host import peak_rss_bytes
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.monitor import MonitorScreen
born = float(sys.argv[2])  # the parent's clock just before it started this process
async def measure(pilot):
    app = pilot.app
    first = None
    while True:
        await pilot.pause(0.02)
        if first is None and app.screen.feed.first_drawn.is_set():
            first = time.time() - born  # set right after the refresh that drew the recent part
        if first is not None and not app.screen.history_loading:
            break
    full = time.time() - born
    await pilot.pause(0.5)
    rss = psutil.Process().memory_info().rss / 2**20
    peak = peak_rss_bytes() / 2**20  # VmHWM: ru_maxrss counts the parent's fork too
    print(first, full, rss, peak, app.screen.series.step_values("step").size)
    app.exit()
app = TuneApp(start=lambda: MonitorScreen(Path(sys.argv[1]), read_only=True, sample_gpus=False))
app.run(headless=True, size=(120, 40), auto_pilot=measure)
"""

# Keys in the editor's training tab at 120x40: each Tab press and each typed character, timed
# from the key to the app idle again (the pilot's press waits for the messages it caused),
# less what the pilot takes for a key nothing is bound to (its own pauses: ~0.17 s here).
EDITOR_KEYS = """
import statistics, sys, time
from tui_tune.tui.app import TuneApp
from tui_tune.tui.editor_state import EditorState
from tui_tune.tui.screens.editor import EditorScreen
async def keys(pilot):
    for _ in range(6):
        await pilot.press("f8")  # general -> ... -> training
    await pilot.pause(1.0)
    tabs, chars = [], []
    for _ in range(12):
        start = time.perf_counter(); await pilot.press("tab"); tabs.append(time.perf_counter() - start)
    await pilot.press("end")
    for key in "12345678":
        start = time.perf_counter(); await pilot.press(key); chars.append(time.perf_counter() - start)
    idle = []
    for _ in range(8):
        start = time.perf_counter(); await pilot.press("f12"); idle.append(time.perf_counter() - start)
    unbound = statistics.median(idle)
    print(statistics.median(tabs) - unbound, statistics.median(chars) - unbound)
    pilot.app.exit()
TuneApp(start=lambda: EditorScreen(EditorState.from_preset("demo-tiny"))).run(
    headless=True, size=(120, 40), auto_pilot=keys)
"""


def make_big_run(path: Path = BIG_RUN, events: int = EVENTS) -> Path:
    """A run with `events` step events (plus evals and samples), written once and reused,
    through the worker's own EventWriter (so it has the step index a real run has)."""
    marker = path / ".complete-2"  # 2: written with the step index
    if marker.exists():
        return path
    from tui_tune.event_writer import EventWriter
    path.mkdir(parents=True, exist_ok=True)
    for old in (path / "events.jsonl", RunDir(path).step_index, RunDir(path).history_cache):
        old.unlink(missing_ok=True)
    with EventWriter(path / "events.jsonl", flush_every_s=3600) as writer:
        writer.write("start", t=0.0, run_id=path.name, world_size=1, devices=["cpu"],
                     params_total=1, params_trainable=1, steps_total=events, train_rows=1,
                     val_rows=1)
        for step in range(1, events + 1):
            writer.write("step", t=step * 0.1, step=step, epoch=step / 1e4,
                         loss=2.5 * math.exp(-3 * step / events) + 0.05 * math.sin(step),
                         lr=1e-4, grad_norm=0.5 + 0.1 * math.cos(step), tokens=2048,
                         tokens_per_s=10000.0 + step % 100, step_time_s=0.2,
                         mem_allocated_gib=1.2, mem_reserved_gib=2.0, mem_peak_gib=1.5)
            if step % 10_000 == 0:
                writer.write("eval", t=step * 0.1, step=step, val_loss=2.0, perplexity=7.0,
                             metric="perplexity", metric_value=7.0)
                writer.write("sample", t=step * 0.1, step=step, prompt="What is 2 + 2?",
                             generation="4", reference="4")
                writer.flush()
    marker.touch()
    return path


def make_many_runs(path: Path = MANY_RUNS, count: int = RUN_COUNT) -> Path:
    """`count` copies of one small completed run (60 steps), written once and reused."""
    marker = path / ".complete"
    if marker.exists():
        return path
    from tui_tune.config.presets import builtin_dir, experiment_toml, resolve
    config = experiment_toml(resolve(str(builtin_dir() / "demo-tiny.toml")).experiment)
    events = [{"v": 1, "t": 0.0, "kind": "start", "run_id": "x", "world_size": 1,
               "devices": ["cpu"], "params_total": 1, "params_trainable": 1,
               "steps_total": 60, "train_rows": 1, "val_rows": 1}]
    events += [{"v": 1, "t": step * 0.5, "kind": "step", "step": step, "epoch": step / 60,
                "loss": 2.5 / (1 + step / 20), "lr": 1e-4, "grad_norm": 0.5, "tokens": 512,
                "tokens_per_s": 4000.0, "step_time_s": 0.5, "mem_allocated_gib": 0.5,
                "mem_reserved_gib": 0.75, "mem_peak_gib": 0.6} for step in range(1, 61)]
    events.append({"v": 1, "t": 31.0, "kind": "end", "status": "completed"})
    text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events)
    for n in range(count):
        run_id = f"20260101-{n // 3600:02d}{n // 60 % 60:02d}{n % 60:02d}-demo-tiny"
        run_dir = path / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.toml").write_text(config, encoding="utf-8")
        (run_dir / "events.jsonl").write_text(text, encoding="utf-8")
        (run_dir / "run.json").write_text(json.dumps({
            "run_id": run_id, "name": "demo-tiny", "preset": "demo-tiny",
            "status": "completed", "created_at": 1_767_225_600.0 + n}), encoding="utf-8")
    marker.touch()
    return path


def runs_drawn_s(runs_dir: Path, count: int, newest: str) -> float:
    """Seconds from starting `tui-tune` on a 120x40 pty to the terminal showing "Runs COUNT"
    and the newest run's row: what a user sees (the issue timed the same through tmux)."""
    import fcntl
    import pty
    import select
    import signal
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "TUI_TUNE_RUNS": str(runs_dir),
           "TUI_TUNE_CONFIG_DIR": str(runs_dir.parent / "config")}
    env.pop("TEXTUAL_DRIVER", None)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tui_tune", "--no-mouse"], cwd=ROOT,
                            stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)
    os.close(slave)
    seen, wanted = b"", (f"Runs {count}".encode(), newest.encode())
    try:
        while time.perf_counter() - start < 60:
            if select.select([master], [], [], 0.5)[0]:
                seen += os.read(master, 1 << 16)
                text = CSI.sub(b"", seen)
                if all(w in text for w in wanted):
                    return time.perf_counter() - start
        raise RuntimeError(f"the runs screen never showed {wanted}: {seen[-500:]!r}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        os.close(master)


def runs_detailed_s(runs_dir: Path, count: int) -> float:
    return _python(RUNS_DETAILED, str(runs_dir), repr(time.time()), str(count))[0]


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
    many = make_many_runs()
    few = make_many_runs(MANY_RUNS.with_name("runs-10"), 10)  # the same look, 10 runs
    newest = max(p.name for p in many.iterdir() if p.is_dir())
    newest_few = max(p.name for p in few.iterdir() if p.is_dir())
    runs_drawn_s(many, RUN_COUNT, newest)  # warm the file cache
    drawn = [(runs_drawn_s(few, 10, newest_few), runs_drawn_s(many, RUN_COUNT, newest))
             for _ in range(5)]  # back to back: the machine's load moves both alike
    shown_few = statistics.median(f for f, _ in drawn)
    shown = statistics.median(m for _, m in drawn)
    detailed = statistics.median(runs_detailed_s(many, RUN_COUNT) for _ in range(3))
    tab_s, char_s = _python(EDITOR_KEYS)
    return [
        Result("app first frame (headless, from process start)", first_frame, "s", "< 1"),
        Result("editor: a Tab press, training tab", tab_s * 1000, "ms", "< 100",
               "120x40 headless, key to idle less an unbound key's; median of 12 (0.2-0.6 s "
               "more before the footer and the form stopped rebuilding per key)"),
        Result("editor: a typed character, training tab", char_s * 1000, "ms", "< 100",
               "the same, into max_steps; median of 8 (0.3-0.8 s more before)"),
        Result("runs screen, 10 runs: rows drawn", shown_few, "s", "",
               "on a 120x40 pty, from process start to 'Runs 10' and the newest row shown"),
        Result(f"runs screen, {RUN_COUNT:,} runs: rows drawn", shown, "s", "< 1",
               f"the same, 'Runs {RUN_COUNT}'; median of 5, each right after the 10-run one"),
        Result(f"runs screen, {RUN_COUNT:,} runs: every row's details", detailed, "s", "",
               "headless: status, progress, loss, sparkline, read in the background"),
        *open_big_run(),
    ]


def open_big_run() -> list[Result]:
    """Open the 1M-event run as the worker wrote it (step index beside events.jsonl), then
    as a run without an index (hand-written or from an older tui-tune): first with no
    history cache (every line decoded, the cache written), then reopened from that cache."""
    run_dir = make_big_run()
    paths = RunDir(run_dir)
    size_mb = paths.events.stat().st_size / 2**20
    paths.history_cache.unlink(missing_ok=True)
    opens = [_python(OPEN_RUN, str(run_dir), repr(time.time())) for _ in range(3)]
    first, full, rss, peak, steps = sorted(opens, key=lambda o: o[1])[1]  # the median open
    aside = paths.step_index.with_name(paths.step_index.name + ".aside")
    paths.step_index.rename(aside)
    try:
        decoded = _python(OPEN_RUN, str(run_dir), repr(time.time()))[1]
        reopened = statistics.median(_python(OPEN_RUN, str(run_dir), repr(time.time()))[1]
                                     for _ in range(3))  # from the history cache just written
    finally:
        aside.rename(paths.step_index)
        paths.history_cache.unlink(missing_ok=True)
    return [
        Result("open 1M-event run: recent curve drawn", first, "s", "< 2",
               f"{size_mb:.0f} MiB events.jsonl, from process start"),
        Result("open 1M-event run: whole history loaded", full, "s", "< 2",
               f"{int(steps):,} steps from the step index the worker wrote; median of 3"),
        Result("open 1M-event run: memory (RSS after load)", rss, "MiB", "< 300",
               f"peak RSS {peak:.0f} MiB"),
        Result("open 1M-event run without a step index: first open", decoded, "s", "",
               "every line decoded (a hand-written run or one from before the index)"),
        Result("open 1M-event run without a step index: reopened", reopened, "s", "< 2",
               "step columns from the history cache the first open wrote; median of 3"),
    ]


def run_gpu() -> list[Result]:
    return []


if __name__ == "__main__":
    for result in run():
        print(result.row())
