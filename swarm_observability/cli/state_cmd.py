"""``swarm-obs state RUN`` and ``rebuild-state RUN``: the run state folded from the log, and its check.

``rebuild-state`` folds the run twice, whole and a page at a time, and exits 1 when the two differ or
the fold did not reach the store's last seq.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..exceptions import StoreCorruptionError
from ..state import RunState, RunStateBuilder, rebuild_run_state
from ._common import EXIT_OK, EXIT_PROBLEMS, CliError, open_cli_store, read_command, resolve_run, run_arg
from ._format import OUTCOME_STYLES, Output, fmt_duration, fmt_status, fmt_time


def register(sub: Any) -> None:
    """Add ``state`` and ``rebuild-state`` to the parser."""
    p = read_command(sub, "state", "the run state derived from the event log", _cmd_state)
    p.add_argument("run", type=run_arg, metavar="RUN", help="run id (a unique prefix is enough)")

    p = read_command(
        sub,
        "rebuild-state",
        "fold a run's state from scratch and check it against a paged fold",
        _cmd_rebuild,
    )
    p.add_argument("run", type=run_arg, metavar="RUN", help="run id (a unique prefix is enough)")


def read_state(store: Any, run_id: str) -> RunState:
    """The state of ``run_id``; a damaged log is a :class:`CliError` (exit 1) naming ``verify``."""
    try:
        return rebuild_run_state(store, run_id)
    except StoreCorruptionError as exc:
        raise CliError(
            f"run {run_id!r} cannot be read: {exc} (check it with `swarm-obs verify`)", EXIT_PROBLEMS
        ) from exc


def _cmd_state(args: argparse.Namespace) -> int:
    out = Output(json_mode=bool(getattr(args, "json", False)))
    with open_cli_store(args) as store:
        run_id = resolve_run(store, args.run)
        state = read_state(store, run_id)
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
    out = Output(json_mode=bool(getattr(args, "json", False)))
    with open_cli_store(args) as store:
        run_id = resolve_run(store, args.run)
        stored_last = store.last_sequence(run_id)
        full = read_state(store, run_id)
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
