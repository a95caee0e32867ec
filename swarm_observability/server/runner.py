"""Run the app with uvicorn: in the foreground (``swarm-obs serve``) or in a background thread
(``swarm-obs demo --serve``, tests, benchmarks).

The listening socket is bound here, before uvicorn starts, so port ``0`` picks a free port and the
caller knows the URL at once; loopback is the default host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from typing import Any

import uvicorn

from .app import create_app

LOOPBACK = ("127.0.0.1", "::1", "localhost")
_ANY_INTERFACE = ("", "0.0.0.0", "::")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def with_bind_host(host: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for :func:`~.app.create_app` with the host the server binds to among its allowed hosts.

    Not for a wildcard address (``0.0.0.0``, ``::``): that is no name a client uses, so remote clients
    need ``allowed_hosts`` (``--allowed-host``) naming the machine as they reach it.
    """
    if host in _ANY_INTERFACE or is_loopback(host):
        return options
    return {**options, "allowed_hosts": (*options.get("allowed_hosts", ()), host)}


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``0``: a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def page_url(host: str, port: int, token: str | None) -> str:
    """The page's address; the token rides in the fragment, which browsers never send to a server."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"#token={token}" if token else "")


class BackgroundServer:
    """The app on a uvicorn server in a daemon thread; ``with BackgroundServer(store) as server: ...``.

    Args:
        store: the event store to serve.
        host: interface to listen on (loopback by default).
        port: ``0`` for a free port.
        options: passed to :func:`~swarm_observability.server.app.create_app`.
    """

    def __init__(self, store: Any, *, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self.app = create_app(store, **with_bind_host(host, options))
        self.sock = bind(host, port)
        self.host = host
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="swarm-obs-server", daemon=True)

    @property
    def token(self) -> str | None:
        """The control token of the app."""
        return self.app.state.swarm.token

    @property
    def url(self) -> str:
        """``http://host:port`` (no trailing slash)."""
        return page_url(self.host, self.port, None).rstrip("/")

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        """Start serving; returns once uvicorn accepts connections."""
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.02)):
            if self.server.started or not self._thread.is_alive():
                break
            deadline.wait(0.02)
        if not self.server.started:
            raise RuntimeError(f"the swarm-obs server did not start on {self.url}")
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))


def serve(
    store: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    announce: Any = print,
    **options: Any,
) -> None:
    """Serve ``store`` until Ctrl-C; ``announce`` receives the lines to show the user (URL, token)."""
    app = create_app(store, **with_bind_host(host, options))
    sock = bind(host, port)
    token = app.state.swarm.token
    actual = sock.getsockname()[1]
    announce(f"swarm-obs: serving {getattr(store, 'backend', 'the')} store on {page_url(host, actual, None)}")
    if token:
        announce(f"swarm-obs: open {page_url(host, actual, token)} (control token in the link)")
    else:
        announce("swarm-obs: read-only: control requests are refused")
    if not is_loopback(host):
        announce(f"swarm-obs: warning: listening on {host}, reachable from other machines")
    if host in _ANY_INTERFACE and not options.get("allowed_hosts"):
        announce("swarm-obs: only loopback names are answered; name this machine with --allowed-host")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
