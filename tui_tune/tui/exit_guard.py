"""Ending the app when its terminal or session goes away: SIGHUP, SIGTERM, stdin EOF, EIO.

Signal handlers (and the driver's threads) only arm the watchdog and schedule the exit on the
event loop; all shutdown work happens there. The watchdog ends the process with os._exit if
the orderly exit has not finished within EXIT_BOUND_S: the app owns nothing a run needs
(runs are separate processes in their own sessions, never touched by closing the app), so
cutting a stuck shutdown short loses nothing.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import threading
import time
from collections.abc import Callable

EXIT_BOUND_S = 1.0  # from the hang-up to os._exit at the latest (goal: gone within 2 s)
SIGNALS = ("SIGHUP", "SIGTERM")


class Watchdog:
    """A daemon thread asleep on a pipe; arm() (one os.write, safe inside a signal handler,
    takes no Python lock) starts the countdown to os._exit. When it fires, `last_words()`
    gets a moment (put the terminal back) and says the exit code."""

    def __init__(self, last_words: Callable[[], int], bound_s: float = EXIT_BOUND_S):
        self.bound_s = bound_s
        self.last_words = last_words
        self._read, self._write = os.pipe()
        threading.Thread(target=self._wait, name="tui-tune-exit-watchdog", daemon=True).start()

    def arm(self) -> None:
        try:
            os.write(self._write, b"!")
        except OSError:
            pass  # armed many times over: the pipe is full, the countdown runs already

    def _wait(self) -> None:
        try:
            os.read(self._read, 1)
        except OSError:
            return
        time.sleep(self.bound_s)
        try:
            code = int(self.last_words())
        except Exception:  # noqa: BLE001 - exiting is all that is left to do
            code = 0
        os._exit(code)


class ExitGuard:
    """Turns a hang-up from any source into one call of `on_hang_up(reason)` on the loop."""

    def __init__(self) -> None:
        self._on_hang_up: Callable[[str], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._installed = False
        self.watchdog: Watchdog | None = None
        self._exit_code: Callable[[], int] = lambda: 0
        # run by the watchdog before it cuts the exit short (the driver puts the terminal back)
        self.before_cut: dict[str, Callable[[], None]] = {}

    def install(self) -> None:
        """Handle SIGHUP and SIGTERM, watch stdin for a hang-up and start the watchdog. Called
        from the main thread first thing, so that startup is covered too; tests that open the
        app headless do not call it and leave the process's signals alone."""
        if self.watchdog is None:
            self.watchdog = Watchdog(self._last_words)
            threading.Thread(target=self._watch_stdin, name="tui-tune-stdin-hangup",
                             daemon=True).start()
        for name in SIGNALS:
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), self._signalled)
        self._installed = True

    def attach(self, loop: asyncio.AbstractEventLoop, on_hang_up: Callable[[str], None],
               exit_code: Callable[[], int] = lambda: 0) -> None:
        """The app runs (called on its loop): from now on a hang-up is its to handle, and
        `exit_code()` is what the watchdog exits with. Handlers are put back in case the
        driver replaced them (textual-serve's WebDriver registers its own SIGTERM handler)."""
        if self._installed:
            self.install()
        self._exit_code = exit_code
        self._on_hang_up = on_hang_up
        self._loop = loop

    def _last_words(self) -> int:
        for action in list(self.before_cut.values()):
            try:
                action()
            except Exception:  # noqa: BLE001, S110 - best effort, the exit comes next anyway
                pass
        return self._exit_code()

    def _signalled(self, signum: int, _frame) -> None:
        self.report(signal.Signals(signum).name)

    def _watch_stdin(self) -> None:
        """Wait for stdin to hang up (POLLHUP: the pty's master or the pipe's writer closed)
        without reading it: typed-ahead keys stay for the app. The driver also notices, but
        only once it runs; this covers the seconds of startup before."""
        if not hasattr(select, "poll"):
            return  # Windows: the driver's input thread is all there is
        poller = select.poll()
        try:
            poller.register(0, 0)  # no events asked for: POLLHUP and POLLERR come anyway
            events = poller.poll()
        except (OSError, ValueError):
            return
        if any(mask & (select.POLLHUP | select.POLLERR) for _, mask in events):
            self.report("stdin hung up")

    def report(self, reason: str) -> None:
        """The terminal or session is gone. Safe from a signal handler and any thread."""
        if self.watchdog is not None:
            self.watchdog.arm()
        loop, on_hang_up = self._loop, self._on_hang_up
        if loop is None or on_hang_up is None:
            if self._installed:
                # The app is not up yet: nothing to keep, so end now, as these signals
                # would by default (they still do before install()).
                os._exit(0)
            return
        try:
            loop.call_soon_threadsafe(on_hang_up, reason)
        except RuntimeError:
            pass  # the loop is closed: the app is past its shutdown already


def serve_bounded(server) -> None:
    """textual-serve's `Server.serve()`, which also ends on SIGHUP (and a hang-up of its
    stdin) and always within the bound: its own graceful exit (SIGINT, SIGTERM) can wait a
    minute on open websockets. The apps it started are sent SIGTERM as it goes (they would
    also end on seeing their stdin close, but only after the server has gone, which on a
    loaded machine took longer than the bound), and those still there at the bound are
    killed: an app busy in a long call on a loaded machine may see its SIGTERM late."""
    guard = ExitGuard()
    guard.install()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # Server.serve() takes this one
    graceful_exit = server.request_exit
    ended: list = []  # the apps sent SIGTERM
    started: float | None = None  # when the exit began (time.monotonic())

    def bounded_exit() -> None:
        nonlocal started
        if guard.watchdog is not None:
            guard.watchdog.arm()
        if started is None:
            started = time.monotonic()
            ended.extend(end_served_apps())
        graceful_exit()  # raises aiohttp's GracefulExit out of the loop

    server.request_exit = bounded_exit  # what Server.serve() hands SIGINT and SIGTERM
    guard.before_cut["served apps"] = lambda: kill_left(ended, 0.0)
    guard.attach(loop, lambda _reason: bounded_exit())
    try:
        server.serve()
    finally:
        if started is not None:
            kill_left(ended, started + EXIT_BOUND_S - time.monotonic())


def served_apps() -> list:
    """This process's descendants in its own session: the apps textual-serve started (and
    the shell around each). A run an app launched has a session of its own and is left out:
    runs outlive the app and the server."""
    import psutil

    session = os.getsid(0)
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if os.getsid(child.pid) == session:
                found.append(child)
        except OSError:
            continue  # ended meanwhile
    return found


def end_served_apps() -> list:
    """SIGTERM to each served app; returns those it was sent to."""
    import psutil

    sent = []
    for app in served_apps():
        try:
            app.terminate()
        except psutil.Error:
            continue
        sent.append(app)
    return sent


def kill_left(apps: list, wait_s: float) -> None:
    """SIGKILL to those of `apps` still running after up to `wait_s` seconds."""
    import psutil

    _gone, alive = psutil.wait_procs(apps, timeout=max(wait_s, 0.0))
    for app in alive:
        try:
            app.kill()
        except psutil.Error:
            continue
