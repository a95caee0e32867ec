"""``swarm-obs serve``: the web page, REST API and live streams over the selected store."""

from __future__ import annotations

import argparse
import os
from typing import Any
from urllib.parse import urlsplit

from ._common import EXIT_OK, CliError, open_cli_store, seconds_arg


def register(sub: Any) -> None:
    """Add ``serve`` to the parser."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="a local web page, REST API and live event stream over the store",
        description="Serve the runs of the store: a page to watch and steer scans (cancel, pause, resume), "
        "a JSON API (/docs) and Server-Sent Events. Binds to loopback; control needs the printed token "
        "(or $SWARM_OBS_TOKEN). Needs the server extra: pip install 'swarm-observability[server]'.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--read-only", action="store_true", help="refuse every control request")
    parser.add_argument(
        "--cors-origin",
        action="append",
        type=_origin,
        default=[],
        metavar="ORIGIN",
        help="allow browser calls from this origin (repeatable; default: none)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        type=_host,
        default=[],
        metavar="NAME",
        help="also answer requests for this Host name, e.g. behind a proxy (repeatable; '*': any; "
        "default: loopback names and --host)",
    )
    parser.add_argument(
        "--heartbeat",
        type=seconds_arg,
        default=15.0,
        metavar="S",
        help="seconds between stream heartbeats (15)",
    )
    parser.set_defaults(func=_cmd_serve)


def _origin(text: str) -> str:
    """``type=`` of ``--cors-origin``: ``*`` or ``scheme://host[:port]`` as a browser sends it in
    ``Origin``; anything else (a bare name, a path, a trailing ``/``) would never match and leave CORS
    closed while looking configured. A trailing ``/`` is dropped, the only harmless difference."""
    value = text.strip().rstrip("/")
    if value == "*":
        return value
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an origin: expected scheme://host[:port], e.g. https://dash.example.com"
        )
    return value


def _host(text: str) -> str:
    """``type=`` of ``--allowed-host``: a non-empty name (an empty one matches no request)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty (a Host name, or '*' for any)")
    return text.strip()


def _cmd_serve(args: argparse.Namespace) -> int:
    from ..server import INSTALL_HINT, ServerUnavailableError, serve

    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be 0-65535, got {args.port}")
    if args.heartbeat <= 0:
        raise CliError("--heartbeat must be positive")
    token = os.environ.get("SWARM_OBS_TOKEN") or None
    with open_cli_store(args) as store:
        try:
            serve(
                store,
                host=args.host,
                port=args.port,
                token=token,
                read_only=args.read_only,
                cors_origins=tuple(args.cors_origin),
                allowed_hosts=tuple(args.allowed_host),
                heartbeat=args.heartbeat,
                announce=lambda line: print(line, flush=True),
            )
        except ServerUnavailableError:
            raise CliError(INSTALL_HINT) from None
        except OSError as exc:
            raise CliError(f"serve: cannot listen on {args.host}:{args.port}: {exc}") from exc
        except KeyboardInterrupt:
            pass
    return EXIT_OK
