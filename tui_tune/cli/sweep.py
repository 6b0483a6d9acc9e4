"""`tui-tune sweep`: queue a preset's [sweep] grid, list sweeps, restart a killed runner, and
follow a sweep's runs until all have ended."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tui_tune.cli.common import fail
from tui_tune.runs.status import EXIT_CODES
from tui_tune.runs.store import RunStore


def cmd_sweep(args: argparse.Namespace, store: RunStore) -> int:
    from tui_tune.config.presets import resolve
    from tui_tune.runs.launch import LaunchError
    from tui_tune.runs.start import start_sweep
    from tui_tune.runs.sweep import list_sweeps

    if args.continue_sweep:
        return _continue_sweep(args, store)
    if args.list or not args.preset:
        for sweep in list_sweeps(store):
            runner = "runner alive" if sweep.runner_alive else "runner ended"
            print(f"{sweep.sweep_id}  ({sweep.preset}, {runner})")
            for run_id, status in sweep.statuses.items():
                print(f"  {run_id}  {status}")
        return 0
    resolved = resolve(args.preset, args.overrides)
    if not resolved.experiment.sweep:
        return fail(f"{args.preset} has no [sweep] grid; add one (e.g. --set "
                    "'sweep.training.lr=[1e-4, 2e-4]') or use `tui-tune run`.")
    preset_name = resolved.path.stem if resolved.path else args.preset
    try:
        sweep_dir, _ = start_sweep(store, resolved.experiment, preset_name)
    except LaunchError as error:
        return fail("cannot start the sweep:\n" + "\n".join(f"  {p}" for p in error.problems))
    print(f"sweep {sweep_dir.name} started (runs one after another):", file=sys.stderr)
    if args.detach:
        print(f"detached; `tui-tune stop {sweep_dir.name}` stops the whole sweep.",
              file=sys.stderr)
        return 0
    return _follow_sweep(store, sweep_dir)


def _continue_sweep(args: argparse.Namespace, store: RunStore) -> int:
    from tui_tune.runs.sweep import resolve_sweep, runner_process, start_runner

    sweep_dir = resolve_sweep(store, args.continue_sweep)
    if runner_process(sweep_dir) is None:
        start_runner(sweep_dir)
        print(f"sweep {sweep_dir.name}: runner started again", file=sys.stderr)
    if args.detach:
        return 0
    return _follow_sweep(store, sweep_dir)


def _follow_sweep(store: RunStore, sweep_dir: Path) -> int:
    from tui_tune.runs.sweep import sweep_summary

    shown: dict[str, str] = {}
    try:
        while True:
            summary = sweep_summary(store, sweep_dir)
            for run_id, status in summary.statuses.items():
                if shown.get(run_id) != status:
                    print(f"{run_id}  {status}", flush=True)
                    shown[run_id] = status
            if summary.done:
                worst = max((EXIT_CODES.get(s, 1) for s in summary.statuses.values()), default=0)
                return worst
            time.sleep(1.0)
    except KeyboardInterrupt:
        print(f"\ndetached; the sweep goes on (`tui-tune stop {sweep_dir.name}` stops it).",
              file=sys.stderr)
        return 0
