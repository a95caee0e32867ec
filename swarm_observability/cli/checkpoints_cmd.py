"""``swarm-obs checkpoints THREAD``: a thread's checkpoints (every branch), labels and the events between."""

from __future__ import annotations

import argparse
from typing import Any

from ..checkpointers import get_checkpointer
from ._common import EXIT_OK, CliError, checkpoints_location, open_cli_store, run_arg
from ._format import Output


def register(sub: Any) -> None:
    """Add ``checkpoints`` to the ``swarm-obs`` parser."""
    help_text = "list a thread's checkpoints with their labels and events (fork with `resume --checkpoint`)"
    parser: argparse.ArgumentParser = sub.add_parser("checkpoints", help=help_text, description=help_text)
    parser.add_argument("thread", type=run_arg, metavar="THREAD", help="the thread (run) id")
    parser.add_argument(
        "--checkpoints", metavar="PATH", help="checkpoint database (default: checkpoints.db beside the store)"
    )
    parser.add_argument("--scan-id", type=run_arg, metavar="RUN", help="run id of the events, if not THREAD")
    parser.set_defaults(func=_cmd_checkpoints)
    parser._swarm_read = True  # type: ignore[attr-defined]


def _cmd_checkpoints(args: argparse.Namespace) -> int:
    from ..timetravel import list_checkpoints

    out = Output(json_mode=bool(getattr(args, "json", False)))
    run_id = args.scan_id or args.thread
    with open_cli_store(args) as store:
        location = checkpoints_location(store, args.checkpoints)
        if not str(location).startswith("postgres") and not _exists(location):
            raise CliError(f"no checkpoint database at {location} (pass --checkpoints PATH)")
        with get_checkpointer(path=location) as saver:
            infos = list_checkpoints(saver, args.thread, store, run_id=run_id)
    if not infos:
        raise CliError(f"unknown thread {args.thread!r}: no checkpoint for it in {location}")
    if out.json_mode:
        out.json(
            [
                {
                    "checkpoint_id": c.checkpoint_id,
                    "parent_id": c.parent_id,
                    "step": c.step,
                    "source": c.source,
                    "current_branch": c.current,
                    "labels": list(c.labels),
                    "events": len(c.events),
                    "seq": [c.events[0].seq, c.events[-1].seq] if c.events else None,
                    "nodes": _nodes(c),
                }
                for c in infos
            ]
        )
        return EXIT_OK
    rows = [
        [
            c.checkpoint_id,
            "" if c.step is None else c.step,
            c.source or "",
            "yes" if c.current else "side branch",
            ", ".join(c.labels),
            f"{c.events[0].seq}-{c.events[-1].seq} ({len(c.events)})" if c.events else "",
            ", ".join(_nodes(c)),
        ]
        for c in infos
    ]
    out.table(
        ["checkpoint", "step", "source", "current", "labels", "events (seq)", "nodes run from it"],
        rows,
        title=f"thread {args.thread}: {len(infos)} checkpoint(s), oldest first (run {run_id})",
    )
    return EXIT_OK


def _nodes(info: Any) -> list[str]:
    """The thread's own nodes that ran from the checkpoint (not the nodes of their subgraphs)."""
    return [
        e.node
        for e in info.events
        if e.type_name == "node_enter" and e.node and e.checkpoint_id == info.checkpoint_id
    ]


def _exists(location: Any) -> bool:
    from pathlib import Path

    return Path(location).is_file()
