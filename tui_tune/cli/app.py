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
    """Run the app in this terminal; returns the exit code. Closing it never stops a run.
    A hang-up, a lost terminal or SIGTERM ends it within the exit guard's bound."""
    from tui_tune.tui.exit_guard import ExitGuard
    guard = ExitGuard()
    guard.install()  # before the slow imports: a hang-up during startup ends it too
    if watch and (problem := watch_problem(watch, runs_dir)):
        print(problem, file=sys.stderr)
        return 1

    from tui_tune.tui.app import TuneApp
    app = TuneApp(runs_dir=runs_dir, watch=watch, exit_guard=guard)
    if few_colours():
        app.theme = "ansi-dark"  # the terminal's own 16 colours instead of approximations
    from tui_tune.tui import image_terminal
    image_terminal.prepare()  # Kitty/Sixel asked about now: Textual reads stdin once it runs
    if sys.platform != "win32":
        from textual.drivers.web_driver import WebDriver

        from tui_tune.tui.driver import HangupAwareDriver, ServedDriver
        if os.environ.get("TEXTUAL_DRIVER") is None:
            app.driver_class = HangupAwareDriver  # type: ignore[assignment]
        elif app.driver_class is WebDriver:  # under `tui-tune serve`
            app.driver_class = ServedDriver  # type: ignore[assignment]
    result = app.run(mouse=mouse)
    code = int(app.return_code) if app.return_code not in (None, 0) else int(result or 0)
    if app.hung_up:
        _exit_now(code)
    if app.exit_note:
        print(app.exit_note)
    return code


def watch_problem(run: str, runs_dir: str | None) -> str | None:
    """Why `--watch RUN` cannot open (said before the app takes the terminal), or None."""
    from tui_tune.runs.store import RunStore
    try:
        RunStore(runs_dir).resolve(run)
    except Exception as error:  # noqa: BLE001 - shown to the user, nothing opens
        return f"tui-tune --watch {run}: {error}"
    return None


def _exit_now(code: int) -> None:
    """After a hang-up the app has shut down and kept what it had to; what is left are helper
    threads reading run files, which the interpreter would wait for. Nothing to flush: the
    terminal is gone."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


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
    from tui_tune.tui.exit_guard import serve_bounded
    serve_bounded(server)  # Server.serve(), ending within a bound on SIGHUP/SIGTERM too
    return 0
