"""Read commands: ``runs``, ``show``, ``tail``, ``state``, ``rebuild-state``, ``schema``."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ..events import StreamEvent, event_json_schema
from ..exceptions import StoreCorruptionError
from ..state import RunState, RunStateBuilder, rebuild_run_state
from ._common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, CliError, open_cli_store, resolve_run, run_arg
from ._format import OUTCOME_STYLES, Output, fmt_duration, fmt_status, fmt_time
from ._live import LiveView
from ._timeline import build_timeline, to_tree
from .verify import register as register_verify

_FOLLOW_END = {"completed", "failed", "cancelled"}
_STORE_SETTLE_S = 5.0


def register(sub: Any) -> None:
    """Add the read commands to the ``swarm-obs`` parser."""
    p = _read(sub, "runs", "list the scans in the store", _cmd_runs)
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the N most recent runs")

    p = _read(sub, "show", "a timeline tree of a run's invocations, nodes, probes and agents", _cmd_show)
    p.add_argument("run", type=run_arg, metavar="RUN", help="run id (a unique prefix is enough)")

    p = _read(sub, "tail", "print a run's events, optionally as they arrive", _cmd_tail)
    p.add_argument(
        "run",
        type=run_arg,
        metavar="RUN",
        help="run id (a unique prefix is enough; waited for with --follow)",
    )
    p.add_argument(
        "-n", "--lines", type=int, default=20, metavar="N", help="last N events first (0: all; default 20)"
    )
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new events until the run ends")
    p.add_argument("--forever", action="store_true", help="with --follow: do not stop when the run ends")
    p.add_argument("--interval", type=float, default=0.2, metavar="S", help="poll interval in seconds (0.2)")
    p.add_argument(
        "--timeout", type=float, default=None, metavar="S", help="give up following after S seconds"
    )

    p = _read(sub, "state", "the run state derived from the event log", _cmd_state)
    p.add_argument("run", type=run_arg, metavar="RUN", help="run id (a unique prefix is enough)")

    p = _read(
        sub,
        "rebuild-state",
        "fold a run's state from scratch and check it against a paged fold",
        _cmd_rebuild,
    )
    p.add_argument("run", type=run_arg, metavar="RUN", help="run id (a unique prefix is enough)")

    register_verify(sub)
    _read(sub, "schema", "print the JSON schema of an event", _cmd_schema)


def _read(sub: Any, name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(func=func)
    parser._swarm_read = True  # type: ignore[attr-defined]
    return parser


def _out(args: argparse.Namespace) -> Output:
    return Output(json_mode=bool(getattr(args, "json", False)))


def _state(store: Any, run_id: str) -> RunState:
    try:
        return rebuild_run_state(store, run_id)
    except StoreCorruptionError as exc:
        raise CliError(
            f"run {run_id!r} cannot be read: {exc} (check it with `swarm-obs verify`)", EXIT_PROBLEMS
        ) from exc


# -- runs -----------------------------------------------------------------------------------------


def _cmd_runs(args: argparse.Namespace) -> int:
    out = _out(args)
    with open_cli_store(args) as store:
        infos = store.runs()
        if args.limit is not None:
            infos = infos[-max(args.limit, 0) :] if args.limit else []
        rows = []
        for info in infos:
            try:
                state = rebuild_run_state(store, info.run_id)
            except StoreCorruptionError as exc:
                rows.append(_damaged_row(info, exc))
                continue
            rows.append(
                {
                    "run_id": info.run_id,
                    "status": state.status.value,
                    "graph": state.graph,
                    "thread_id": state.thread_id,
                    "started_at": state.started_at,
                    "duration_s": state.duration_s,
                    "invocations": state.invocations,
                    "events": info.event_count,
                    "errors": len(state.errors),
                    "last_type": info.last_type,
                    "llm_calls": state.usage.llm_calls,
                    "total_tokens": state.usage.total_tokens,
                }
            )
    code = EXIT_PROBLEMS if any(r["status"] == "damaged" for r in rows) else EXIT_OK
    if out.json_mode:
        out.json({"runs": rows})
        return code
    if not rows:
        out.line("no runs in the store")
        return EXIT_OK
    out.table(
        ["RUN", "STATUS", "GRAPH", "STARTED", "DURATION", "INVOC", "EVENTS", "TOKENS"],
        [
            [
                r["run_id"],
                r["status"],
                r["graph"] or "-",
                fmt_time(r["started_at"]),
                fmt_duration(None if r["duration_s"] is None else r["duration_s"] * 1000),
                r["invocations"],
                r["events"],
                r["total_tokens"] if r.get("llm_calls") else "-",
            ]
            for r in rows
        ],
        styles={1: OUTCOME_STYLES},
    )
    for row in rows:
        if row["status"] == "damaged":
            out.line(
                f"run {row['run_id']} is damaged: {row['error']} (see `swarm-obs verify {row['run_id']}`)",
                "red",
            )
    return code


def _damaged_row(info: Any, exc: Exception) -> dict[str, Any]:
    return {
        "run_id": info.run_id,
        "status": "damaged",
        "graph": None,
        "thread_id": None,
        "started_at": info.first_timestamp,
        "duration_s": (info.last_timestamp - info.first_timestamp).total_seconds(),
        "invocations": 0,
        "events": info.event_count,
        "errors": 0,
        "last_type": info.last_type,
        "error": str(exc),
    }


# -- show -----------------------------------------------------------------------------------------


def _cmd_show(args: argparse.Namespace) -> int:
    out = _out(args)
    with open_cli_store(args) as store:
        run_id = resolve_run(store, args.run)
        state = _state(store, run_id)
        invocations = build_timeline(store.iter_events(run_id))
    if out.json_mode:
        out.json(
            {
                "run_id": run_id,
                "status": state.status.value,
                "events": state.last_seq,
                "invocations": [inv.to_dict() for inv in invocations],
            }
        )
        return EXIT_OK
    out.tree(to_tree(run_id, invocations, status=state.status.value, events=state.last_seq))
    for error in state.errors:
        where = error.probe or error.agent or error.node or "scan"
        out.line(f"error at seq {error.seq} in {where}: {error.error_type}: {error.message}", "red")
    return EXIT_OK


# -- tail -----------------------------------------------------------------------------------------


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
    out = _out(args)
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


# -- state / rebuild-state --------------------------------------------------------------------------


def _cmd_state(args: argparse.Namespace) -> int:
    out = _out(args)
    with open_cli_store(args) as store:
        run_id = resolve_run(store, args.run)
        state = _state(store, run_id)
    if out.json_mode:
        out.json(state.model_dump(mode="json"))
    else:
        _print_state(out, state)
    return EXIT_OK


def _print_state(out: Output, state: RunState) -> None:
    out.line(
        f"run {state.run_id}: {fmt_status(state.status.value, state.status_reason)}",
        OUTCOME_STYLES.get(state.status.value),
    )
    facts = [
        ("graph", state.graph or "-"),
        ("thread", state.thread_id or "-"),
        ("invocations", state.invocations),
        ("started", fmt_time(state.started_at)),
        ("ended", fmt_time(state.ended_at)),
        ("duration", fmt_duration(None if state.duration_s is None else state.duration_s * 1000)),
        ("progress", "-" if state.progress is None else f"{state.progress:.0%}"),
        ("events", state.last_seq),
    ]
    if state.last_message:
        facts.append(("last message", state.last_message))
    for key, value in facts:
        out.line(f"  {key + ':':<14}{value}")
    if state.current_nodes:
        out.line("  running now:")
        for node in state.current_nodes:
            pct = "" if node.progress is None else f" {node.progress:.0%}"
            out.line(f"    {node.node} (step {node.step}){pct}")
    for title, group in (("nodes", state.nodes), ("probes", state.probes), ("agents", state.agents)):
        if not group:
            continue
        rows = []
        for name, stats in sorted(group.items()):
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items())) or "-"
            row = [name, stats.started, stats.finished, outcomes, fmt_duration(stats.total_duration_ms)]
            if title == "probes":
                row.append(stats.results)
            rows.append(row)
        columns = [title.upper()[:-1], "STARTED", "FINISHED", "OUTCOMES", "TIME"]
        out.table(columns + (["RESULTS"] if title == "probes" else []), rows)
    _print_usage(out, state)
    for error in state.errors:
        where = error.probe or error.agent or error.node or "scan"
        out.line(f"  error (seq {error.seq}) in {where}: {error.error_type}: {error.message}", "red")


def _print_usage(out: Output, state: RunState) -> None:
    """Model and tool calls with tokens (and cost) per agent, then per model; handoffs in order."""
    usage = state.usage
    if not (usage.llm_calls or usage.tool_calls):
        return
    priced = usage.cost is not None
    columns = ["AGENT", "MODEL CALLS", "TOOL CALLS", "INPUT TOKENS", "OUTPUT TOKENS", "TOTAL TOKENS"]
    for title, group in (("AGENT", usage.by_agent), ("MODEL", usage.by_model)):
        rows = []
        for name, totals in sorted(group.items()):
            row: list[Any] = [name or "-", totals.llm_calls]
            if title == "AGENT":
                row.append(totals.tool_calls)
            row += [totals.input_tokens, totals.output_tokens, totals.total_tokens]
            if priced:
                row.append("-" if totals.cost_usd is None else f"${totals.cost_usd:.6f}")
            rows.append(row)
        rows.append(
            ["total", usage.llm_calls]
            + ([usage.tool_calls] if title == "AGENT" else [])
            + [usage.input_tokens, usage.output_tokens, usage.total_tokens]
            + (["-" if usage.cost_usd is None else f"${usage.cost_usd:.6f}"] if priced else [])
        )
        heads = [title, *columns[1:]] if title == "AGENT" else [title, columns[1], *columns[3:]]
        out.table(heads + (["COST"] if priced else []), rows)
    if usage.calls_without_usage:
        out.line(
            f"  {usage.calls_without_usage} model call(s) reported no token usage (not counted)", "yellow"
        )
    if usage.cost is not None and usage.cost.unpriced_models:
        models = ", ".join(usage.cost.unpriced_models)
        out.line(f"  no price for {models} ({usage.cost.unpriced_calls} call(s) not in the cost)", "yellow")
    if state.handoffs:
        steps = ", ".join(f"{h.from_agent or '?'} -> {h.to_agent or '?'}" for h in state.handoffs)
        out.line(f"  handoffs:     {steps}")
    if state.active_agent:
        out.line(f"  active agent: {state.active_agent}")


def _cmd_rebuild(args: argparse.Namespace) -> int:
    out = _out(args)
    with open_cli_store(args) as store:
        run_id = resolve_run(store, args.run)
        stored_last = store.last_sequence(run_id)
        full = _state(store, run_id)
        paged = RunStateBuilder(run_id)
        after = 0
        while True:
            page = store.load_since(run_id, after)[:500]
            if not page:
                break
            for event in page:
                paged.apply(event)
            after = page[-1].seq or after
    problems = []
    if full.last_seq != stored_last:
        problems.append(f"state folded {full.last_seq} events but the store holds {stored_last}")
    if paged.state != full:
        problems.append("the paged (incremental) fold differs from the full fold")
    if out.json_mode:
        out.json(
            {
                "run_id": run_id,
                "ok": not problems,
                "problems": problems,
                "state": full.model_dump(mode="json"),
            }
        )
    else:
        out.line(f"rebuilt the state of {run_id} from {full.last_seq} events (fold version {full.version})")
        for problem in problems:
            out.line(f"  problem: {problem}", "red")
        if not problems:
            out.line("  incremental fold matches the full fold", "green")
        _print_state(out, full)
    return EXIT_PROBLEMS if problems else EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    Output(json_mode=True).json(event_json_schema())
    return EXIT_OK
