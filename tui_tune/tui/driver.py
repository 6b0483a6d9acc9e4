"""A Linux terminal driver that ends the app when its terminal goes away, and never hangs then.

Textual's LinuxDriver (8.2) has three ways to get stuck after a hang-up (docs/
textual-hangup-repro.md): its input thread keeps polling a closed stdin; its writer thread dies
on the first failed write (EIO on a hung-up pty) and every later write then blocks on a
bounded queue that nothing drains; and its SIGCONT handler, run on the SIGCONT the kernel sends
with SIGHUP, restarts application mode inside the signal handler, which starts a second writer
thread that dies the same way. This driver reports a closed stdin or a failed write as a
hang-up (the app's ExitGuard), keeps the writer thread draining, and resumes on SIGCONT only
after its own SIGTSTP suspended it.
"""

from __future__ import annotations

import os
import selectors
import sys
import termios
from codecs import getincrementaldecoder
from typing import IO

from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver
from textual.drivers.web_driver import WebDriver

# what LinuxDriver.stop_application_mode writes, at once: SGR reset, bracketed paste and
# mouse off, line wrap on, Kitty keys off, leave the alternate screen, cursor on, focus off
RESTORE = ("\x1b[0m\x1b[?2004l\x1b[?1000l\x1b[?1003l\x1b[?1015l\x1b[?1006l\x1b[?7h\x1b[<u"
           "\x1b[?1049l\x1b[?25h\x1b[?1004l")


class TerminalOutput:
    """The terminal as Textual's writer thread sees it. A failed write (EIO once the pty is
    hung up, EPIPE) marks the terminal lost and reports it once; later writes are dropped, so
    the writer thread lives on and keeps draining its queue."""

    def __init__(self, file: IO[str], on_lost):
        self._file = file
        self._on_lost = on_lost
        self.lost = False

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                self._file.write(text)
            except (OSError, ValueError) as error:
                self._lose(error)
        return len(text)

    def flush(self) -> None:
        if not self.lost:
            try:
                self._file.flush()
            except (OSError, ValueError) as error:
                self._lose(error)

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return self._file.isatty()

    def _lose(self, error: Exception) -> None:
        self.lost = True
        self._on_lost(f"terminal write failed: {error}")


def report_hang_up(driver, reason: str) -> None:
    """Tell the app (its ExitGuard, from any thread); apps without one just exit."""
    guard = getattr(driver._app, "exit_guard", None)
    if guard is not None:
        guard.report(reason)
    else:  # not call_from_thread: it would wait while exiting joins this thread
        driver._loop.call_soon_threadsafe(_exit_app, driver._app)


def _exit_app(app) -> None:
    if app.return_code is None:  # the app may be exiting already, with its own code
        app.exit(None, 0)


class HangupAwareDriver(LinuxDriver):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.output = TerminalOutput(sys.__stderr__, self._lost)
        self._file = self.output  # what start_application_mode hands its WriterThread

    def _lost(self, reason: str) -> None:
        report_hang_up(self, reason)

    def start_application_mode(self) -> None:
        super().start_application_mode()
        guard = getattr(self._app, "exit_guard", None)
        if guard is not None:
            guard.before_cut["terminal"] = self._restore_at_once

    def stop_application_mode(self) -> None:
        super().stop_application_mode()
        guard = getattr(self._app, "exit_guard", None)
        if guard is not None:  # restored: nothing left for the watchdog to put back
            guard.before_cut.pop("terminal", None)

    def _restore_at_once(self) -> None:
        """The exit is being cut short (watchdog thread): leave the alternate screen and
        raw mode straight away, past the writer thread, without waiting on the terminal."""
        if self.output.lost:
            return
        fd = self.output.fileno()
        os.set_blocking(fd, False)  # a terminal that takes nothing must not hold the exit
        try:
            os.write(fd, RESTORE.encode())
        except OSError:
            pass
        if self.attrs_before is not None:
            try:
                termios.tcsetattr(self.fileno, termios.TCSANOW, self.attrs_before)
            except termios.error:
                pass

    def _sigcont_application(self, *args) -> None:
        """Textual resumes application mode on every SIGCONT, inside the handler; the kernel
        sends one with the SIGHUP of a hang-up. Resume only what our SIGTSTP suspended."""
        if self._must_signal_resume and not self.output.lost:
            super()._sigcont_application(*args)

    def run_input_thread(self) -> None:
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        try:
            while not self.exit_event.is_set():
                ready = selector.select(0.1)
                if ready and not self._read_once(parser, decode):
                    self._lost("stdin closed")
                    return
                for event in parser.tick():
                    self.process_message(event)
        finally:
            selector.close()

    def _read_once(self, parser: XTermParser, decode) -> bool:
        """Feed one read of stdin to the parser; False once stdin has closed."""
        try:
            data = os.read(self.fileno, 4096)
        except OSError:
            return False
        if not data:
            return False
        for event in parser.feed(decode(data)):
            self.process_message(event)
        return True


class ServedDriver(WebDriver):
    """textual-serve's driver, except that the server going away (stdin EOF) ends the app:
    Textual's web driver just stops reading and leaves the app running, unseen."""

    def run_input_thread(self) -> None:
        super().run_input_thread()
        if not self.exit_event.is_set():  # not the app's own exit: the server went away
            report_hang_up(self, "textual-serve went away (stdin closed)")

    def write(self, data: str) -> None:
        try:
            super().write(data)
        except OSError as error:  # EPIPE: the server is gone
            report_hang_up(self, f"writing to textual-serve failed: {error}")

    def write_meta(self, data: dict[str, object]) -> None:
        try:
            super().write_meta(data)
        except OSError as error:
            report_hang_up(self, f"writing to textual-serve failed: {error}")
