"""`tui-tune serve` lets in only the printed URL's token, and websockets only from its own page:
a real server on 127.0.0.1, real HTTP and websocket clients, every wait bounded."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

pytest.importorskip("textual_serve")
import aiohttp  # textual-serve brings it

TIMEOUT = aiohttp.ClientTimeout(total=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    """`tui-tune serve` in a subprocess, and the URL it printed."""

    def __init__(self, cwd, *args: str):
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "TUI_TUNE_TOKEN"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui_tune", "serve", "--port", str(self.port), *args],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            stdin=subprocess.DEVNULL)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in self.proc.stdout],
                         daemon=True).start()
        printed = ""
        while "open http" not in printed:
            printed += lines.get(timeout=60)  # queue.Empty fails the test if it never starts
        self.url = re.search(r"open (\S+)", printed).group(1)
        self.base = f"http://127.0.0.1:{self.port}"
        self.token = self.url.split("token=", 1)[1]
        self._wait_listening()

    def _wait_listening(self) -> None:
        """The URL is printed as the server starts, just before it listens."""
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                threading.Event().wait(0.1)
        raise AssertionError(f"tui-tune serve does not listen on {self.port}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


@pytest.fixture
def served(workdir) -> Iterator[Served]:
    server = Served(workdir)
    yield server
    server.stop()


def session() -> aiohttp.ClientSession:
    """A browser-like client: keeps cookies, also those of an IP address such as 127.0.0.1."""
    return aiohttp.ClientSession(timeout=TIMEOUT, cookie_jar=aiohttp.CookieJar(unsafe=True))


async def status_of(client: aiohttp.ClientSession, url: str, **kwargs) -> int:
    async with client.get(url, **kwargs) as response:
        await response.read()
        return response.status


async def websocket_status(client: aiohttp.ClientSession, url: str, origin: str | None) -> int:
    try:
        async with client.ws_connect(url, origin=origin) as ws:
            await ws.close()
            return 101
    except aiohttp.WSServerHandshakeError as error:
        return error.status


async def test_serve_wants_the_printed_token(served):
    assert served.url == f"{served.base}/?token={served.token}" and len(served.token) >= 32
    async with session() as stranger:
        assert await status_of(stranger, f"{served.base}/") == 403
        assert await status_of(stranger, f"{served.base}/?token=wrong") == 403
        assert await status_of(stranger, f"{served.base}/static/js/textual.js") == 403
    async with session() as browser:
        assert await status_of(browser, served.url) == 200
        # the page's own requests carry the token in its cookie
        assert await status_of(browser, f"{served.base}/static/js/textual.js") == 200
        assert await status_of(browser, f"{served.base}/") == 200


async def test_websocket_only_from_the_served_origin_and_with_the_token(served):
    ws_url = f"ws://127.0.0.1:{served.port}/ws?width=80&height=24"
    own = f"http://127.0.0.1:{served.port}"
    async with session() as browser:
        assert await status_of(browser, served.url) == 200
        assert await websocket_status(browser, ws_url, "http://evil.example") == 403
        assert await websocket_status(
            browser, f"{ws_url}&token={served.token}", "http://evil.example") == 403
        assert await websocket_status(browser, ws_url, f"http://127.0.0.1:{served.port + 1}") \
            == 403
        assert await websocket_status(browser, ws_url, None) == 403
        assert await status_of(browser, f"{served.base}/", headers={
            "Origin": "http://evil.example"}) == 403
    async with session() as stranger:
        assert await websocket_status(stranger, ws_url, own) == 403
    async with session() as browser:
        assert await status_of(browser, served.url) == 200
        async with browser.ws_connect(ws_url, origin=own) as ws:
            first = await ws.receive(timeout=60)  # the app's first output: it is driven
            assert first.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT)


async def test_token_option_sets_the_secret(workdir):
    server = Served(workdir, "--token", "my-own-secret-0123")
    try:
        assert server.token == "my-own-secret-0123"
        async with session() as browser:
            assert await status_of(browser, f"{server.base}/?token=my-own-secret-0123") == 200
            assert await status_of(browser, f"{server.base}/?token=other") == 200  # cookie
        async with session() as stranger:
            assert await status_of(stranger, f"{server.base}/?token=other") == 403
    finally:
        server.stop()


def test_an_empty_token_is_refused(workdir):
    empty = subprocess.run([sys.executable, "-m", "tui_tune", "serve", "--token", ""],
                           capture_output=True, text=True, timeout=60, cwd=workdir,
                           stdin=subprocess.DEVNULL, check=False)
    assert empty.returncode == 2 and "--token" in empty.stderr
