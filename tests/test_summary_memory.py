"""Run summaries stream events.jsonl: a big file is summarised in bounded memory, and a run whose
folder cannot hold a summary cache (read-only) is still read only once per process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from benchmarks.bench_follow import write_events
from tests.read_only import read_only
from tui_tune.events import encode, make_event
from tui_tune.rundir import RunDir
from tui_tune.runs import follow
from tui_tune.runs.status import run_status
from tui_tune.runs.summary import DISK_CACHE_MIN_BYTES

PEAK_GROWTH = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from tui_tune.runs.summary import SummaryCache
    def peak_mib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    before = peak_mib()
    summary = SummaryCache(persist=False).summary(Path(sys.argv[1]))
    print(summary.step, summary.events, peak_mib() - before)
""")


def test_a_big_file_is_summarised_in_bounded_memory(tmp_path):
    """300,000 events (70 MiB): parsed whole, they took ~290 MiB more; streamed, ~50."""
    path = tmp_path / "events.jsonl"
    write_events(path, 300_000)
    out = subprocess.run([sys.executable, "-c", PEAK_GROWTH, str(path)], capture_output=True,
                         text=True, check=True, timeout=300)
    step, events, grown_mib = out.stdout.split()
    assert (int(step), int(events)) == (299_999, 300_000)
    assert float(grown_mib) < 120, f"summary grew the process by {grown_mib} MiB"


def test_status_checks_of_a_read_only_run_read_its_events_once(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    now = time.time()
    lines = [encode({**make_event("start", steps_total=100_000), "t": now - 100})]
    lines += [encode({**make_event("step", step=i, loss=1.0), "t": now - 100 + i * 0.004})
              for i in range(1, 20_000)]
    (run_dir / "events.jsonl").write_text("".join(lines))
    assert (run_dir / "events.jsonl").stat().st_size > DISK_CACHE_MIN_BYTES
    opened = []

    def counting_open(file, *args, **kwargs):
        opened.append(str(file))
        return open(file, *args, **kwargs)
    monkeypatch.setattr(follow, "open", counting_open, raising=False)
    with read_only(run_dir):
        statuses = [run_status(run_dir)]
        after_first = len(opened)
        statuses += [run_status(run_dir) for _ in range(3)]
    assert statuses == ["died"] * 4
    assert after_first > 0 and len(opened) == after_first  # nothing read again
    assert not RunDir(run_dir).summary_cache.exists()
