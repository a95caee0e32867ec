"""Control commands: ``cancel``, ``pause``, ``resume``, ``drain`` a running scan; ``resume --graph``.

``cancel|pause|resume|drain RUN`` write a request to the store's control channel (a table in the
SQLite store file, or ``control.db`` beside a JSONL store). The process running the scan applies it
at its next safe point (node or probe entry/exit, a ``progress()`` call); ``drain`` stops it at the
next superstep with the checkpoint saved. A request for a run that is not running is refused (exit 1)
unless ``--force``: a stale cancel would otherwise hit the next resume of that thread.

``resume THREAD --graph module:attr`` is different: it continues a stopped thread (cancelled,
drained, failed, interrupted) from its LangGraph checkpoint in this process, with live output.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checkpointers import get_checkpointer
from ..control import open_channel
from ..exceptions import StoreCorruptionError
from ..state import rebuild_run_state
from ._common import (
    EXIT_CANCELLED,
    EXIT_OK,
    EXIT_PROBLEMS,
    CliError,
    checkpoints_location,
    control_path,
    open_cli_store,
    resolve_run,
    run_arg,
)
from ._format import Output, fmt_status
from ._imports import import_object

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

_ACTIONS = {
    "cancel": "cancel a running scan at its next safe point",
    "pause": "pause a running scan at its next safe point (until `resume RUN`)",
    "drain": "stop a running scan at the next superstep, checkpoint saved (resume later)",
}


def register(sub: Any) -> None:
    """Add the control commands to the parser."""
    for action, help_text in _ACTIONS.items():
        parser = sub.add_parser(action, help=help_text, description=help_text + ".")
        parser.add_argument("run", type=run_arg, metavar="RUN", help="run id (a unique prefix is enough)")
        _request_options(parser)
        parser.set_defaults(func=_cmd_request, action=action)
        parser._swarm_read = True
    parser = sub.add_parser(
        "resume",
        help="resume a paused scan, or with --graph continue a thread from its checkpoint",
        description="Without --graph: ask a scan paused by `swarm-obs pause` to go on. "
        "With --graph MODULE:ATTR: continue THREAD from its LangGraph checkpoint here, "
        "with the graph importable as MODULE:ATTR "
        "(a compiled graph, a StateGraph, or a function returning one).",
    )
    parser.add_argument(
        "run", type=run_arg, metavar="RUN|THREAD", help="run id, or with --graph the thread id"
    )
    parser.add_argument(
        "--graph", metavar="MODULE:ATTR", help="continue THREAD from its checkpoint with this graph"
    )
    parser.add_argument(
        "--checkpoints",
        metavar="PATH",
        help="checkpoint database when the graph has none (default: beside the store)",
    )
    parser.add_argument(
        "--scan-id", type=run_arg, metavar="RUN", help="configurable scan_id, if the scan used one"
    )
    parser.add_argument(
        "--checkpoint",
        metavar="ID|LABEL",
        help="with --graph: fork THREAD from this earlier checkpoint (id, or a label from checkpoint())",
    )
    parser.add_argument("--no-progress", action="store_true", help="with --graph: no live progress")
    _request_options(parser)
    parser.set_defaults(func=_cmd_resume, action="resume")
    parser._swarm_read = True


def _request_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reason",
        default="requested with swarm-obs",
        help="free text recorded with the request (in the events)",
    )
    parser.add_argument("--force", action="store_true", help="send even if the run does not look running")


def _cmd_request(args: argparse.Namespace) -> int:
    out = Output(json_mode=bool(getattr(args, "json", False)))
    with open_cli_store(args) as store:
        run_id = (
            args.run if args.force and store.last_sequence(args.run) == 0 else resolve_run(store, args.run)
        )
        status = _status(store, run_id)
        if not args.force and status not in ("running", "paused", "pending"):
            hint = (
                f"; continue it with `swarm-obs resume {run_id} --graph MODULE:ATTR`"
                if status != "completed"
                else ""
            )
            raise CliError(
                f"run {run_id} is not running (status {status}){hint}; --force sends anyway", EXIT_PROBLEMS
            )
        if (
            args.action == "resume"
            and not args.force
            and status == "paused"
            and _reason(store, run_id) != "pause"
        ):
            raise CliError(
                f"run {run_id} stopped ({_reason(store, run_id)}), it is not waiting at a safe point: "
                f"continue it with `swarm-obs resume {run_id} --graph MODULE:ATTR`",
                EXIT_PROBLEMS,
            )
        path = control_path(store)
    channel = open_channel(path)
    try:
        request = channel.request(run_id, args.action, args.reason)
    finally:
        channel.close()
    if out.json_mode:
        out.json({"run_id": run_id, "action": args.action, "request_id": request.id, "channel": str(path)})
    else:
        out.line(
            f"{args.action} requested for {run_id} (request {request.id}); "
            "it takes effect at the next safe point"
        )
    return EXIT_OK


def _status(store: Any, run_id: str) -> str:
    if store.last_sequence(run_id) == 0:
        return "pending"
    try:
        return rebuild_run_state(store, run_id).status.value
    except StoreCorruptionError as exc:
        raise CliError(f"run {run_id} cannot be read: {exc}", EXIT_PROBLEMS) from exc


def _reason(store: Any, run_id: str) -> str | None:
    return rebuild_run_state(store, run_id).status_reason


def _cmd_resume(args: argparse.Namespace) -> int:
    if not args.graph:
        if getattr(args, "checkpoint", None):
            raise CliError("--checkpoint needs --graph MODULE:ATTR (the graph to fork the thread with)")
        return _cmd_request(args)
    from ..instrumentation.observer import SwarmObserver
    from ._drive import drive
    from ._live import LiveView

    out = Output(json_mode=bool(getattr(args, "json", False)))
    thread_id = args.run
    run_id = args.scan_id or thread_id
    graph = _load_graph(args.graph)
    with open_cli_store(args, write=True) as store:
        saver = None
        if getattr(graph, "checkpointer", None) in (None, False, True):
            saver = get_checkpointer(path=checkpoints_location(store, args.checkpoints))
            graph = graph.copy(update={"checkpointer": saver})
        try:
            config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
            if args.scan_id:
                config["configurable"]["scan_id"] = args.scan_id
            if args.checkpoint:
                from ..timetravel import resolve_checkpoint

                config["configurable"]["checkpoint_id"] = resolve_checkpoint(store, run_id, args.checkpoint)
            snapshot = graph.get_state(config)
            if snapshot.created_at is None and args.checkpoint:
                raise CliError(
                    f"thread {thread_id!r} has no checkpoint {args.checkpoint!r} "
                    f"(list them with `swarm-obs checkpoints {thread_id}`)"
                )
            if snapshot.created_at is None:
                raise CliError(f"unknown thread {thread_id!r}: no checkpoint for it")
            if not args.checkpoint and not snapshot.next and _status(store, run_id) == "completed":
                # invoking again would only add an empty invocation to the log
                if out.json_mode:
                    out.json(
                        {"run_id": run_id, "thread_id": thread_id, "status": "completed", "resumed": False}
                    )
                    return EXIT_OK
                out.line(
                    f"thread {thread_id} is already complete; nothing to resume (fork it from an earlier "
                    f"checkpoint with --checkpoint, see `swarm-obs checkpoints {thread_id}`)"
                )
                return EXIT_OK
            observer = SwarmObserver(store=store)
            instrumented = observer.instrument(graph)
            view = LiveView(out, live=not args.no_progress, quiet=args.no_progress or out.json_mode)
            try:
                with view:
                    result = asyncio.run(
                        drive(
                            observer,
                            instrumented,
                            None,
                            config,
                            run_id=run_id,
                            view=view,
                            control_path=_safe_control_path(store),
                        )
                    )
            finally:
                observer.close()
        finally:
            if saver is not None:
                saver.close()
    state = result.state
    if out.json_mode:
        out.json(
            {
                "run_id": run_id,
                "thread_id": thread_id,
                "status": state.status.value,
                "reason": state.status_reason,
                "events": state.last_seq,
            }
        )
    else:
        out.line(f"run {run_id}: {fmt_status(state.status.value, state.status_reason)}")
    return {"completed": EXIT_OK, "paused": EXIT_OK, "cancelled": EXIT_CANCELLED}.get(
        state.status.value, EXIT_PROBLEMS
    )


def _safe_control_path(store: Any) -> Path | str | None:
    try:
        return control_path(store)
    except CliError:
        return None


def _load_graph(reference: str) -> Any:
    graph = import_object(reference, "--graph")
    if callable(graph) and not hasattr(graph, "astream") and not hasattr(graph, "compile"):
        graph = graph()
    if hasattr(graph, "compile") and not hasattr(graph, "astream"):
        graph = graph.compile()
    if not hasattr(graph, "astream") or not hasattr(graph, "copy"):
        raise CliError(f"--graph {reference}: not a LangGraph graph ({type(graph).__name__})")
    return graph
