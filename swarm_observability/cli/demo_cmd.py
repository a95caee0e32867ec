"""``swarm-obs demo``: audit a folder with the demo swarm (see :mod:`swarm_observability.cli.demo_run`)."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import sys
import threading
import webbrowser
from typing import Any

from ._common import CliError, open_store_or_exit, seconds_arg, selected_store, thread_arg
from ._format import Output


def register(sub: Any) -> None:
    """Add ``demo`` to the parser."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="run the demo swarm on a folder (default: the current one)",
        description="Audit a source folder with the demo swarm: a planner picks probes (secrets, syntax, "
        "unpinned dependencies, missing tests, TODO markers, large and binary files), they run in parallel, "
        "a reviewer agent summarises. Ctrl-C cancels at the next safe point; resume with --resume THREAD. "
        "Exit codes: 0 completed, 1 failed, 2 bad input, 130 cancelled.",
    )
    parser.add_argument("path", nargs="?", metavar="PATH", help="folder to audit (default: .)")
    parser.add_argument("--thread", type=thread_arg, metavar="ID", help="thread id (= run id) of a new scan")
    parser.add_argument(
        "--resume", type=thread_arg, metavar="THREAD", help="continue THREAD from its checkpoint"
    )
    parser.add_argument("--pause-after", type=int, metavar="N", help="pause after N probes, then resume")
    parser.add_argument("--pause-seconds", type=seconds_arg, default=1.5, help=argparse.SUPPRESS)
    parser.add_argument("--no-progress", action="store_true", help="no progress output while the scan runs")
    parser.add_argument(
        "--jaeger", metavar="FILE", help="Jaeger JSON file (default <store folder>/traces/<run>.json)"
    )
    parser.add_argument(
        "--checkpoints", metavar="PATH", help="checkpoint database (default: beside the store)"
    )
    parser.add_argument(
        "--model", metavar="MODULE:ATTR", help="a LangChain chat model (or factory) for the reviewer"
    )
    parser.add_argument(
        "--serve", action="store_true", help="open the web page (swarm-obs serve) while the scan runs"
    )
    parser.add_argument("--port", type=int, default=8765, help="with --serve: port (8765; 0: a free one)")
    parser.add_argument("--no-browser", action="store_true", help="with --serve: do not open a browser")
    parser.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._imports import import_object
    from .demo_run import DemoOptions, run_demo

    model = None
    if args.model:
        model = import_object(args.model, "--model")
        if inspect.isclass(model) or (callable(model) and not hasattr(model, "invoke")):
            model = model()
        if not hasattr(model, "invoke"):
            raise CliError(f"--model {args.model}: not a chat model ({type(model).__name__})")
    options = DemoOptions(
        path=args.path,
        store=getattr(args, "store", None),
        thread=args.thread,
        resume=args.resume,
        pause_after=args.pause_after,
        pause_seconds=args.pause_seconds,
        progress=not args.no_progress,
        jaeger=args.jaeger,
        checkpoints=args.checkpoints,
        model=model,
    )
    if not args.serve:
        return run_demo(options, Output())
    return _demo_served(args, options)


def _demo_served(args: argparse.Namespace, options: Any) -> int:
    """The demo with the page up: served from its own read connection, as from another process."""
    from ..server import INSTALL_HINT, ServerUnavailableError
    from ..stores.url import default_store_path
    from .demo_run import run_demo

    url = selected_store(options.store) or str(default_store_path())
    if url.startswith("memory:"):
        raise CliError("demo --serve needs an on-disk store (the page reads it), not memory://")
    try:
        from ..server.runner import BackgroundServer, page_url
    except ImportError:
        raise CliError(INSTALL_HINT) from None
    store = open_store_or_exit(url, {}, "demo: ")
    try:
        try:
            server = BackgroundServer(store, port=args.port, token=os.environ.get("SWARM_OBS_TOKEN") or None)
        except OSError as exc:
            raise CliError(f"demo --serve: cannot listen on port {args.port}: {exc}") from exc
        except ServerUnavailableError:
            raise CliError(INSTALL_HINT) from None
        with server:
            link = page_url(server.host, server.port, server.token)
            print(f"swarm-obs: watch the scan on {link}", flush=True)
            if not args.no_browser:
                webbrowser.open(link)
            code = run_demo(options, Output())
            if sys.stdin is not None and sys.stdin.isatty():
                print(f"swarm-obs: the page stays up on {link}; Ctrl-C to stop", flush=True)
                with contextlib.suppress(KeyboardInterrupt):
                    threading.Event().wait()
        return code
    finally:
        store.close()
