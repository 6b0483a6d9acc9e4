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
            _print_sweep(store, sweep)
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
        _print_queued(store, sweep_dir)
        print(f"detached; `tui-tune stop {sweep_dir.name}` stops the whole sweep.",
              file=sys.stderr)
        return 0
    return _follow_sweep(store, sweep_dir)


def _print_sweep(store: RunStore, sweep) -> None:
    """A sweep, its best combination, then each run: its values, status, loss, best val loss
    and eval metric, so the best combination can be picked."""
    from tui_tune.cli.view import eval_metric, number
    from tui_tune.runs.listing import swept_text
    from tui_tune.runs.sweep_groups import SweepGroup

    runner = "runner alive" if sweep.runner_alive else "runner ended"
    members = {run_id: store.summary(store.root / run_id) for run_id, status
               in sweep.statuses.items() if status != "deleted"}
    group = SweepGroup(sweep.sweep_id, list(members.values()))
    print(f"{sweep.sweep_id}  ({sweep.preset}, {runner}): {group.line()}")
    for run_id, status in sweep.statuses.items():
        s = members.get(run_id)
        if s is None:
            print(f"  {run_id}  {status}")
            continue
        metric = " ".join(eval_metric(s) or ("-", "-"))
        star = "*" if s is group.best else " "
        print(f" {star}{run_id}  {swept_text(s.swept) or '-'}  {status}  "
              f"loss {number(s.last_loss)}  val loss {number(s.best_val_loss)}  {metric}")


def _print_queued(store: RunStore, sweep_dir: Path) -> None:
    """The runs a detached sweep queued, with the values each sets (on stdout: one per line)."""
    from tui_tune.runs.listing import swept_text
    from tui_tune.runs.sweep import sweep_summary

    for run_id in sweep_summary(store, sweep_dir).run_ids:
        swept = store.summary(store.root / run_id).swept
        print(f"{run_id}  {swept_text(swept)}".rstrip(), flush=True)


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
