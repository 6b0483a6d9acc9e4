"""The real app in a real pseudo-terminal, as over SSH: --no-mouse, colours without truecolor,
and `tui-tune --watch RUN`."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.tui.conftest import fixed_events, write_run
from tests.worker_env import worker_env

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


# -- hang-ups: a lost terminal or a signal ends the app within 2 s in any state -------------

GONE_WITHIN_S = 2.0
TRIES = 20
AT_ONCE = 4  # tries running side by side (keeps the file within its time on 2 cores)
MANY_RUNS = 400
ALT_SCREEN_ON, ALT_SCREEN_OFF = b"\x1b[?1049h", b"\x1b[?1049l"
CSI = re.compile(rb"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-B]|\x1b[=>]")


@pytest.fixture(scope="session")
def many_runs(tmp_path_factory) -> Path:
    """A runs folder of 400 copies of one small completed run: listing it keeps a freshly
    started app busy for its first seconds, the window where hang-ups used to hang it."""
    root = tmp_path_factory.mktemp("many-runs")
    template = write_run(root.parent / f"{root.name}-template", "20260101-000000-demo-tiny",
                         events=fixed_events(steps=60, total=60, status="completed"))
    for n in range(MANY_RUNS):
        shutil.copytree(template, root / f"20260101-{n // 60:02d}{n % 60:02d}00-demo-tiny")
    return root


def _family(proc: subprocess.Popen) -> list:
    """The processes `proc` started (psutil), to follow after it has gone."""
    import psutil
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        return []


def _gone(proc: subprocess.Popen, family: list) -> bool:
    """`proc` has exited (reaped here) and so has every process it had started (an orphan
    may stay a zombie until init reaps it: that counts as gone)."""
    import psutil
    if proc.poll() is None:
        return False
    for child in family:
        try:
            if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.Error:
            continue
    return True


def _session_processes(sid: int) -> list[int]:
    """Pids still alive (not zombies) in the session the app leads."""
    import psutil
    alive = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getsid(proc.pid) == sid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(proc.pid)
        except (ProcessLookupError, PermissionError):
            continue
    return alive


# Run in the new session before the app (then replaced by it, same pid): the pty becomes the
# controlling terminal, as under sshd or tmux, so closing the master makes the kernel send
# SIGHUP and SIGCONT. (No preexec_fn: the tries run in threads.)
TAKE_TERMINAL = ("import fcntl, os, sys, termios; fcntl.ioctl(1, termios.TIOCSCTTY, 0); "
                 "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


def hang_up_once(how: str, after_s: float, runs: Path, home: Path,
                 argv: tuple[str, ...] = ("-m", "tui_tune"), ready: bytes = b"",
                 keys: bytes = b"") -> str:
    """Start the app (python ARGV) on a pty (mouse on, as by default), wait until its screen
    shows `ready` (if given; then type `keys`), let it run `after_s`, then end its terminal or
    signal it (`how`: hangup, eof or sigterm); returns a complaint, or "" when every process of
    its session was gone within GONE_WITHIN_S (and after SIGTERM, with the terminal still
    there, the app left the alternate screen it had entered)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    stdin_r, stdin_w = os.pipe() if how == "eof" else (slave, None)
    env = {**os.environ, "TERM": "xterm-256color", "TUI_TUNE_RUNS": str(runs),
           "TUI_TUNE_CONFIG_DIR": str(home / "config")}
    proc = subprocess.Popen([sys.executable, "-c", TAKE_TERMINAL, *argv],
                            stdin=stdin_r, stdout=slave, stderr=slave, cwd=home, env=env,
                            start_new_session=True)
    os.close(slave)
    if stdin_w is not None:
        os.close(stdin_r)
    out = bytearray()

    def read_terminal(wait_s: float) -> None:
        if master is not None and select.select([master], [], [], wait_s)[0]:
            try:
                out.extend(os.read(master, 65536))
            except OSError:
                time.sleep(wait_s)
        else:
            time.sleep(wait_s)
    try:
        until = time.monotonic() + 60
        while ready and ready not in CSI.sub(b"", out) and proc.poll() is None:
            if time.monotonic() > until:
                return f"{how}: the screen never showed {ready!r}: {bytes(out[-300:])!r}"
            read_terminal(0.05)
        if keys:
            os.write(master, keys)
        until = time.monotonic() + after_s
        while time.monotonic() < until and proc.poll() is None:
            read_terminal(0.05)  # a terminal reads what the app writes
        if proc.poll() is not None:
            return f"{how} after {after_s:.2f}s: the app had exited already: {bytes(out[-300:])!r}"
        family = _family(proc)
        if how == "hangup":
            os.close(master)
            master = None
        elif how == "eof":
            os.close(stdin_w)
            stdin_w = None
        else:
            proc.send_signal(signal.SIGTERM)
        ended = time.monotonic()
        while not _gone(proc, family) and time.monotonic() < ended + GONE_WITHIN_S:
            read_terminal(0.02)
        left = _session_processes(proc.pid)  # also any child that left the process group
        if left:
            return f"{how} after {after_s:.2f}s: pids {left} still alive {GONE_WITHIN_S}s later"
        while master is not None and select.select([master], [], [], 0)[0]:
            try:
                out.extend(os.read(master, 65536))
            except OSError:
                break
        if how == "sigterm" and out.rfind(ALT_SCREEN_OFF) < out.rfind(ALT_SCREEN_ON):
            return (f"sigterm after {after_s:.2f}s: the terminal was left on the alternate "
                    f"screen; its last output: {bytes(out[-200:])!r}")
        return ""
    finally:
        for pid in _session_processes(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for fd in (master, stdin_w):
            if fd is not None:
                os.close(fd)


@pytest.mark.parametrize("how", ["hangup", "eof", "sigterm"])
def test_app_ends_within_2s_whenever_its_terminal_goes(how, many_runs, tmp_path):
    """20 times at moments spread over the first 3 s (startup, runs loading, runs shown)."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    moments = [3.0 * (n + rng.random()) / TRIES for n in range(TRIES)]
    rng.shuffle(moments)
    (tmp_path / "config").mkdir()
    with ThreadPoolExecutor(AT_ONCE) as pool:
        problems = [p for p in pool.map(
            lambda at: hang_up_once(how, at, many_runs, tmp_path), moments) if p]
    assert not problems, f"seed {seed}: " + "; ".join(problems)


@pytest.mark.parametrize("how", ["SIGHUP", "SIGTERM"])
def test_serve_and_its_app_end_within_2s(how, many_runs, tmp_path):
    """`tui-tune serve` with a browser connected (its app process listing 400 runs): a
    hang-up or SIGTERM of the server ends it and the app it started."""
    pytest.importorskip("textual_serve")
    aiohttp = pytest.importorskip("aiohttp")
    import asyncio
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "config").mkdir()
    env = {**os.environ, "TUI_TUNE_RUNS": str(many_runs),
           "TUI_TUNE_CONFIG_DIR": str(tmp_path / "config")}
    token = "hang-up-test-token-0123"
    server = subprocess.Popen([sys.executable, "-m", "tui_tune", "serve", "--port", str(port),
                               "--token", token],
                              cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)

    async def browse_then_signal() -> list[int]:
        own = f"http://127.0.0.1:{port}"
        # a browser: the page with the token (which sets its cookie), then the websocket
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            for _ in range(200):  # until the server listens
                try:
                    async with session.get(f"{own}/?token={token}") as page:
                        assert page.status == 200
                    ws = await session.ws_connect(f"{own}/ws?width=80&height=24", origin=own)
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("tui-tune serve never listened")
            seen = b""
            while b"Runs" not in seen:  # the app runs and has drawn its runs screen
                message = await ws.receive(timeout=60)
                if message.type == aiohttp.WSMsgType.BINARY:
                    seen += message.data
            family = _family(server)
            assert any("tui_tune" in " ".join(p.cmdline()) for p in family), family
            server.send_signal(getattr(signal, how))
            sent = time.monotonic()
            while not _gone(server, family) and time.monotonic() < sent + GONE_WITHIN_S:
                await asyncio.sleep(0.02)
            left = [p.pid for p in family if not _gone(server, [p])]
            await ws.close()
            return left
    try:
        left = asyncio.run(browse_then_signal())
        assert server.poll() is not None and not left, \
            f"after {how}, {GONE_WITHIN_S}s later: serve {server.poll()}, its app {left}"
    finally:
        for pid in _session_processes(server.pid):
            os.kill(pid, signal.SIGKILL)
        server.wait(timeout=10)


# The real app (open_app: its driver, signals and exit) opened on one screen, as a user gets
# there: a launcher that gives TuneApp a first screen, then runs `tui-tune`.
ON_SCREEN = """
import sys
from pathlib import Path
from tui_tune.tui import app as tui_app
screen, runs = sys.argv[1], sorted(Path(sys.argv[2]).iterdir())[-2:]

def first_screen():
    if screen == "editor":
        from tui_tune.tui.editor_state import EditorState
        from tui_tune.tui.screens.editor import EditorScreen
        state = EditorState.from_preset("demo-tiny")
        state.set_value("training.lr", 0.000123)
        return EditorScreen(state)
    if screen == "monitor":
        from tui_tune.tui.screens.monitor import MonitorScreen
        return MonitorScreen(runs[-1])
    if screen == "compare":
        from tui_tune.tui.screens.compare import CompareScreen
        return CompareScreen(runs)
    from tui_tune.tui.screens.presets import PresetsScreen
    return PresetsScreen()

class OnScreen(tui_app.TuneApp):
    def __init__(self, **kwargs):
        super().__init__(start=first_screen, **kwargs)

    def on_mount(self):  # (TuneApp.on_mount runs too, after this one)
        self.call_after_refresh(self.over_it)

    def over_it(self):
        if screen == "dialog":
            from tui_tune.tui.screens.dialogs import ConfirmDialog
            self.push_screen(ConfirmDialog("Stop run x? A dialog is open.", "Stop"))
        elif screen == "help":
            self.action_help()

tui_app.TuneApp = OnScreen
from tui_tune.cli.app import open_app
sys.exit(open_app())
"""
SCREENS = {"editor": b"modified", "monitor": b"completed", "compare": b"Compare",
           "presets": b"demo-tiny", "dialog": b"A dialog is open", "help": b"Keys"}


@pytest.mark.parametrize("screen", sorted(SCREENS))
def test_hang_up_on_every_screen_ends_the_app_within_2s(screen, many_runs, tmp_path):
    (tmp_path / "config").mkdir()
    problem = hang_up_once("hangup", random.random(), many_runs, tmp_path,
                           ("-c", ON_SCREEN, screen, str(many_runs)), ready=SCREENS[screen])
    assert not problem, problem


def test_hang_up_in_watch_mode_ends_the_app_within_2s(many_runs, tmp_path):
    (tmp_path / "config").mkdir()
    run_id = max(p.name for p in many_runs.iterdir())
    problem = hang_up_once("hangup", random.random(), many_runs, tmp_path,
                           ("-m", "tui_tune", "--watch", run_id), ready=b"read-only")
    assert not problem, problem


def test_unsaved_editor_changes_survive_a_hang_up_and_the_next_start_offers_them(many_runs,
                                                                                  tmp_path):
    (tmp_path / "config").mkdir()
    problem = hang_up_once("hangup", 0.2, many_runs, tmp_path,
                           ("-c", ON_SCREEN, "editor", str(many_runs)), ready=b"modified")
    assert not problem, problem
    first = list((tmp_path / "config" / "recovery").glob("editor-*.json"))
    assert len(first) == 1 and "0.000123" in first[0].read_text()
    # the next start offers them; y opens the editor with them, still unsaved, so that
    # SIGTERM keeps them again (in a new file: the offered one is gone)
    problem = hang_up_once("sigterm", 1.0, many_runs, tmp_path, ready=b"Unsaved editor changes",
                           keys=b"y")
    assert not problem, problem
    again = list((tmp_path / "config" / "recovery").glob("editor-*.json"))
    assert len(again) == 1 and again != first and "0.000123" in again[0].read_text()


def test_the_server_ends_the_apps_it_started_and_never_a_run(tmp_path):
    """What `tui-tune serve` ends as it ends: its descendants in its own session (the apps
    textual-serve started) with SIGTERM, and with SIGKILL one still there at the bound (an
    app that does not see its SIGTERM in time); never a run (launched in a session of its
    own). Played in a process of its own, standing in for the server."""
    script = tmp_path / "server.py"
    script.write_text(
        "import json, subprocess, sys\n"
        "from tui_tune.tui.exit_guard import end_served_apps, kill_left, served_apps\n"
        "sleeper = [sys.executable, '-c', 'import time; time.sleep(60)']\n"
        "deaf = [sys.executable, '-c', 'import signal, time; '\n"
        "        'signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); '\n"
        "        'time.sleep(60)']\n"
        "app = subprocess.Popen(sleeper, stdout=subprocess.DEVNULL,\n"
        "                       stderr=subprocess.DEVNULL)\n"
        "late = subprocess.Popen(deaf, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n"
        "late.stdout.readline()  # its SIGTERM is ignored from here on\n"
        "run = subprocess.Popen(sleeper, start_new_session=True, stdout=subprocess.DEVNULL,\n"
        "                       stderr=subprocess.DEVNULL)\n"
        "listed = sorted(p.pid for p in served_apps())\n"
        "sent = end_served_apps()\n"
        "kill_left(sent, 0.5)\n"
        "print(json.dumps({'app': app.pid, 'late': late.pid, 'run': run.pid,\n"
        "                  'listed': listed, 'sent': sorted(p.pid for p in sent),\n"
        "                  'ends': {p.pid: int(p.wait(timeout=10)) for p in sent},\n"
        "                  'run_alive': run.poll() is None}))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=worker_env(), timeout=60, check=True).stdout
    seen = json.loads(out)
    try:
        assert seen["listed"] == seen["sent"] == sorted([seen["app"], seen["late"]])
        assert seen["ends"] == {str(seen["app"]): -signal.SIGTERM,
                                str(seen["late"]): -signal.SIGKILL}
        assert seen["run_alive"]
    finally:
        os.kill(seen["run"], signal.SIGKILL)
