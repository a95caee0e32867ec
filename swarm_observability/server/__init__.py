"""``swarm-obs serve``: the REST API, live event streams (SSE) and a web page to watch and steer scans.

Needs the ``server`` extra (FastAPI and uvicorn): ``pip install 'swarm-observability[server]'``.

* :func:`create_app` builds the ASGI app over an event store, to run with uvicorn or mount in your
  own FastAPI/Starlette service (``app.mount("/swarm", create_app(store))``).
* :func:`serve` runs it with uvicorn (what ``swarm-obs serve`` does).
"""

from __future__ import annotations

from typing import Any

INSTALL_HINT = "swarm-obs serve needs the server extra: pip install 'swarm-observability[server]'"
"""What to tell a user without FastAPI or uvicorn."""

__all__ = ["INSTALL_HINT", "ServerUnavailableError", "create_app", "serve"]


class ServerUnavailableError(ImportError):
    """FastAPI or uvicorn is not installed (the ``server`` extra)."""


def _require() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ServerUnavailableError(f"{INSTALL_HINT} ({exc})") from exc


def create_app(store: Any, **options: Any) -> Any:
    """The swarm-obs ASGI app over ``store``; options as :func:`swarm_observability.server.app.create_app`."""
    _require()
    from .app import create_app as _create

    return _create(store, **options)


def serve(store: Any, *, host: str = "127.0.0.1", port: int = 8765, **options: Any) -> None:
    """Run the app with uvicorn until interrupted (options as :func:`.runner.serve`)."""
    _require()
    from .runner import serve as _serve

    _serve(store, host=host, port=port, **options)
