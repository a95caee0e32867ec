"""Read commands: ``runs``, ``show`` and ``schema`` here; ``tail`` (:mod:`.tail`), ``state`` and
``rebuild-state`` (:mod:`.state_cmd`) and ``verify`` (:mod:`.verify`) registered with them, in that order."""

from __future__ import annotations

import argparse
from typing import Any

from ..events import event_json_schema
from ..exceptions import StoreCorruptionError
from ..state import rebuild_run_state
from ._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    count_arg,
    open_cli_store,
    read_command,
    resolve_run,
    run_arg,
)
from ._format import OUTCOME_STYLES, Output, fmt_duration, fmt_time
from ._timeline import build_timeline, to_tree
from .state_cmd import read_state
from .state_cmd import register as register_state
from .tail import format_event
from .tail import register as register_tail
from .verify import register as register_verify

__all__ = ["format_event", "register"]


def register(sub: Any) -> None:
    """Add the read commands to the ``swarm-obs`` parser."""
    p = read_command(sub, "runs", "list the scans in the store", _cmd_runs)
    p.add_argument("--limit", type=count_arg, default=None, metavar="N", help="only the N most recent runs")

    p = read_command(
        sub, "show", "a timeline tree of a run's invocations, nodes, probes and agents", _cmd_show
    )
    p.add_argument("run", type=run_arg, metavar="RUN", help="run id (a unique prefix is enough)")

    register_tail(sub)
    register_state(sub)
    register_verify(sub)
    read_command(sub, "schema", "print the JSON schema of an event", _cmd_schema)


# -- runs -----------------------------------------------------------------------------------------


def _cmd_runs(args: argparse.Namespace) -> int:
    out = Output(json_mode=bool(getattr(args, "json", False)))
    with open_cli_store(args) as store:
        infos = store.runs()
        if args.limit is not None:
            infos = infos[-args.limit :] if args.limit else []
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
    out = Output(json_mode=bool(getattr(args, "json", False)))
    with open_cli_store(args) as store:
        run_id = resolve_run(store, args.run)
        state = read_state(store, run_id)
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


def _cmd_schema(args: argparse.Namespace) -> int:
    Output(json_mode=True).json(event_json_schema())
    return EXIT_OK
