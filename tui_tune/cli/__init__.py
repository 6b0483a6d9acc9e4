"""`tui-tune`: no command opens the app; commands manage presets, demo data and runs.

Each command's module is imported only when used, so `tui-tune --help` stays fast and the
app side never pulls in torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tui_tune import __version__

# command -> (module with main(argv) -> int, one-line help)
COMMANDS = {
    "preset": ("tui_tune.cli.preset", "list, show, validate, diff and create presets"),
    "demo": ("tui_tune.cli.demo", "build the offline demo model, tokenizer and data"),
    "run": ("tui_tune.cli.runs", "launch a run from a preset (attached live view or --detach)"),
    "ls": ("tui_tune.cli.runs", "list runs, newest first"),
    "watch": ("tui_tune.cli.runs", "follow a run's live view, read-only"),
    "logs": ("tui_tune.cli.runs", "print a run's console.log (-f to follow)"),
    "stop": ("tui_tune.cli.runs", "stop a run gracefully (checkpoint, then exit)"),
    "resume": ("tui_tune.cli.runs", "resume a stopped run from its newest checkpoint"),
    "rm": ("tui_tune.cli.runs", "delete a finished run"),
    "ps": ("tui_tune.cli.runs", "list every tui-tune process on this host, orphans too"),
    "export": ("tui_tune.cli.runs", "pack a run (config, events, final weights) into a tar.gz"),
    "sweep": ("tui_tune.cli.runs", "queue and run every combination of a preset's [sweep]"),
    "predict": ("tui_tune.cli.runs", "predict every row of a csv/parquet file with a run"),
    "estimate": ("tui_tune.cli.estimate", "peak GPU memory, what fits, how long: before launch"),
    "serve-model": ("tui_tune.cli.runs", "serve a run's model as an OpenAI-compatible API"),
    "chat": ("tui_tune.cli.runs", "talk to a run's model in the shell"),
    "serve": ("tui_tune.cli.app", "serve the app in a browser via textual-serve (127.0.0.1)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tui-tune", description="Fine-tune language models from the terminal. "
        "Without a command, opens the app.")
    parser.add_argument("--version", action="version", version=f"tui-tune {__version__}")
    parser.add_argument("--watch", metavar="RUN", help="open the monitor of RUN, read-only")
    parser.add_argument("--no-mouse", action="store_true", help="do not capture the mouse")
    parser.add_argument("--runs-dir", metavar="DIR",
                        help="where runs live (default ./runs or $TUI_TUNE_RUNS)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The entry point; output cut short by a closed pipe (`tui-tune ls --json | head`) ends
    the command quietly, as Unix tools do, with no BrokenPipeError traceback."""
    try:
        return _dispatch(argv)
    except BrokenPipeError:
        _drop_stdout()
        return 0


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's flush at exit cannot fail again."""
    import os
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _dispatch(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) > 2 and argv[0] == "--runs-dir" and argv[2] in COMMANDS:
        argv = [argv[2], "--runs-dir", argv[1], *argv[3:]]  # `tui-tune --runs-dir D ls`
    elif len(argv) > 1 and argv[0].startswith("--runs-dir=") and argv[1] in COMMANDS:
        argv = [argv[1], argv[0], *argv[2:]]  # `tui-tune --runs-dir=D ls`
    if argv and argv[0] in COMMANDS:
        module = importlib.import_module(COMMANDS[argv[0]][0])
        return module.main(argv)
    args = build_parser().parse_args(argv)
    app = importlib.import_module("tui_tune.cli.app")
    return app.open_app(watch=args.watch, mouse=not args.no_mouse, runs_dir=args.runs_dir)
