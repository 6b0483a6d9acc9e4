"""Readers accept any line: every event kind with missing, null, NaN, string and huge values goes
through the run summary, `tui-tune ls` (table and --json) and `tui-tune watch` (plain and on a
terminal) without a traceback, a skipped run or invalid JSON."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from tests.hostile_events import BAD_VALUES, VALID, hostile_cases, hostile_events, write_lines
from tui_tune.cli.attach import follow_run
from tui_tune.cli.view import live_panel, plain_line, runs_table
from tui_tune.runs.status import EXIT_CODES
from tui_tune.runs.store import RunStore
from tui_tune.runs.summary import EventSummary, SummaryCache

T0 = 1_767_225_600.0


def valid(kind: str, t: float = T0, **more) -> dict:
    return {"v": 1, "t": t, "kind": kind, **VALID[kind], **more}


def run_with(root: Path, name: str, events: list[dict]) -> Path:
    """A launched run whose processes are gone: its status comes from the events alone."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"run_id": name, "launched_at": T0 - 10,
                                                  "created_at": T0 - 20}))
    write_lines(run_dir / "events.jsonl", events)
    return run_dir


@pytest.fixture(scope="module")
def hostile_runs(tmp_path_factory) -> Path:
    """One run per hostile event (first and last line, so it is both the first start and the
    latest of its kind), one per bad value holding every kind with that value, one with all."""
    root = tmp_path_factory.mktemp("hostile") / "runs"
    for i, event in enumerate(hostile_events()):
        run_with(root, f"one-{i:04d}-{event['kind']}", [event, valid("step", T0 + 1), event])
    for label, _ in BAD_VALUES:
        picked = [event for bad, event in hostile_cases() if bad == label]
        run_with(root, f"value-{label.replace(' ', '-')}",
                 [valid("start"), valid("step", T0 + 1), *picked])
    run_with(root, "all", [valid("start"), *hostile_events()])
    return root


def strict_json(text: str):
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def tui_tune(*args: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui_tune", *args, "--runs-dir", str(root)],
                          capture_output=True, text=True, timeout=300, check=False,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("event", hostile_events(), ids=lambda e: e["kind"])
def test_summary_takes_any_event_as_last_or_only_line(tmp_path, event):
    """Folded from dicts and from raw lines, through the disk cache and back."""
    path = write_lines(tmp_path / "events.jsonl", [valid("start"), valid("step", T0 + 1), event])
    summary = SummaryCache(persist=False).summary(path)
    dicts = EventSummary()
    dicts.update([event])
    for folded in (summary, dicts,
                   EventSummary.from_dict(json.loads(json.dumps(summary.to_dict(), default=str)))):
        assert isinstance(folded.step, int)
        assert folded.steps_total is None or isinstance(folded.steps_total, int)
        folded.elapsed_s(T0 + 5), folded.eta_s(T0 + 5), folded.stalled_s(T0 + 5)
    assert summary.step == 3  # no hostile step number replaces the last good one


def test_ls_and_ls_json_list_every_hostile_run(hostile_runs):
    count = len(list(hostile_runs.iterdir()))
    table = tui_tune("ls", root=hostile_runs)
    assert table.returncode == 0, table.stderr[-2000:]
    assert "Traceback" not in table.stderr and "skipping" not in table.stderr, table.stderr[-2000:]
    listed = tui_tune("ls", "--json", root=hostile_runs)
    assert listed.returncode == 0 and "skipping" not in listed.stderr, listed.stderr[-2000:]
    rows = strict_json(listed.stdout)
    assert len(rows) == count
    assert all(row["status"] in EXIT_CODES for row in rows)
    losses = {str(row["last_loss"]) for row in rows}
    assert {"nan", "inf"} <= losses  # spelled as the event contract spells them


def test_watch_shows_every_hostile_run_plain_and_live(hostile_runs, capsys):
    """In this process for each run: what `watch` does once the run is found (plain lines),
    then the live panel as a terminal gets it."""
    store = RunStore(hostile_runs)
    for run_dir in sorted(hostile_runs.iterdir()):
        assert follow_run(store, run_dir, may_stop=False) in EXIT_CODES.values()
        summary = store.summary(run_dir)
        console = Console(file=StringIO(), force_terminal=True, width=100)
        console.print(live_panel(summary))
        plain_line(summary)
    Console(file=StringIO(), width=100).print(runs_table(store.list()))
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("label", [label for label, _ in BAD_VALUES] + ["all"])
def test_watch_process_on_a_terminal_and_piped(hostile_runs, label):
    name = "all" if label == "all" else f"value-{label.replace(' ', '-')}"
    piped = tui_tune("watch", name, root=hostile_runs)
    assert piped.returncode in EXIT_CODES.values() and "Traceback" not in piped.stderr, \
        piped.stderr[-3000:]
    assert f"{name}: " in piped.stderr
    output, code = on_terminal([sys.executable, "-m", "tui_tune", "watch", name, "--runs-dir",
                                str(hostile_runs)])
    assert code in EXIT_CODES.values() and "Traceback" not in output, output[-3000:]
    assert name in output


def on_terminal(argv: list[str], timeout: float = 120) -> tuple[str, int]:
    """Run a command with a pseudo-terminal as stdin/stdout/stderr; (what it printed, rc)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        code = proc.wait(timeout=30)
    return b"".join(chunks).decode("utf-8", errors="replace"), code
