"""`tui-tune rm` and `export`: delete a run's folder (asking first), or pack it for sharing
(a tar.gz, or with --merged/--adapter a Hugging Face folder written by train/export.py)."""

from __future__ import annotations

import argparse
import sys

from tui_tune.cli.common import fail
from tui_tune.rundir import RunDir
from tui_tune.runs.store import RunStore


def cmd_rm(args: argparse.Namespace, store: RunStore) -> int:
    from tui_tune.runs.control import RunBusy, check_deletable, delete

    run_dir = store.resolve(args.run)
    try:
        check_deletable(run_dir, force=args.force)  # refuse a live run before asking
        if not args.yes:
            if not sys.stdin.isatty():
                return fail(f"no terminal to confirm deleting {run_dir}; add -y to delete "
                            "it without asking.")
            answer = input(f"delete {run_dir} and everything in it? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                print("kept.", file=sys.stderr)
                return 0
        delete(run_dir, force=args.force)
    except RunBusy as error:
        return fail(str(error))
    print(f"deleted {run_dir.name}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace, store: RunStore) -> int:
    from tui_tune.runs.control import export
    from tui_tune.runs.status import run_status

    run_dir = store.resolve(args.run)
    if args.merged or args.adapter:
        return export_folders(args, run_dir)
    if args.checkpoint or args.force:
        return fail("--checkpoint and --force go with --merged DIR or --adapter DIR.")
    status = run_status(run_dir)
    if not RunDir(run_dir).final.is_dir():
        print(f"warning: {run_dir.name} has no final/ weights ({status}); the archive holds its "
              "config and events only.", file=sys.stderr)
    elif status == "running":
        print(f"warning: {run_dir.name} is still running; the archive holds its events so far.",
              file=sys.stderr)
    try:
        archive = export(run_dir, args.output)
    except OSError as error:
        return fail(f"cannot write the archive: {error}")
    print(archive)
    return 0


def export_folders(args: argparse.Namespace, run_dir) -> int:
    """--merged and --adapter: the output folders are checked first (no torch needed), then
    the heavy work runs in the worker's package, imported only here."""
    from tui_tune.runs.export_folder import ExportRefused, check_target

    if args.output:
        return fail("-o is the tar.gz's path; --merged and --adapter name their own folders.")
    try:
        for target in (args.merged, args.adapter):
            if target:
                check_target(target, run_dir, args.force)
    except ExportRefused as error:
        return fail(str(error))
    from tui_tune.train.errors import UserError
    from tui_tune.train.export import export_adapter, export_merged

    try:
        if args.adapter:
            print(export_adapter(run_dir, args.adapter, args.checkpoint, args.force))
        if args.merged:
            print(export_merged(run_dir, args.merged, args.checkpoint, args.force,
                                args.max_shard_size))
    except UserError as error:
        return fail(f"cannot export {run_dir.name}: {error}")
    return 0
