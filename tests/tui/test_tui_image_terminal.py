"""Which renderer draws a multimodal run's images (tui/image_terminal.py), and that loading the
app never talks to the terminal: textual-image asks the terminal about graphics when it is
imported, which must happen only before the app starts, and only on a graphics terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from tui_tune.tui import image_terminal
from tui_tune.tui.image_terminal import HALFBLOCK, KITTY, SIXEL, guess

APP_MODULES = ("tui_tune.tui.app", "tui_tune.tui.screens.monitor",
               "tui_tune.tui.widgets.panels", "tui_tune.tui.widgets.sample_images",
               "tui_tune.tui.image_terminal", "tui_tune.cli.app")


@pytest.mark.parametrize(("environ", "is_tty", "expected"), [
    ({"TERM": "xterm-kitty"}, True, KITTY),
    ({"TERM": "xterm-256color", "KITTY_WINDOW_ID": "1"}, True, KITTY),
    ({"TERM": "xterm-ghostty"}, True, KITTY),
    ({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}, True, SIXEL),
    ({"TERM": "xterm-256color", "KONSOLE_VERSION": "230804"}, True, SIXEL),
    ({"TERM": "foot"}, True, SIXEL),
    ({"TERM": "xterm-256color"}, True, HALFBLOCK),  # over SSH: nothing says graphics
    ({"TERM": "tmux-256color", "TMUX": "/tmp/tmux-0/default,1,0"}, True, HALFBLOCK),
    ({"TERM": "xterm-kitty", "TMUX": "/tmp/tmux-0/default,1,0"}, True, HALFBLOCK),
    ({"TERM": "xterm-kitty"}, False, HALFBLOCK),  # piped: no terminal to draw on
    ({"TERM": "xterm-256color", "TUI_TUNE_IMAGES": "Sixel"}, True, SIXEL),
    ({"TERM": "xterm-kitty", "TUI_TUNE_IMAGES": "halfblock"}, True, HALFBLOCK),
    ({"TERM": "xterm-kitty", "TUI_TUNE_IMAGES": "pictures"}, True, KITTY),  # not a choice
])
def test_the_environment_suggests_the_renderer(environ, is_tty, expected):
    assert guess(environ, is_tty) == expected


def test_a_renderer_that_does_not_exist_is_refused_by_name():
    with pytest.raises(ValueError, match="TUI_TUNE_IMAGES: 'ascii' is none of kitty"):
        image_terminal.use("ascii")


def run_on_a_terminal(code: str, env: dict[str, str], answers: dict[bytes, bytes] | None = None,
                      pixels: tuple[int, int] = (0, 0)) -> tuple[bytes, int]:
    """Run `code` with stdin and stdout on a new 80x24 pseudo-terminal (`pixels`: its size in
    pixels, 0 where unknown) that answers each query in `answers` once it has seen it, and
    nothing else; what the code wrote to the terminal, and its exit status."""
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, *pixels))
    answers = dict(answers or {})
    process = subprocess.Popen([sys.executable, "-c", code], stdin=side, stdout=side,
                               stderr=subprocess.PIPE, env=env, close_fds=True)
    os.close(side)
    written = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            written += chunk
            for query in [q for q in answers if q in written]:
                os.write(main, answers.pop(query))
        elif process.poll() is not None:
            break
    status = process.wait(timeout=60)
    error = process.stderr.read().decode()
    os.close(main)
    assert status == 0, error
    return written, status


def quiet_env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TUI_TUNE_IMAGES")}
    return {**env, "PYTHONPATH": os.getcwd(), **more}


IMPORT_ALL = "import importlib\n" + "".join(
    f"importlib.import_module({name!r})\n" for name in APP_MODULES)


def test_importing_the_app_on_a_terminal_writes_nothing_to_it():
    """On a real terminal an import of textual-image writes its queries (ESC [ c, then a
    Kitty graphics query) and waits for answers: the app modules must not import it."""
    written, _ = run_on_a_terminal(IMPORT_ALL, quiet_env(TERM="xterm-kitty"))
    assert written == b""


def test_importing_the_app_with_stdout_not_a_terminal_writes_nothing():
    code = IMPORT_ALL + "import sys; assert 'textual_image' not in sys.modules, 'imported'"
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                            stdin=subprocess.DEVNULL, env=quiet_env(TERM="xterm-kitty"),
                            timeout=120)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def test_in_tmux_the_app_asks_the_terminal_nothing_and_draws_half_blocks():
    code = ("import sys; from tui_tune.tui import image_terminal as t; "
            "assert t.prepare() == 'halfblock'; assert 'textual_image' not in sys.modules")
    written, _ = run_on_a_terminal(code, quiet_env(TERM="tmux-256color",
                                                   TMUX="/tmp/tmux-0/default,1,0"))
    assert written == b""


def test_a_kitty_terminal_that_does_not_answer_gets_half_blocks():
    """$TERM says Kitty, so textual-image asks (before the app starts); no answer comes within
    its 0.1 s timeouts, so the thumbnails are half blocks, and nothing hangs."""
    code = ("from tui_tune.tui import image_terminal as t; "
            "assert t.prepare() == 'halfblock', t.renderer()")
    written, _ = run_on_a_terminal(code, quiet_env(TERM="xterm-kitty"))
    assert b"\x1b[c" in written  # it did ask: a Kitty that answers gets graphics


@pytest.mark.parametrize(("env", "answers", "expected"), [
    ({"TERM": "xterm-kitty"},  # no Sixel (no 4 in its attributes), graphics query OK
     {b"\x1b[c": b"\x1b[?62;22c", b";AAAA\x1b\\": b"\x1b_Gi=1;OK\x1b\\"}, "kitty"),
    ({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"},  # Sixel: 4 in its attributes
     {b"\x1b[c": b"\x1b[?65;4;22c"}, "sixel"),
])
def test_a_graphics_terminal_that_answers_gets_its_graphics(env, answers, expected):
    code = ("from tui_tune.tui import image_terminal as t; "
            f"assert t.prepare() == {expected!r}, t.renderer()")
    run_on_a_terminal(code, quiet_env(**env), answers, pixels=(800, 480))
