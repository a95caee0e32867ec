"""``swarm-obs tail RUN [-f]``: a run's events as lines (or JSON), following a live run until it ends.

Following polls the store every ``--interval``; a store that is told of appends (PostgreSQL's
``LISTEN``) is waited on instead, so new events show at once. It stops when the run ends (completed,
failed, cancelled, or paused other than by a pause at a safe point), unless ``--forever``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ..events import StreamEvent
from ..state import RunStateBuilder
from ._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    CliError,
    count_arg,
    open_cli_store,
    read_command,
    resolve_run,
    run_arg,
    seconds_arg,
)
from ._format import OUTCOME_STYLES, Output, fmt_time
from ._live import LiveView

_FOLLOW_END = {"completed", "failed", "cancelled"}
_STORE_SETTLE_S = 5.0


def register(sub: Any) -> None:
    """Add ``tail`` to the parser."""
    p = read_command(sub, "tail", "print a run's events, optionally as they arrive", _cmd_tail)
    p.add_argument(
        "run",
        type=run_arg,
        metavar="RUN",
        help="run id (a unique prefix is enough; waited for with --follow)",
    )
    p.add_argument(
        "-n",
        "--lines",
        type=count_arg,
        default=20,
        metavar="N",
        help="last N events first (0: all; default 20)",
    )
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new events until the run ends")
    p.add_argument("--forever", action="store_true", help="with --follow: do not stop when the run ends")
    p.add_argument(
        "--interval",
        type=seconds_arg,
        default=0.2,
        metavar="S",
        help="poll interval in seconds (0.2)",
    )
    p.add_argument(
        "--timeout", type=seconds_arg, default=None, metavar="S", help="give up following after S seconds"
    )


def format_event(event: StreamEvent) -> str:
    """One human line per event: seq, time, type, where, then message / progress / data."""
    where = " ".join(
        f"{key}={value}"
        for key, value in (("node", event.node), ("probe", event.probe), ("agent", event.agent))
        if value
    )
    text = event.message or ""
    if event.progress is not None:
        text = f"{event.progress:.0%} {text}".strip()
    if event.data and event.type_name not in ("node_progress",):
        data = json.dumps(event.data, ensure_ascii=False, default=str, separators=(",", ":"))
        text = f"{text} {data if len(data) <= 160 else data[:157] + '...'}".strip()
    return (
        f"{event.seq:>6}  {fmt_time(event.timestamp)[11:]}  {event.type_name:<15} {where:<24} {text}".rstrip()
    )


def _cmd_tail(args: argparse.Namespace) -> int:
    out = Output(json_mode=bool(getattr(args, "json", False)))
    if args.interval <= 0:
        raise CliError("--interval must be positive")
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    manager, store = _open_for_tail(args, deadline)
    try:
        return _tail(store, args, out, deadline)
    finally:
        manager.__exit__(None, None, None)


def _open_for_tail(args: argparse.Namespace, deadline: float | None) -> tuple[Any, Any]:
    """Open the store; with ``--follow`` wait for it to be created (a scan about to start).

    A database file that exists but has no tables yet (its writer is creating it right now) cannot be
    told from a damaged or foreign one when opened read-only, so any open error is retried for a few
    seconds too, counted from the first time the file is seen (the writer may take long to start).
    """
    settle: float | None = None
    while True:
        manager = open_cli_store(args)
        try:
            return manager, manager.__enter__()
        except CliError as exc:
            missing = exc.code == EXIT_USAGE and "no event store" in exc.message
            if not missing and settle is None:
                settle = time.monotonic() + _STORE_SETTLE_S
            settling = (
                exc.code in (EXIT_PROBLEMS, EXIT_USAGE) and settle is not None and time.monotonic() < settle
            )
            if not args.follow or not (missing or settling):
                raise
            if deadline is not None and time.monotonic() >= deadline:
                raise
        time.sleep(args.interval)


def _tail(store: Any, args: argparse.Namespace, out: Output, deadline: float | None) -> int:
    run_id = _wait_for_run(store, args, deadline) if args.follow else resolve_run(store, args.run)
    last = store.last_sequence(run_id)
    after = 0 if args.lines <= 0 else max(0, last - args.lines)
    builder = RunStateBuilder(run_id)
    if after:
        builder.apply_all(_prefix(store, run_id, after))
    with LiveView(out, live=args.follow, quiet=True) as view:
        while True:
            for event in store.load_since(run_id, after):
                after = event.seq or after
                builder.apply(event)
                view.update(event)
                if out.json_mode:
                    out.json(event.to_dict(), compact=True)
                else:
                    view.print_line(format_event(event), _style(event))
            state = builder.state
            if not args.follow:
                return EXIT_OK
            ended = state.status.value in _FOLLOW_END or (
                state.status.value == "paused" and state.status_reason != "pause"
            )
            if ended and not args.forever:
                return EXIT_OK
            if deadline is not None and time.monotonic() >= deadline:
                view.print_line(f"stopped following {run_id} after {args.timeout:g} s", "dim")
                return EXIT_OK
            _wait_for_more(store, args.interval, deadline)


def _prefix(store: Any, run_id: str, upto: int) -> Any:
    for event in store.iter_events(run_id, 0):
        if (event.seq or 0) > upto:
            return
        yield event


def _wait_for_run(store: Any, args: argparse.Namespace, deadline: float | None) -> str:
    announced = False
    while True:
        try:
            return resolve_run(store, args.run)
        except CliError:
            if deadline is not None and time.monotonic() >= deadline:
                raise CliError(
                    f"run {args.run!r} did not appear within {args.timeout:g} s", EXIT_USAGE
                ) from None
            if not announced and not getattr(args, "json", False):
                import sys

                print(f"waiting for run {args.run!r} ...", file=sys.stderr, flush=True)
                announced = True
            _wait_for_more(store, args.interval, deadline)


_NOTIFIED_WAIT_S = 2.0


def _wait_for_more(store: Any, interval: float, deadline: float | None) -> None:
    """Sleep ``interval`` before re-reading; a store that is told of appends (PostgreSQL's LISTEN) is
    waited on instead, up to a couple of seconds, so new events show at once and idle tails cost nothing."""
    waiter = getattr(store, "wait_for_append", None)
    if waiter is None or getattr(store, "backend", "") == "memory":
        time.sleep(interval)
        return
    timeout = max(interval, _NOTIFIED_WAIT_S)
    if deadline is not None:
        timeout = min(timeout, max(deadline - time.monotonic(), 0.0))
    waiter(timeout)


def _style(event: StreamEvent) -> str | None:
    outcome = event.data.get("outcome") if event.data else None
    if outcome:
        return OUTCOME_STYLES.get(str(outcome))
    return "bold" if event.type_name.startswith("scan_") else None
