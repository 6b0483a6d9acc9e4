"""How fast EventFollower turns events.jsonl into events: a 1,000,000-line file, read cold.

Run: python -m benchmarks.bench_follow [LINES] (or `python -m benchmarks --only follow`). Prints a table; no asserts (goal >= 200k lines/s).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, Result
from tui_tune.events import encode, make_event
from tui_tune.rundir import RunDir
from tui_tune.runs.follow import EventFollower
from tui_tune.runs.store import RunStore


def write_events(path: Path, lines: int) -> int:
    """A realistic mix: step events with every contract field, an eval every 100 steps."""
    chunk = []
    with open(path, "w", encoding="utf-8") as handle:
        for step in range(1, lines + 1):
            if step % 100 == 0:
                event = make_event("eval", step=step, val_loss=1.9, perplexity=6.7,
                                   metric="perplexity", metric_value=6.7)
            else:
                event = make_event("step", step=step, epoch=step / 1000, loss=2.0 - step * 1e-6,
                                   lr=2e-4, grad_norm=0.71, tokens=step * 512, tokens_per_s=11034.5,
                                   step_time_s=0.046, mem_allocated_gib=0.0,
                                   mem_reserved_gib=0.0, mem_peak_gib=0.0)
            chunk.append(encode(event))
            if len(chunk) == 10000:
                handle.write("".join(chunk))
                chunk.clear()
        handle.write("".join(chunk))
    return path.stat().st_size


def time_follow(path: Path, batch: int | None) -> tuple[int, float]:
    start = time.perf_counter()
    total = 0
    with EventFollower(path) as follower:
        while True:
            events = follower.poll(max_events=batch)
            if not events:
                break
            total += len(events)
    return total, time.perf_counter() - start


def run(lines: int = 1_000_000) -> list[Result]:
    """The `make bench` section: cold read of the whole file, unbatched and in app-sized batches."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        size = write_events(path, lines)
        for label, batch in (("all at once", None), ("max_events=5000", 5000)):
            total, seconds = time_follow(path, batch)
            results.append(Result(f"follow events.jsonl, {label}", total / seconds, "lines/s",
                                  ">= 200000", f"{total:,} lines, {size / 2**20:.0f} MiB in "
                                  f"{seconds:.2f} s"))
        results.extend(time_listing(Path(tmp), path, lines))
    return results


def time_listing(tmp: Path, events: Path, lines: int) -> list[Result]:
    """`tui-tune ls` over one run with this file: first listing, then a new process's."""
    run_dir = tmp / "runs" / "20260101-000000-bench"
    run_dir.mkdir(parents=True)
    events.rename(run_dir / "events.jsonl")
    (run_dir / "run.json").write_text('{"status": "completed"}')
    child = ls_in_a_child(tmp / "runs")
    RunDir(run_dir).summary_cache.unlink(missing_ok=True)
    timings = []
    for _ in range(2):
        start = time.perf_counter()
        RunStore(tmp / "runs").list()  # a fresh store: only the disk cache carries over
        timings.append(time.perf_counter() - start)
    return [*child,
            Result("ls, run with a 1M-line events file, cold", timings[0], "s",
                   detail=f"{lines:,} lines read"),
            Result("ls, same run again (summary cache on disk)", timings[1], "s", "< 0.1",
                   f"{timings[0] / timings[1]:.0f}x faster than cold")]


LS_REPORTING_PEAK = """
import runpy, sys
sys.argv = ["tui-tune", "ls", "--json", "--runs-dir", sys.argv[1]]
try:
    runpy.run_module("tui_tune", run_name="__main__")
except SystemExit:
    pass
finally:  # VmHWM: this program's peak RSS (ru_maxrss would count the parent's fork too)
    from tui_tune.monitor.host import peak_rss_bytes  # (ls imports psutil too)
    print(peak_rss_bytes() // 1024, file=sys.stderr)
"""


def ls_in_a_child(root: Path) -> list[Result]:
    """`tui-tune ls --json` as a new process on a run without a summary cache (as on a
    read-only folder): its wall time and its own peak RSS."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", LS_REPORTING_PEAK, str(root)], cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         check=True)
    seconds = time.perf_counter() - start
    peak_mib = int(out.stderr.split()[-1]) / 1024  # kB
    return [Result("ls in a new process, 1M-line run, no summary cache", seconds, "s",
                   detail="summary streamed block by block"),
            Result("ls in a new process, 1M-line run: peak RSS", peak_mib, "MiB", "< 200",
                   "the whole process, imports included")]


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    for result in run(lines):
        print(result.row())


if __name__ == "__main__":
    main()
