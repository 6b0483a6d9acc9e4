"""A Linux terminal driver that ends the app when stdin closes.

Textual's own input thread keeps polling a closed stdin (select says readable, read returns
nothing), which is a busy loop that never ends; over SSH that is what a dropped connection
looks like. This driver exits the app instead.
"""

from __future__ import annotations

import os
import selectors
from codecs import getincrementaldecoder

from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver


class HangupAwareDriver(LinuxDriver):
    def run_input_thread(self) -> None:
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        try:
            while not self.exit_event.is_set():
                ready = selector.select(0.1)
                if ready and not self._read_once(parser, decode):
                    # not call_from_thread: it would wait while exiting joins this thread
                    self._loop.call_soon_threadsafe(self._exit_app)
                    return
                for event in parser.tick():
                    self.process_message(event)
        finally:
            selector.close()

    def _exit_app(self) -> None:
        if self._app.return_code is None:  # the app may be exiting already, with its own code
            self._app.exit(None, 0)

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
