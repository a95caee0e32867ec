"""``swarm-obs``: inspect, verify, export and control the scans recorded in an event store.

Commands (``swarm-obs <command> --help`` for each)::

    runs                    the scans in the store: status, start, duration, events
    show RUN                a timeline tree of invocations, nodes, probes and agents
    tail RUN [--follow]     events as they arrive (also from a scan running in another process)
    state RUN               the run state derived from the event log
    verify RUN | --all      log integrity: gaps, damage, scope and seq/state consistency
    rebuild-state RUN       fold the run state from scratch and check it against the incremental fold
    export RUN              --jaeger FILE | --otlp URL | --jsonl FILE
    cancel|pause|resume|drain RUN
                            control a running scan through the store's control channel
    resume THREAD --graph module:attr [--checkpoint ID|LABEL]
                            continue a thread from its checkpoint with an importable graph, or fork
                            it from an earlier checkpoint
    checkpoints THREAD      a thread's checkpoints (every branch) with labels and the events between
    schema                  the JSON schema of an event
    rebuild-db              build the DuckDB analytics database from the event log (analytics extra)
    project [--follow]      apply new events to the analytics database, incrementally
    stats [--since WHEN]    durations, error rates, tokens per agent/model, runs per status
    query SQL               a read-only SQL query on the analytics database
    demo [PATH] [--serve]   run the demo swarm on a folder (and watch it on the page)
    serve                   a web page, REST API and live event stream (the server extra)

The store is chosen with ``--store URL``, else ``$SWARM_OBS_STORE``, else ``.swarm/events.db`` in the
current folder. Every read command takes ``--json``.

Exit codes: 0 ok; 1 problems found (``verify``, damaged runs in ``runs``), scan failed, or request
refused; 2 bad arguments, unknown run or thread, missing store or bad input; 130 a scan run here
was cancelled (resumable). Errors are one line on stderr, never a traceback.

Output: human text by default. With rich installed (the ``cli`` extra) and stdout a terminal you
get tables, colours and a live progress display; otherwise (pipes, CI, no rich) the same content is
plain aligned text, so rich is optional and nothing fails without it. ``SWARM_OBS_PLAIN=1`` forces
plain text on a terminal.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..exceptions import SwarmObservabilityError
from ._common import EXIT_CANCELLED, EXIT_PROBLEMS, EXIT_USAGE, CliError, add_json_option, add_store_option

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CliError(f"{self.prog}: {message} (see `{self.prog} --help`)", EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    from .. import __version__
    from . import analytics_cmd, checkpoints_cmd, control, demo_cmd, export, runs, serve_cmd

    parser = _Parser(
        prog="swarm-obs",
        description="Inspect, verify, export and control LangGraph swarm scans.",
        epilog="Exit codes: 0 ok, 1 problems found / scan failed, 2 usage or unknown run, 130 cancelled.",
    )
    parser.add_argument("--version", action="version", version=f"swarm-obs {__version__}")
    add_store_option(parser)
    add_json_option(parser)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in (runs, export, control, demo_cmd, serve_cmd, analytics_cmd, checkpoints_cmd):
        module.register(sub)
    for command in sub.choices.values():
        add_store_option(command)
        if getattr(command, "_swarm_read", False):
            add_json_option(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``swarm-obs`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not hasattr(args, "func"):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return int(args.func(args) or 0)
    except CliError as exc:
        _error(exc.message)
        return exc.code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_CANCELLED
    except BrokenPipeError:
        return 0
    except SwarmObservabilityError as exc:
        _error(str(exc))
        return EXIT_PROBLEMS


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _error(message: str) -> None:
    """One line on stderr: control characters and lone surrogates from user input are escaped, so a
    hostile argument can neither break the line nor send escape sequences to the terminal."""
    message = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), message)
    text = message if message.startswith("swarm-obs") else f"swarm-obs: {message}"
    print(text, file=sys.stderr, flush=True)
