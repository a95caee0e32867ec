"""``swarm-obs demo``: audit a folder with the demo swarm (see :mod:`swarm_observability.demo.runner`)."""

from __future__ import annotations

import argparse
import inspect
from typing import Any

from ._common import CliError, thread_arg
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
    parser.add_argument("--pause-seconds", type=float, default=1.5, help=argparse.SUPPRESS)
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
    parser.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..demo.runner import DemoOptions, run_demo
    from ._imports import import_object

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
    return run_demo(options, Output())
