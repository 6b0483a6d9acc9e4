"""`tui-tune run | ls | ps | watch | logs | stop | resume | rm | export | sweep`.

Runs are detached processes: this CLI only starts, watches and stops them, so Ctrl-C here or a
dropped SSH session never kills training. RUN is a run id or a unique prefix of one.
Exit codes of run, resume, watch and sweep follow the run status: 0 completed (or still running
when detaching), 1 failed, 2 usage or settings error, 3 stopped (also when stopped from the
Ctrl-C prompt), 4 out of memory, 5 died. `stop` exits 0 when the run ended stopped or completed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tui_tune.config import ConfigError
from tui_tune.rundir import RunDir
from tui_tune.runs.control import NotARun
from tui_tune.runs.launch import LaunchError
from tui_tune.runs.status import EXIT_CODES
from tui_tune.runs.store import RunNotFound, RunStore

USAGE_ERROR = 2
REFRESH_S = 0.25


def build_parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"tui-tune {command}", description=_DESCRIPTIONS[command],
                                     epilog=_EXIT_CODES_HELP if command in
                                     ("run", "resume", "watch", "sweep", "stop") else None)
    parser.add_argument("--runs-dir", metavar="DIR",
                        help="where runs live (default ./runs or $TUI_TUNE_RUNS)")
    if command in ("run", "sweep"):
        parser.add_argument("preset", nargs="?" if command == "sweep" else None,
                            help="preset name or path to a .toml file")
        parser.add_argument("--set", dest="overrides", action="append", default=[],
                            metavar="KEY=VALUE", help="override a setting, e.g. training.lr=2e-4")
    if command in ("run", "resume", "sweep"):
        parser.add_argument("--detach", action="store_true",
                            help="start it and return at once (follow later with `watch`)")
    if command == "sweep":
        parser.add_argument("--list", action="store_true", help="list sweeps and their runs")
        parser.add_argument("--continue", dest="continue_sweep", metavar="SWEEP",
                            help="restart the runner of a sweep whose runner was killed")
    if command in ("watch", "logs", "stop", "resume", "rm", "export"):
        parser.add_argument("run", metavar="RUN", help="run id, a unique prefix of it or the "
                            "path of a run in the runs folder" +
                            ("; or a sweep id, or a PID or run directory that `tui-tune ps` "
                             "lists" if command == "stop" else ""))
    if command == "logs":
        parser.add_argument("-f", "--follow", action="store_true",
                            help="keep printing new output until the run ends")
    if command == "stop":
        parser.add_argument("--grace", type=float, default=60.0, metavar="SECONDS",
                            help="time the run gets to checkpoint before it is killed (60)")
    if command == "rm":
        parser.add_argument("--force", action="store_true", help="stop a live run, then delete")
        parser.add_argument("-y", "--yes", action="store_true", help="do not ask to confirm")
    if command == "export":
        parser.add_argument("-o", "--output", type=Path, help="archive path or folder")
    if command in ("ls", "ps"):
        parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


_EXIT_CODES_HELP = ("exit codes follow the run's final status: 0 completed (or detached), 1 failed, "
                    "2 usage or settings error, 3 stopped, 4 out of memory, 5 died; `stop` exits "
                    "0 once the run is stopped.")
_DESCRIPTIONS = {
    "run": "Launch a run from a preset. Attached by default: a live view; Ctrl-C asks whether "
           "to stop the run or detach from it.",
    "ls": "List runs, newest first.", "watch": "Follow a run's live view, read-only.",
    "logs": "Print a run's console.log.", "stop": "Stop a run (checkpoint, then exit) or a sweep.",
    "resume": "Resume a stopped run from its newest checkpoint.",
    "rm": "Delete a run directory (asks first; -y where no terminal can ask).",
    "ps": "List every tui-tune process on this host with its run directory, also those whose "
          "run directory was deleted; `tui-tune stop PID` ends them.",
    "export": "Pack config, events and final weights into a tar.gz.",
    "sweep": "Queue and run every combination of a preset's [sweep] grid.",
}


def main(argv: list[str]) -> int:
    command, rest = argv[0], argv[1:]
    args = build_parser(command).parse_args(rest)
    store = RunStore(args.runs_dir)
    try:
        return _HANDLERS[command](args, store)
    except (RunNotFound, ConfigError, NotARun) as error:
        return _fail(str(error))
    except LaunchError as error:
        return _fail("cannot start the run:\n" + "\n".join(f"  {p}" for p in error.problems))
    except OSError as error:  # a read-only or full runs folder: one line, not a traceback
        return _fail(file_system_error(error, store.root))


def file_system_error(error: OSError, root: Path) -> str:
    """One line naming the folder and the cause ("No space left on device", "Read-only file
    system"): the runs folder when the failing file is in it (or unnamed), else the file."""
    cause = error.strerror or str(error) or type(error).__name__
    named = Path(error.filename) if isinstance(error.filename, str) else None
    root = root.absolute()
    if named is not None and named.is_absolute() and not named.is_relative_to(root):
        return f"{named}: {cause}"
    path = named.absolute() if named is not None else None  # rmtree names files by dir fd
    inside = f" (writing {path.relative_to(root)})" \
        if path is not None and path.is_relative_to(root) and path != root else ""
    return f"the runs folder {root}: {cause}{inside}"


def _fail(message: str) -> int:
    print(f"tui-tune: {message}", file=sys.stderr)
    return USAGE_ERROR


def _warn_skipped(store: RunStore) -> None:
    for warning in store.warnings:
        print(f"warning: {warning}", file=sys.stderr)


# -- run / resume / watch ---------------------------------------------------------------------
def cmd_run(args: argparse.Namespace, store: RunStore) -> int:
    from tui_tune.cli_preset import print_warnings
    from tui_tune.config.presets import resolve
    from tui_tune.runs.launch import launch

    resolved = resolve(args.preset, args.overrides)
    print_warnings(resolved.warnings)
    if resolved.experiment.sweep:
        return _fail(f"{args.preset} has a [sweep] grid: start it with `tui-tune sweep "
                     f"{args.preset}` (or override the swept settings).")
    preset_name = resolved.path.stem if resolved.path else args.preset
    run_dir = store.create(resolved.experiment, preset_name)
    try:
        launch(run_dir)
    except (LaunchError, OSError):
        import shutil
        shutil.rmtree(run_dir, ignore_errors=True)  # never started: leave no empty run behind
        raise
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
    from tui_tune.runs.cli_view import RunWatcher

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
                return EXIT_CODES.get(_stop_and_report(run_dir, 60.0), 1)
            if choice == "detach":
                return 0


def _show_live(watcher) -> object:
    from rich.console import Console
    from rich.live import Live

    from tui_tune.runs.cli_view import live_panel

    summary = watcher.summary()
    with Live(live_panel(summary), console=Console(), refresh_per_second=4,
              transient=False) as live:
        while summary.status == "running":
            time.sleep(REFRESH_S)
            summary = watcher.summary()
            live.update(live_panel(summary))
    return summary


def _show_plain(watcher) -> object:
    from tui_tune.runs.cli_view import plain_line

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
        answer = input().strip().lower()
    except (KeyboardInterrupt, EOFError):
        answer = "d"
    if answer.startswith("s"):
        return "stop"
    if answer.startswith("c"):
        return "continue"
    print(f"detached; `tui-tune watch {run_id}` follows it again.", file=sys.stderr)
    return "detach"


# -- stop / ls / logs / rm / export -----------------------------------------------------------
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
    status = _stop_and_report(run_dir, args.grace)
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
        return _fail(f"could not end {', '.join(str(p.pid) for p in left)} (not yours?)")
    print(f"{run_dir}: no process left", file=sys.stderr)
    return 0


def _stop_and_report(run_dir: Path, grace_s: float) -> str:
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


def cmd_ls(args: argparse.Namespace, store: RunStore) -> int:
    summaries = store.list()
    _warn_skipped(store)
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

    from tui_tune.runs.cli_view import runs_table
    Console().print(runs_table(summaries))
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


def cmd_rm(args: argparse.Namespace, store: RunStore) -> int:
    from tui_tune.runs.control import RunBusy, check_deletable, delete

    run_dir = store.resolve(args.run)
    try:
        check_deletable(run_dir, force=args.force)  # refuse a live run before asking
        if not args.yes:
            if not sys.stdin.isatty():
                return _fail(f"no terminal to confirm deleting {run_dir}; add -y to delete "
                             "it without asking.")
            answer = input(f"delete {run_dir} and everything in it? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                print("kept.", file=sys.stderr)
                return 0
        delete(run_dir, force=args.force)
    except RunBusy as error:
        return _fail(str(error))
    print(f"deleted {run_dir.name}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace, store: RunStore) -> int:
    from tui_tune.runs.control import export
    from tui_tune.runs.status import run_status

    run_dir = store.resolve(args.run)
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
        return _fail(f"cannot write the archive: {error}")
    print(archive)
    return 0


# -- sweep ------------------------------------------------------------------------------------
def cmd_sweep(args: argparse.Namespace, store: RunStore) -> int:
    from tui_tune.config.presets import resolve
    from tui_tune.runs.sweep import create_sweep, list_sweeps, start_runner

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
        return _fail(f"{args.preset} has no [sweep] grid; add one (e.g. --set "
                     "'sweep.training.lr=[1e-4, 2e-4]') or use `tui-tune run`.")
    preset_name = resolved.path.stem if resolved.path else args.preset
    sweep_dir = create_sweep(store, resolved.experiment, preset_name)
    start_runner(sweep_dir)
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


_HANDLERS = {"run": cmd_run, "ls": cmd_ls, "watch": cmd_watch, "logs": cmd_logs,
             "stop": cmd_stop, "resume": cmd_resume, "rm": cmd_rm, "export": cmd_export,
             "sweep": cmd_sweep, "ps": cmd_ps}
