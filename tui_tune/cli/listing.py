"""`tui-tune ls`, `ps` and `logs`: commands that only read what runs and processes there are."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tui_tune.cli.common import REFRESH_S, warn_skipped
from tui_tune.rundir import RunDir
from tui_tune.runs.store import RunStore


def cmd_ls(args: argparse.Namespace, store: RunStore) -> int:
    summaries = store.list()
    warn_skipped(store)
    if args.json:
        import json

        from tui_tune.events import json_safe
        rows = [{k: v for k, v in vars(s).items() if k not in ("path", "extra")}
                for s in summaries]
        print(json.dumps(json_safe(rows), indent=1, default=str, allow_nan=False))
        return 0
    if not summaries:
        print(f"no runs in {store.root}; start one with `tui-tune run PRESET`.")
        return 0
    from rich.console import Console

    from tui_tune.cli.view import runs_table, table_width
    console = Console()
    if console.is_terminal:
        console.print(runs_table(summaries, console.width))
    else:  # piped: every column, one line per row whatever the width (`--json` for scripts)
        table = runs_table(summaries)
        Console(width=max(console.width, table_width(table)), color_system=None).print(table)
    return 0


def cmd_ps(args: argparse.Namespace, store: RunStore) -> int:
    from tui_tune.runs.procs import host_processes

    rows = host_processes()
    if args.json:
        import json
        print(json.dumps([vars(r) for r in rows], indent=1))
        return 0
    if not rows:
        print("no tui-tune process runs on this host.")
        return 0
    print(f"{'PID':>8} {'PPID':>8}  {'ROLE':<8}  {'STARTED':<19}  RUN DIRECTORY")
    for r in rows:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started))
        state = "" if r.dir_exists else "  (deleted: an orphan, `tui-tune stop PID` ends it)"
        print(f"{r.pid:>8} {r.ppid:>8}  {r.role:<8}  {started:<19}  {r.run_dir}{state}")
    return 0


def cmd_logs(args: argparse.Namespace, store: RunStore) -> int:
    from tui_tune.runs.status import run_status

    path = RunDir(store.resolve(args.run)).console_log
    offset = 0
    try:
        while True:
            offset = _print_from(path, offset)
            if not args.follow or run_status(path.parent) != "running":
                _print_from(path, offset)
                return 0
            time.sleep(REFRESH_S)
    except KeyboardInterrupt:
        return 0


def _print_from(path: Path, offset: int) -> int:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return offset
    if data:
        sys.stdout.write(data.decode("utf-8", errors="replace"))
        sys.stdout.flush()
    return offset + len(data)
