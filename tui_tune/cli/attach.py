"""`tui-tune run`, `resume` and `watch`: start a run (or not) and follow it until it ends.

Following shows the live view on a terminal and one plain line per step otherwise; Ctrl-C
detaches, asking first whether to stop the run when this command started it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tui_tune.cli.common import REFRESH_S, fail
from tui_tune.cli.stop import stop_and_report
from tui_tune.runs.status import EXIT_CODES
from tui_tune.runs.store import RunStore


def cmd_run(args: argparse.Namespace, store: RunStore) -> int:
    from tui_tune.cli.preset import print_layout_notes, print_warnings
    from tui_tune.config.presets import resolve
    from tui_tune.runs.start import start_run

    resolved = resolve(args.preset, args.overrides)
    print_warnings(resolved.warnings)
    print_layout_notes(resolved.experiment)
    if resolved.experiment.sweep:
        return fail(f"{args.preset} has a [sweep] grid: start it with `tui-tune sweep "
                    f"{args.preset}` (or override the swept settings).")
    preset_name = resolved.path.stem if resolved.path else args.preset
    run_dir = start_run(store, resolved.experiment, preset_name)
    print(f"started {run_dir.name}  ({run_dir})", file=sys.stderr)
    return _after_start(args, store, run_dir)


def cmd_resume(args: argparse.Namespace, store: RunStore) -> int:
    from tui_tune.runs.launch import resume

    run_dir = store.resolve(args.run)
    resume(run_dir)
    print(f"resumed {run_dir.name}", file=sys.stderr)
    return _after_start(args, store, run_dir)


def _after_start(args: argparse.Namespace, store: RunStore, run_dir: Path) -> int:
    if args.detach:
        print(f"detached: `tui-tune watch {run_dir.name}` follows it, "
              f"`tui-tune stop {run_dir.name}` stops it.", file=sys.stderr)
        return 0
    return follow_run(store, run_dir, may_stop=True)


def cmd_watch(args: argparse.Namespace, store: RunStore) -> int:
    return follow_run(store, store.resolve(args.run), may_stop=False)


def follow_run(store: RunStore, run_dir: Path, may_stop: bool) -> int:
    """Show the run until it ends; Ctrl-C detaches (asking first whether to stop, if allowed)."""
    from tui_tune.cli.view import RunWatcher

    watcher = RunWatcher(store, run_dir)
    watcher.wait_until_started()
    while True:
        try:
            summary = _show_live(watcher) if sys.stdout.isatty() else _show_plain(watcher)
            return _finish(summary)
        except KeyboardInterrupt:
            if not may_stop or not sys.stdin.isatty():
                print(f"\ndetached; {run_dir.name} goes on (`tui-tune stop {run_dir.name}` "
                      "stops it).", file=sys.stderr)
                return 0
            choice = _ask_stop_or_detach(run_dir.name)
            if choice == "stop":
                return EXIT_CODES.get(stop_and_report(run_dir, 60.0), 1)
            if choice == "detach":
                return 0


def _show_live(watcher) -> object:
    from rich.console import Console
    from rich.live import Live

    from tui_tune.cli.view import live_panel

    summary = watcher.summary()
    with Live(live_panel(summary), console=Console(), refresh_per_second=4,
              transient=False) as live:
        while summary.status == "running":
            time.sleep(REFRESH_S)
            summary = watcher.summary()
            live.update(live_panel(summary))
    return summary


def _show_plain(watcher) -> object:
    from tui_tune.cli.view import plain_line

    summary = watcher.summary()
    while True:
        if summary.step != watcher.last_step_printed and summary.step:
            print(plain_line(summary), flush=True)
            watcher.last_step_printed = summary.step
        if summary.status != "running":
            return summary
        time.sleep(1.0)
        summary = watcher.summary()


def _finish(summary) -> int:
    message = f"{summary.run_id}: {summary.status}"
    if summary.reason and summary.status != "completed":
        message += f"\n{summary.reason}"
    print(message, file=sys.stderr)
    return EXIT_CODES.get(summary.status, 1)


def _ask_stop_or_detach(run_id: str) -> str:
    print(f"\n{run_id} is still training. [s]top it (checkpoint first), [d]etach and leave "
          "it running, or [c]ontinue watching? ", end="", file=sys.stderr, flush=True)
    try:
        answer = _read_key().strip().lower()
    except (KeyboardInterrupt, EOFError):
        answer = "d"
    print(answer, file=sys.stderr)
    if answer.startswith("s"):
        return "stop"
    if answer.startswith("c"):
        return "continue"
    print(f"detached; `tui-tune watch {run_id}` follows it again.", file=sys.stderr)
    return "detach"


def _read_key() -> str:
    """One key press, no Enter needed (the terminal in cbreak mode for that one key; Ctrl-C
    still interrupts); a line where stdin is no terminal."""
    try:
        import termios
        import tty
    except ImportError:  # no termios (Windows)
        return input()
    try:
        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
    except (termios.error, OSError, ValueError):  # stdin is no terminal
        return input()
    try:
        tty.setcbreak(fd, termios.TCSANOW)  # (TCSAFLUSH would drop a key pressed already)
        key = os.read(fd, 1).decode(errors="replace")
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    if not key:
        raise EOFError
    return key
