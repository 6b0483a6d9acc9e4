"""`tui-tune stop`: a run of this runs folder, a sweep, or a pid or run directory that
`tui-tune ps` lists (a run whose folder is gone or elsewhere: its processes are ended)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tui_tune.cli.common import fail
from tui_tune.runs.status import EXIT_CODES
from tui_tune.runs.store import RunNotFound, RunStore


def cmd_stop(args: argparse.Namespace, store: RunStore) -> int:
    """A run of this folder, a sweep, or a pid or run directory that `tui-tune ps` lists."""
    listed = _listed_run_dir(args.run) if args.run.isdigit() else None  # a pid before a prefix
    run_dir = _run_in_store(store, listed or args.run)
    if run_dir is None:
        listed = listed or _listed_run_dir(args.run)
        if listed is not None:  # deleted, or in another runs folder: end its processes
            return _stop_listed(listed, args.grace)
        if os.sep in args.run or args.run.startswith("."):
            store.resolve(args.run)  # raises: not a run of this runs folder
        return _stop_sweep(args, store)
    status = stop_and_report(run_dir, args.grace)
    return 0 if status in ("stopped", "completed") else EXIT_CODES.get(status, 1)


def _listed_run_dir(text: str) -> str | None:
    """The run directory of what `tui-tune ps` lists: a pid of it, or one of its run dirs."""
    from tui_tune.runs.procs import host_processes

    rows = host_processes()
    if text.isdigit():
        return next((r.run_dir for r in rows if r.pid == int(text)), None)
    wanted = os.path.realpath(text)
    return next((r.run_dir for r in rows if r.run_dir in (text, wanted)), None)


def _run_in_store(store: RunStore, run_dir: str) -> Path | None:
    try:
        return store.resolve(run_dir)
    except RunNotFound:
        return None


def _stop_listed(run_dir: str, grace_s: float) -> int:
    """End the processes of a run that is not in this runs folder (its directory deleted, or
    elsewhere): they are signalled, no file is written."""
    from tui_tune.runs.control import end_processes
    from tui_tune.runs.procs import marked_processes

    procs = marked_processes(run_dir)
    gone = "" if os.path.isdir(run_dir) else " (its directory is gone)"
    print(f"stopping the processes of {run_dir}{gone}: "
          f"{', '.join(str(p.pid) for p in procs) or 'none left'} ...", file=sys.stderr,
          flush=True)
    end_processes(procs, grace_s)
    left = marked_processes(run_dir)
    if left:
        return fail(f"could not end {', '.join(str(p.pid) for p in left)} (not yours?)")
    print(f"{run_dir}: no process left", file=sys.stderr)
    return 0


def stop_and_report(run_dir: Path, grace_s: float) -> str:
    from tui_tune.runs.control import stop

    print(f"stopping {run_dir.name} (up to {grace_s:g} s for its checkpoint) ...",
          file=sys.stderr, flush=True)
    status = stop(run_dir, grace_s=grace_s)
    print(f"{run_dir.name}: {status}", file=sys.stderr)
    return status


def _stop_sweep(args: argparse.Namespace, store: RunStore) -> int:
    from tui_tune.runs.sweep import resolve_sweep, stop_sweep

    try:
        sweep_dir = resolve_sweep(store, args.run)
    except RunNotFound:
        raise RunNotFound(f"no run or sweep matches '{args.run}' in {store.root}; "
                          "`tui-tune ls` lists runs, `tui-tune sweep --list` sweeps.") from None
    print(f"stopping sweep {sweep_dir.name} ...", file=sys.stderr, flush=True)
    for run_id, status in stop_sweep(store, sweep_dir, grace_s=args.grace).items():
        print(f"{run_id}: {status}")
    return 0
