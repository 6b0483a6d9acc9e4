"""`tui-tune serve` lets in only who holds its token, and only from its own pages.

textual-serve has no authentication: anyone who reaches the port, or any web page the user
visits (a websocket is not bound by the same-origin policy), could drive the app and so start,
stop and delete runs. As Jupyter does, the server takes a random token (or `--token`); the URL
printed at start carries it (`/?token=...`), the page then keeps it in a cookie for its own
requests, and every request without it is refused (HTTP 403). A request that comes from a
browser page (it has an Origin header) must come from the served host:port, and the websocket
must always say where it comes from.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from urllib.parse import quote

from aiohttp import web
from textual_serve.server import Server

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")  # every interface: the page's name is not known here


def new_token() -> str:
    return secrets.token_hex(24)


def cookie_name(port: int) -> str:
    """One cookie per port: browsers share cookies between the ports of a host."""
    return f"tui_tune_token_{port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def served_origins(host: str, port: int) -> set[str]:
    """The Origins of the pages this server serves (a loopback bind answers to every name of
    this machine's loopback); empty for a wildcard bind, which answers to any name."""
    if host in WILDCARD_HOSTS:
        return set()
    names = set(LOOPBACK_NAMES) if is_loopback(host) else set()
    names.add(f"[{host}]" if ":" in host and not host.startswith("[") else host)
    return {f"{scheme}://{name}:{port}" for name in names for scheme in ("http", "https")}


class GuardedServer(Server):
    """textual-serve's Server with the token and Origin checks as aiohttp middleware."""

    def __init__(self, command: str, host: str, port: int, token: str, title: str):
        super().__init__(command, host=host, port=port, title=title)
        self.token = token
        self.origins = served_origins(host, port)

    @property
    def url(self) -> str:
        return f"{self.public_url}/?token={quote(self.token)}"

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        return app

    async def on_startup(self, app: web.Application) -> None:
        self.console.print(f"tui-tune serve: open {self.url}\n(Ctrl+C quits)",
                           highlight=False, soft_wrap=True)

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        problem = self.refusal(request)
        if problem:
            raise web.HTTPForbidden(text=f"tui-tune serve: {problem}\n")
        response = await handler(request)
        if self._holds(request.query.get("token")) and not response.prepared:
            response.set_cookie(cookie_name(self.port), self.token, httponly=True,
                                samesite="Strict", path="/")
        return response

    def refusal(self, request: web.Request) -> str | None:
        """Why a request is refused, or None to let it through."""
        origin = request.headers.get("Origin")
        if origin is not None and not self._allowed_origin(origin, request):
            return f"requests from {origin} are not allowed"
        if origin is None and request.path == "/ws":
            return "the websocket must come from this server's page"
        if not (self._holds(request.query.get("token"))
                or self._holds(request.cookies.get(cookie_name(self.port)))):
            return "open the URL with the token that `tui-tune serve` printed"
        return None

    def _allowed_origin(self, origin: str, request: web.Request) -> bool:
        if self.origins:
            return origin in self.origins
        return origin in (f"http://{request.host}", f"https://{request.host}")  # wildcard bind

    def _holds(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())
