"""A run's model behind its own OpenAI-compatible endpoint, for the app's chat screen.

The app never imports torch, so it does not generate: it starts `tui-tune serve-model RUN
--port 0` as a child in a session of its own (a Ctrl-C in the terminal reaches the app, not
the model), reads the URL the server prints once it listens, talks HTTP to it (the same
protocol every other tool uses), and stops it when the chat closes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

URL = re.compile(r"https?://[^\s/]+")
START_TIMEOUT_S = 180.0  # loading a 7B model from a slow disk takes a while
STOP_GRACE_S = 10.0
LAST_LINES = 20  # of the server's output, kept for the message when it fails


class ModelServerError(RuntimeError):
    """The server did not come up; the message ends with its last lines of output."""


def serve_argv(run_dir: Path, checkpoint: str | None = None, base: bool = False) -> list[str]:
    """The command that serves `run_dir` (final/, a `step-N` checkpoint or, with `base`, the
    backbone alone) on a free port of 127.0.0.1."""
    run_dir = Path(run_dir).absolute()  # named inside its own runs folder, as the CLI wants
    argv = [sys.executable, "-m", "tui_tune", "serve-model", "--runs-dir", str(run_dir.parent),
            run_dir.name, "--port", "0"]
    if checkpoint:
        argv += ["--checkpoint", checkpoint]
    if base:
        argv.append("--base")
    return argv


class ModelServer:
    """One `serve-model` child: `start()` blocks until it listens (call it from a thread),
    `stop()` ends it and is safe to call at any time, more than once."""

    def __init__(self, run_dir: Path, checkpoint: str | None = None, base: bool = False,
                 argv: list[str] | None = None) -> None:
        self.argv = argv or serve_argv(run_dir, checkpoint, base)
        self.url: str | None = None
        self._process: subprocess.Popen | None = None
        self._lines: deque[str] = deque(maxlen=LAST_LINES)
        self._listening = threading.Event()
        self._output_ended = False

    def start(self, timeout_s: float = START_TIMEOUT_S) -> str:
        """Start the server; its base URL (http://127.0.0.1:PORT) once it listens."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._process = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
        threading.Thread(target=self._read_output, daemon=True).start()
        if not self._listening.wait(timeout_s) or self.url is None:
            ended = self._output_ended
            self.stop()
            reason = "stopped" if ended else f"did not listen within {timeout_s:.0f} s"
            tail = "\n".join(self._lines) or "(no output)"
            raise ModelServerError(f"the model server {reason}:\n{tail}")
        return self.url

    def _read_output(self) -> None:
        """Find the URL line, then keep draining (a full pipe would block the server)."""
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.append(line.rstrip())
            found = URL.search(line) if self.url is None else None
            if found:
                parts = urlsplit(found.group(0))
                self.url = f"{parts.scheme}://{parts.netloc}"
                self._listening.set()
        self._output_ended = True
        self._listening.set()  # it ended: start() stops waiting

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """SIGTERM the server's session, SIGKILL it if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
