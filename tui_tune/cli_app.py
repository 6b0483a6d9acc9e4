"""Opening the app (`tui-tune`, `tui-tune --watch RUN`) and serving it in a browser.

`tui-tune serve` runs the same app through textual-serve, bound to 127.0.0.1 unless --host
says otherwise: the page controls training runs, so it is not exposed by default, and only a
browser that opened the printed URL (it carries a token) gets in (tui_tune/serve_guard.py).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys


def open_app(watch: str | None = None, mouse: bool = True, runs_dir: str | None = None) -> int:
    """Run the app in this terminal; returns the exit code. Closing it never stops a run."""
    from tui_tune.tui.app import TuneApp

    app = TuneApp(runs_dir=runs_dir, watch=watch)
    if few_colours():
        app.theme = "ansi-dark"  # the terminal's own 16 colours instead of approximations
    driver = None
    if sys.platform != "win32" and os.environ.get("TEXTUAL_DRIVER") is None:
        from tui_tune.tui.driver import HangupAwareDriver
        driver = HangupAwareDriver
    if driver is not None:
        app.driver_class = driver  # type: ignore[assignment]
    result = app.run(mouse=mouse)
    if app.return_code not in (None, 0):
        return int(app.return_code)
    return int(result or 0)


def few_colours() -> bool:
    """True on terminals with 16 colours or fewer (no 256-colour or truecolor support)."""
    from rich.console import Console
    return Console().color_system in ("standard", "windows", None) and \
        not os.environ.get("NO_COLOR")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tui-tune serve",
                                     description="Serve the app in a web browser (textual-serve).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it to the network)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--runs-dir", metavar="DIR")
    parser.add_argument("--watch", metavar="RUN")
    parser.add_argument("--token", default=os.environ.get("TUI_TUNE_TOKEN"),
                        help="the secret the URL must carry (default: $TUI_TUNE_TOKEN, else a "
                             "new random one, printed at start)")
    return parser


def serve_token(parser: argparse.ArgumentParser, given: str | None) -> str:
    """The token to require: the one given (never empty), else a new random one."""
    from tui_tune.serve_guard import new_token

    if given is None:
        return new_token()
    if not given.strip():
        parser.error("--token (or TUI_TUNE_TOKEN) is empty; give a secret or leave it out "
                     "for a random one")
    return given


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv[1:])
    try:
        from tui_tune.serve_guard import GuardedServer
    except ImportError:
        print("tui-tune serve needs textual-serve: pip install 'tui-tune[serve]'", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "tui_tune"]
    if args.runs_dir:
        command += ["--runs-dir", args.runs_dir]
    if args.watch:
        command += ["--watch", args.watch]
    server = GuardedServer(shlex.join(command), host=args.host, port=args.port,
                           token=serve_token(parser, args.token), title="tui-tune")
    server.serve()
    return 0
