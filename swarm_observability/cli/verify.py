"""``swarm-obs verify``: check that a run's log is whole and self-consistent.

Errors (exit code 1):

* the store refuses to open or read the log (damage, a torn record in the middle, a seq gap);
* seqs are not exactly 1..n, or n differs from the store's ``last_sequence`` / ``runs()`` count;
* an event id appears twice, or an event carries another run's id;
* a closing event (``node_exit``, ``probe_complete``, ``agent_complete``, ``plan_complete``, a
  terminal scan event) has no opening event with the same ``scope_id`` before it;
* an invocation has more than one terminal event, or events before its ``scan_started``/``scan_resumed``;
* the derived run state (:func:`rebuild_run_state`) does not end at the log's last seq;
* the run's hash chain (``prev_hash``, written by ``hash_chain=True``) is broken: an event was
  edited, deleted or reordered; with ``--require-chain`` an event without a link is an error too;
* with ``--all``, the store file fails its own integrity check (SQLite ``quick_check``).

Damage is reported on one line naming the file and where (byte offset, table, run and seq).

Warnings (reported, exit code 0): an invocation without a terminal event (running, or the process
died), scopes never closed, events after an invocation's terminal event (a sync node finishing in its
thread after a cancel), events holding values stored in a marked form (their ``sanitized`` field),
more scopes than the span budget (its traces summarise the rest on the root spans).

For a chained run the hash of its last event is printed (``chain head``): keep it elsewhere to
detect later changes that a chain in the same file cannot show (events cut from the end).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from ..chain import ChainChecker
from ..exceptions import StoreCorruptionError
from ..state import rebuild_run_state
from ._common import EXIT_OK, EXIT_PROBLEMS, CliError, open_cli_store, resolve_run, run_arg
from ._format import Output

_OPENERS = {"node_enter", "probe_start", "agent_start", "plan_start"}
_CLOSERS = {
    "node_exit": "node_enter",
    "probe_complete": "probe_start",
    "agent_complete": "agent_start",
    "plan_complete": "plan_start",
}
_TERMINAL = {"scan_complete", "scan_error", "scan_cancelled"}


@dataclass
class RunReport:
    """What ``verify`` found in one run."""

    run_id: str
    events: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chain_head: str | None = None

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors


def register(sub: Any) -> None:
    """Add ``verify`` to the parser."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "verify",
        help="check log integrity (exit 1 on problems)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "run", nargs="?", type=run_arg, metavar="RUN", help="run id (a unique prefix is enough)"
    )
    parser.add_argument("--all", action="store_true", help="verify every run in the store")
    parser.add_argument(
        "--require-chain",
        action="store_true",
        help="every event must carry a hash-chain link (prev_hash); runs without one fail",
    )
    parser.set_defaults(func=_cmd_verify)
    parser._swarm_read = True  # type: ignore[attr-defined]


def _cmd_verify(args: argparse.Namespace) -> int:
    out = Output(json_mode=bool(getattr(args, "json", False)))
    if bool(args.run) == bool(args.all):
        raise CliError("verify: give one RUN or --all")
    require = bool(getattr(args, "require_chain", False))
    try:
        with open_cli_store(args) as store:
            reports = _store_reports(store) if args.all else []
            run_ids = [info.run_id for info in store.runs()] if args.all else [resolve_run(store, args.run)]
            reports += [verify_run(store, run_id, require_chain=require) for run_id in run_ids]
    except CliError as exc:
        if exc.code != EXIT_PROBLEMS:
            raise
        reports = [RunReport(args.run or "*", errors=[exc.message])]
    ok = all(report.ok for report in reports)
    if out.json_mode:
        out.json({"ok": ok, "runs": [{**report.__dict__, "ok": report.ok} for report in reports]})
    else:
        if not reports:
            out.line("no runs in the store")
        for report in reports:
            status = "ok" if report.ok else "PROBLEMS"
            out.line(
                f"{report.run_id}: {status} ({report.events} events)", "green" if report.ok else "bold red"
            )
            for error in report.errors:
                out.line(f"  error: {error}", "red")
            for warning in report.warnings:
                out.line(f"  warning: {warning}", "yellow")
            if report.chain_head:
                out.line(f"  chain head: {report.chain_head}")
    return EXIT_OK if ok else EXIT_PROBLEMS


def _store_reports(store: Any) -> list[RunReport]:
    """The whole-file check of a store that has one (SQLite's quick_check), as a report if it fails."""
    check = getattr(store, "check_integrity", None)
    if check is None:
        return []
    try:
        check()
    except StoreCorruptionError as exc:
        return [RunReport("(store file)", errors=[f"damaged store: {exc}"])]
    return []


def verify_run(store: Any, run_id: str, *, require_chain: bool = False) -> RunReport:
    """Check one run; every problem found is listed, reading stops only at damage."""
    report = RunReport(run_id)
    try:
        _verify_run(store, run_id, report, require_chain)
    except StoreCorruptionError as exc:
        report.errors.append(f"damaged log: {exc}")
    return report


