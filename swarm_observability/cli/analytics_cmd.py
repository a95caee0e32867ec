"""Analytics commands (DuckDB, the ``analytics`` extra): ``rebuild-db``, ``project``, ``stats``, ``query``."""

from __future__ import annotations

import argparse
import functools
import signal
import threading
import time
from pathlib import Path
from typing import Any

from ._common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, CliError, open_cli_store, seconds_arg
from ._format import Output, fmt_duration


def register(sub: Any) -> None:
    """Add the analytics commands to the ``swarm-obs`` parser."""
    p = _command(
        sub, "rebuild-db", "build the DuckDB analytics database from the event log alone", _cmd_rebuild
    )
    p = _command(sub, "project", "apply new events to the analytics database (tailer)", _cmd_project)
    p.add_argument("-f", "--follow", action="store_true", help="keep applying events as they arrive")
    p.add_argument(
        "--interval",
        type=seconds_arg,
        default=0.5,
        metavar="S",
        help="poll interval in seconds (0.5)",
    )
    p.add_argument("--batch", type=int, default=50_000, metavar="N", help="events per transaction (50000)")
    p.add_argument(
        "--timeout",
        type=seconds_arg,
        default=None,
        metavar="S",
        help="with --follow: stop after S s",
    )
    p = _command(sub, "stats", "durations, error rates, tokens and run statuses across runs", _cmd_stats)
    p.add_argument("--since", metavar="WHEN", help="only what started since: 7d, 24h, 30m or an ISO date")
    p._swarm_read = True  # type: ignore[attr-defined]
    p = _command(sub, "query", "run a read-only SQL query on the analytics database", _cmd_query)
    p.add_argument(
        "sql", metavar="SQL", help="one SELECT statement (tables: events, runs, invocations, scopes, errors)"
    )
    p._swarm_read = True  # type: ignore[attr-defined]


def _command(sub: Any, name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(func=_interruptible(func))
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=None,
        help="analytics database (default: analytics.duckdb beside the store)",
    )
    return parser


def _interruptible(func: Any) -> Any:
    """``func`` with DuckDB's report of a Ctrl-C turned back into ``KeyboardInterrupt`` (exit 130)."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except Exception as exc:
            from ..analytics import is_interrupt

            if is_interrupt(exc):
                raise KeyboardInterrupt from exc
            raise

    return run


def _analytics() -> Any:
    """The analytics package, or a one-line error with the install hint when DuckDB is missing."""
    from .. import analytics

    try:
        analytics.require_duckdb()
    except analytics.AnalyticsUnavailableError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    return analytics


def _db_path(args: argparse.Namespace, store: Any) -> Path:
    analytics = _analytics()
    if args.db:
        return Path(args.db)
    try:
        return analytics.default_db_path(store)
    except analytics.AnalyticsError as exc:
        raise CliError(f"{exc} (pass --db PATH)") from exc


def _cmd_rebuild(args: argparse.Namespace) -> int:
    analytics = _analytics()
    with open_cli_store(args) as store:
        db = _db_path(args, store)
        started = time.perf_counter()
        try:
            count = analytics.Projection.rebuild(store, db)
        except analytics.AnalyticsError as exc:
            raise CliError(str(exc), EXIT_PROBLEMS) from exc
        elapsed = time.perf_counter() - started
    Output().line(f"rebuilt {db} from {count} events in {fmt_duration(elapsed * 1000)}")
    return EXIT_OK


def _cmd_project(args: argparse.Namespace) -> int:
    analytics = _analytics()
    if args.batch < 1 or args.interval <= 0:
        raise CliError("--batch must be at least 1 and --interval positive")
    out = Output()
    with open_cli_store(args) as store:
        db = _db_path(args, store)
        try:
            projection = analytics.Projection(store, db, batch_size=args.batch)
        except analytics.AnalyticsError as exc:
            raise CliError(str(exc), EXIT_PROBLEMS) from exc
        with projection:
            if not args.follow:
                count = projection.catch_up()
                out.line(f"applied {count} new events to {db}")
                return EXIT_OK
            stop = threading.Event()
            previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
            if args.timeout is not None:
                threading.Timer(args.timeout, stop.set).start()
            out.line(f"projecting into {db} (Ctrl-C to stop)")
            try:
                total = projection.follow(
                    stop,
                    interval=args.interval,
                    release=True,
                    on_batch=lambda n: out.line(f"applied {n} events"),
                )
            except KeyboardInterrupt:
                total = None
            finally:
                signal.signal(signal.SIGTERM, previous)
            if total is not None:
                out.line(f"stopped after applying {total} events")
    return EXIT_OK


def _readonly(args: argparse.Namespace) -> Any:
    analytics = _analytics()
    with open_cli_store(args) as store:
        db = _db_path(args, store)
    try:
        return analytics.open_readonly(db)
    except analytics.AnalyticsError as exc:
        raise CliError(str(exc), EXIT_USAGE if not db.exists() else EXIT_PROBLEMS) from exc


def _cmd_stats(args: argparse.Namespace) -> int:
    analytics = _analytics()
    out = Output(json_mode=bool(getattr(args, "json", False)))
    try:
        since = analytics.parse_since(args.since)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    conn = _readonly(args)
    try:
        result = analytics.stats(conn, since)
    finally:
        conn.close()
    if out.json_mode:
        out.json(result)
        return EXIT_OK
    window = f" since {result['since']}" if result["since"] else ""
    out.line(f"{result['events']} events{window}; runs: " + _statuses(result["runs_by_status"]))
    rows = [
        [
            s["kind"], s["name"] or "", s["count"], s["errors"], _rate(s["error_rate"]),
            fmt_duration(s["p50_ms"]), fmt_duration(s["p95_ms"]), fmt_duration(s["max_ms"]),
        ]
        for s in result["scopes"]
    ]  # fmt: skip
    if rows:
        out.table(
            ["kind", "name", "count", "errors", "error rate", "p50", "p95", "max"], rows, title="scopes"
        )
    tokens = [
        [t["agent"] or "", t["model"] or "", t["calls"], t["input_tokens"] or 0, t["output_tokens"] or 0]
        for t in result["tokens"]
    ]
    if tokens:
        out.table(["agent", "model", "calls", "input tokens", "output tokens"], tokens, title="tokens")
    return EXIT_OK


def _statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items()) or "none"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _cmd_query(args: argparse.Namespace) -> int:
    analytics = _analytics()
    out = Output(json_mode=bool(getattr(args, "json", False)))
    conn = _readonly(args)
    try:
        columns, rows = analytics.run_query(conn, args.sql)
    except analytics.AnalyticsError as exc:
        raise CliError(str(exc)) from exc
    finally:
        conn.close()
    if out.json_mode:
        out.json([dict(zip(columns, row, strict=True)) for row in rows])
    else:
        out.table(columns, [["" if v is None else v for v in row] for row in rows])
    return EXIT_OK
