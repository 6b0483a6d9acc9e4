"""How fast EventFollower turns events.jsonl into events: a 1,000,000-line file, read cold.

Run: python benchmarks/bench_follow.py [LINES]. Prints a table; no asserts (goal >= 200k lines/s).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tui_tune.events import encode, make_event
from tui_tune.runs.follow import EventFollower


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


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        size = write_events(path, lines)
        print(f"events.jsonl: {lines:,} lines, {size / 2**20:.1f} MiB")
        print(f"{'read':<28}{'events':>10}{'seconds':>10}{'lines/s':>12}")
        for label, batch in (("poll() all at once", None), ("poll(max_events=5000)", 5000)):
            total, seconds = time_follow(path, batch)
            print(f"{label:<28}{total:>10,}{seconds:>10.2f}{total / seconds:>12,.0f}")


if __name__ == "__main__":
    main()