def _verify_run(store: Any, run_id: str, report: RunReport, require_chain: bool) -> None:
    chain = ChainChecker(run_id, require=require_chain)
    sanitized = 0
    expected = 1
    ids: set[str] = set()
    opened: dict[str, str] = {}
    closed: set[str] = set()
    invocations: dict[str, dict[str, Any]] = {}
    try:
        for event in store.iter_events(run_id):
            report.events += 1
            if event.seq != expected:
                report.errors.append(f"seq {event.seq} where {expected} was expected")
            expected = (event.seq or expected) + 1
            if event.id in ids:
                report.errors.append(f"event id {event.id} repeated (seq {event.seq})")
            ids.add(event.id)
            if event.run_id != run_id:
                report.errors.append(f"seq {event.seq} belongs to run {event.run_id!r}")
            _check_scopes(event, report, opened, closed, invocations)
            chain.check(event)
            sanitized += event.sanitized is not None
    except StoreCorruptionError as exc:
        report.errors.append(f"damaged log: {exc}")
        return
    report.errors += chain.problems
    if chain.chained:
        report.chain_head = chain.head
    if sanitized:
        report.warnings.append(
            f"{sanitized} event(s) hold values stored in a marked form (see their 'sanitized' field)"
        )
    last = store.last_sequence(run_id)
    if last != report.events:
        report.errors.append(f"store reports last seq {last} but {report.events} events were read")
    counted = next((info.event_count for info in store.runs() if info.run_id == run_id), None)
    if counted is not None and counted != report.events:
        report.errors.append(f"runs() counts {counted} events but {report.events} were read")
    for inv_id, info in invocations.items():
        if not info["terminal"]:
            report.warnings.append(
                f"invocation {inv_id[:12]} has no terminal event (still running, or it died)"
            )
        if info.get("late"):
            report.warnings.append(
                f"invocation {inv_id[:12]}: {info['late']} event(s) after its {info['terminal']} "
                "(threads that finished late)"
            )
    _check_span_budget(report, len(opened) + len(invocations))
    never_closed = [name for sid, name in opened.items() if sid not in closed]
    if never_closed:
        shown = ", ".join(sorted(set(never_closed))[:6])
        report.warnings.append(f"{len(never_closed)} scope(s) never closed: {shown}")
    try:
        state = rebuild_run_state(store, run_id)
    except StoreCorruptionError as exc:
        report.errors.append(f"run state cannot be rebuilt: {exc}")
    else:
        if state.last_seq != report.events:
            report.errors.append(f"run state ends at seq {state.last_seq}, the log at {report.events}")


def _check_span_budget(report: RunReport, spans: int) -> None:
    if not spans:
        return
    from ..tracing.mapping import resolve_span_budget

    try:
        budget = resolve_span_budget()
    except ValueError as exc:
        report.warnings.append(str(exc))
        return
    if budget is not None and spans > budget:
        report.warnings.append(
            f"{spans} scopes, over the span budget of {budget}: its traces summarise about "
            f"{spans - budget} on the root spans (every event is stored; SWARM_OBS_SPAN_BUDGET=none "
            "exports them all)"
        )


def _check_scopes(
    event: Any,
    report: RunReport,
    opened: dict[str, str],
    closed: set[str],
    invocations: dict[str, dict[str, Any]],
) -> None:
    kind = event.type_name
    sid = event.scope_id
    inv = event.invocation_id
    if kind in ("scan_started", "scan_resumed") and inv and inv not in invocations:
        invocations[inv] = {"terminal": None}
    elif inv and inv not in invocations and kind.startswith(("scan_", "node_", "probe_", "agent_", "plan_")):
        report.errors.append(f"seq {event.seq} ({kind}) before its invocation {inv[:12]} started")
        invocations[inv] = {"terminal": None}
    info = invocations.get(inv or "")
    if info is not None and info["terminal"] is not None and kind not in ("heartbeat", "log"):
        info["late"] = info.get("late", 0) + 1
    if kind in _OPENERS and sid:
        if sid in opened:
            report.errors.append(f"scope {sid[:12]} opened twice (seq {event.seq})")
        opened[sid] = event.node if kind == "node_enter" else (event.probe or event.agent or kind)
    elif kind in _CLOSERS:
        if not sid or sid not in opened:
            report.errors.append(f"seq {event.seq} ({kind}) closes a scope that was never opened")
        elif sid in closed:
            report.errors.append(f"seq {event.seq} ({kind}) closes scope {sid[:12]} a second time")
        else:
            closed.add(sid)
    terminal = kind in _TERMINAL or (kind == "scan_paused" and event.data.get("reason") != "pause")
    if terminal and info is not None:
        if info["terminal"] is not None:
            report.errors.append(
                f"invocation {inv[:12]} has a second terminal event at seq {event.seq} ({kind})"
            )
        else:
            info["terminal"] = kind
