"""The Host and Origin checks of the web app: what keeps other web pages away from a local server.

Listening on loopback is not enough for a server with control endpoints. A page on any site can make
the browser resolve its own name to ``127.0.0.1`` (DNS rebinding) and then talk to the server as if it
were same-origin, and any page can send a simple cross-site ``POST``. So every request passes
:class:`RequestGuard`, a plain ASGI middleware in front of the app:

* **Host**: the ``Host`` header must name this machine's loopback (``localhost``, ``*.localhost``,
  ``127.0.0.0/8``, ``[::1]``) or one of ``allowed_hosts`` (the name a proxy or a remote client uses;
  ``swarm-obs serve --allowed-host``, and the ``--host`` it binds to is added by itself). Anything
  else gets ``421`` with a JSON error naming the host and the option. ``"*"`` turns the check off.
* **Origin**: a state-changing request (any method but ``GET``/``HEAD``/``OPTIONS``) whose ``Origin``
  header is present must come from the server's own origin (scheme and ``Host`` of the request) or
  one of the CORS origins the app was given; else ``403``. Requests without ``Origin`` (curl, the CLI,
  scripts) are not browsers acting for another site and pass, to the bearer token check.

The SSE streams and the page are ``GET`` and only need the Host check.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_name(host: str) -> str:
    """The name in a ``Host`` header or URL authority: port and IPv6 brackets dropped, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def is_loopback_name(name: str) -> bool:
    """Whether ``name`` (a host name or IP, without port) can only mean this machine."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _authority(scheme: str, netloc: str) -> tuple[str, int | None]:
    """``(name, port)`` of a URL authority, the scheme's default port when none is written."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port
    except ValueError:
        return netloc.lower(), None
    return (parts.hostname or "").rstrip("."), port if port is not None else _DEFAULT_PORTS.get(scheme)


class RequestGuard:
    """ASGI middleware: refuse requests for another host (421) and cross-origin state changes (403).

    Args:
        app: the ASGI app to protect.
        allowed_hosts: host names (or IPs) accepted besides loopback; ``"*"`` accepts any.
        allowed_origins: origins allowed to change state from a browser (the app's CORS origins).
    """

    def __init__(
        self, app: ASGIApp, *, allowed_hosts: Iterable[str] = (), allowed_origins: Iterable[str] = ()
    ) -> None:
        self.app = app
        hosts = {host_name(h) for h in allowed_hosts}
        self.any_host = "*" in hosts
        self.allowed_hosts = frozenset(hosts - {"*"})
        self.allowed_origins = frozenset(o.rstrip("/").lower() for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan; the app has no websockets
            await self.app(scope, receive, send)
            return
        host, origin = "", None
        for key, value in scope.get("headers", ()):
            if key == b"host":
                host = value.decode("latin-1")
            elif key == b"origin":
                origin = value.decode("latin-1")
        refusal = self._check_host(host) or self._check_origin(scope, host, origin)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message = refusal
        await _reply(send, status, message)

    def _check_host(self, host: str) -> tuple[int, str] | None:
        name = host_name(host)
        if self.any_host or is_loopback_name(name) or name in self.allowed_hosts:
            return None
        shown = repr(host) if host else "no Host header"
        return 421, (
            f"refused: this server does not answer for host {shown} (a page on another site may be "
            "trying to reach it by DNS rebinding); if that is the name you use for it, e.g. behind a "
            "proxy, start it with `swarm-obs serve --allowed-host NAME` (create_app(allowed_hosts=...))"
        )

    def _check_origin(self, scope: Scope, host: str, origin: str | None) -> tuple[int, str] | None:
        method = scope.get("method", "GET")
        if origin is None or method in _SAFE_METHODS:
            return None
        normalized = origin.strip().rstrip("/").lower()
        if normalized in self.allowed_origins:
            return None
        scheme, _, netloc = normalized.partition("://")
        # Same host and port as the request's (a Host without a port means the origin's default one):
        # the page this server sent. The scheme may differ behind a TLS-terminating proxy.
        if netloc and _authority(scheme, netloc) == _authority(scheme, host.lower()):
            return None
        return 403, (
            f"refused: a {method} from origin {origin!r}, a page of another site than this server; "
            "allow a dashboard's origin with `swarm-obs serve --cors-origin ORIGIN`"
        )


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message, "status": status}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
