"""The real app in a real pseudo-terminal, as over SSH: --no-mouse, colours without truecolor,
and `tui-tune --watch RUN`."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")

MOUSE_ON = re.compile(rb"\x1b\[\?100[0236]h")  # xterm mouse reporting modes
TRUECOLOR = re.compile(rb"\x1b\[[0-9;]*[34]8;2;")
COLOUR_256 = re.compile(rb"\x1b\[[0-9;]*[34]8;5;")
ANY_COLOUR = re.compile(rb"\x1b\[[0-9;]*(3[0-7]|9[0-7]|4[0-7]|10[0-7])[;m]")


def run_in_pty(workdir, args: list[str], term: str, until: bytes, **env_extra) -> bytes:
    """Start `python -m tui_tune ARGS` on an 80x24 pty, read until `until` shows and the
    screen settles, then end it; returns everything it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items()
           if k not in ("COLORTERM", "NO_COLOR", "FORCE_COLOR", "TEXTUAL_COLOR_SYSTEM",
                        "TEXTUAL_DRIVER")}
    env.update(TERM=term, **env_extra)
    proc = subprocess.Popen([sys.executable, "-m", "tui_tune", *args], stdin=slave,
                            stdout=slave, stderr=slave, cwd=workdir, env=env,
                            start_new_session=True)
    os.close(slave)
    seen, settle_until = b"", None
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            if settle_until is None and until in seen:
                settle_until = time.monotonic() + 1.5  # later frames (charts, tables)
            if settle_until is not None and time.monotonic() > settle_until:
                break
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        os.close(master)
    assert until in seen, seen[-800:]
    return seen


def test_no_mouse_leaves_the_mouse_to_the_terminal(workdir):
    assert MOUSE_ON.search(run_in_pty(workdir, [], "xterm-256color", b"Runs"))
    assert not MOUSE_ON.search(run_in_pty(workdir, ["--no-mouse"], "xterm-256color", b"Runs"))


def test_256_colour_terminal_gets_no_truecolor(workdir):
    out = run_in_pty(workdir, ["--no-mouse"], "xterm-256color", b"Runs")
    assert COLOUR_256.search(out) and not TRUECOLOR.search(out)
    truecolor = run_in_pty(workdir, ["--no-mouse"], "xterm-256color", b"Runs",
                           COLORTERM="truecolor")
    assert TRUECOLOR.search(truecolor)  # the check above can see truecolor when it is there


def test_16_colour_terminal_gets_only_the_16_ansi_colours(workdir):
    out = run_in_pty(workdir, ["--no-mouse"], "xterm", b"Runs")
    assert ANY_COLOUR.search(out)
    assert not TRUECOLOR.search(out) and not COLOUR_256.search(out)


def test_watch_opens_the_monitor_read_only(make_run):
    run = make_run("20260101-000000-demo-tiny")
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    out = run_in_pty(run.parent.parent, ["--no-mouse", "--watch", "20260101-000000"],
                     "xterm-256color", b"read-only")
    assert b"step 120/200" in out
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before
