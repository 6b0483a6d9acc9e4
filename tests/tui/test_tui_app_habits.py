"""App-wide habits: no torch, help lists the screen's keys, keymap rebinding, command palette,
and a closed terminal (stdin EOF or SIGHUP) ends the app instead of spinning."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time

import pytest

from tests.tui.conftest import wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.help import HelpScreen
from tui_tune.tui.screens.presets import PresetsScreen
from tui_tune.tui.screens.runs import RunsScreen

HEAVY = ("torch", "transformers", "peft", "datasets", "accelerate", "bitsandbytes")


def test_app_never_imports_torch_and_co():
    # every module of the app, and the runs/monitor modules it imports lazily
    code = ("import importlib, pkgutil, sys, tui_tune.tui, tui_tune.cli.app\n"
            "for m in pkgutil.walk_packages(tui_tune.tui.__path__, 'tui_tune.tui.'):\n"
            "    importlib.import_module(m.name)\n"
            "for m in ('launch', 'control', 'sweep', 'status', 'store', 'preflight'):\n"
            "    importlib.import_module('tui_tune.runs.' + m)\n"
            "import tui_tune.monitor\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ})
    assert out.stdout.strip() == "[]"


async def test_help_lists_the_keys_of_the_current_screen(workdir):
    app = TuneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        table = app.screen.query_one("DataTable")
        ids = {str(table.get_row_at(i)[2]) for i in range(table.row_count)}
        assert {"runs.stop", "runs.delete", "runs.compare", "app.help"} <= ids
        await pilot.press("escape")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))


async def test_keymap_file_rebinds_an_action_by_id(workdir):
    (workdir / "config" / "keymap.toml").write_text('[keys]\n"runs.presets" = "k"\n')
    app = TuneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("p")  # no longer bound
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))


async def test_command_palette_offers_every_screen_action(workdir):
    app = TuneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"New experiment", "Stop", "Resume", "Delete", "Compare marked",
                "Edit a copy", "Help"} <= titles


def _start_in_pty(workdir):
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    proc = subprocess.Popen([sys.executable, "-m", "tui_tune", "--no-mouse"], stdin=slave,
                            stdout=slave, stderr=slave, cwd=workdir, env=env,
                            start_new_session=True)
    os.close(slave)
    deadline = time.monotonic() + 20
    seen = b""
    while time.monotonic() < deadline and b"Runs" not in seen:  # first frame drawn
        try:
            seen += os.read(master, 65536)
        except OSError:
            break
    assert b"Runs" in seen, seen[-500:]
    return proc, master


def _drain_until_exit(proc, master, timeout=15.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc.returncode
        try:
            os.read(master, 65536)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("the app did not exit")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
def test_sighup_ends_the_app(workdir):
    proc, master = _start_in_pty(workdir)
    try:
        proc.send_signal(signal.SIGHUP)
        _drain_until_exit(proc, master)
    finally:
        os.close(master)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
def test_closed_terminal_ends_the_app_without_spinning(workdir):
    proc, master = _start_in_pty(workdir)
    os.close(master)  # the terminal goes away: reads on the app's side fail
    deadline = time.monotonic() + 15
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if proc.poll() is None:
        proc.kill()
        raise AssertionError("the app kept running after its terminal closed")


def test_watch_of_unknown_run_exits_with_a_message(workdir):
    out = subprocess.run([sys.executable, "-m", "tui_tune", "--watch", "nope"], check=False,
                         capture_output=True, text=True, cwd=workdir, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert out.returncode != 0
    assert "nope" in (out.stdout + out.stderr)


def test_watch_of_a_folder_outside_the_runs_folder_is_refused(workdir, make_run):
    elsewhere = make_run("20260101-000000-demo-tiny").rename(workdir / "elsewhere")
    out = subprocess.run([sys.executable, "-m", "tui_tune", "--watch", str(elsewhere)],
                         check=False, capture_output=True, text=True, cwd=workdir, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert out.returncode != 0 and "runs" in out.stderr, out.stderr


def test_serve_refuses_nothing_but_defaults_to_localhost():
    from tui_tune.cli.app import build_parser
    assert build_parser().parse_args([]).host == "127.0.0.1"


def test_keymap_with_bad_values_is_reported(tmp_path):
    from tui_tune.tui.keymap import load_keymap
    path = tmp_path / "keymap.toml"
    path.write_text(json.dumps({}).replace("{}", '"runs.stop" = 3\n"runs.new" = "a"'))
    keymap, problem = load_keymap(path)
    assert keymap == {"runs.new": "a"} and "runs.stop" in problem


def test_serve_binds_localhost_only(workdir):
    pytest.importorskip("textual_serve")
    import socket

    import psutil
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tui_tune", "serve", "--port", str(port)],
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        listening = []
        while time.monotonic() < deadline and not listening:
            time.sleep(0.2)
            listening = [c.laddr for c in psutil.Process(proc.pid).net_connections("inet")
                         if c.status == psutil.CONN_LISTEN]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening)
        assert {addr.port for addr in listening} == {port}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sixteen_colour_terminal_gets_the_ansi_theme(monkeypatch):
    from tui_tune.cli.app import few_colours
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(sys, "stdout", open(os.devnull, "w"))  # noqa: SIM115
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert few_colours()
    monkeypatch.setenv("TERM", "xterm-256color")
    assert not few_colours()
