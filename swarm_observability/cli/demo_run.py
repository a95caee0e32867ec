"""Run the demo swarm end to end: what ``swarm-obs demo`` (and ``make demo``) does.

One call of :func:`run_demo`:

1. opens the event store (``.swarm/events.db`` unless told otherwise) and a SQLite checkpointer beside
   it (``checkpoints.db`` in the same folder), so a cancelled scan can be resumed by a later process;
2. builds and instruments the demo graph (:func:`~swarm_observability.demo.graph.build_demo_graph`),
   with OTLP export when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set;
3. runs it with a live display, honouring Ctrl-C and ``swarm-obs cancel|pause|resume|drain RUN``;
4. prints a summary (findings per probe and severity, the review), writes the run as Jaeger JSON
   (default ``<store folder>/traces/<run>.json``) and says where everything is stored.

Exit codes: 0 completed (or drained/paused: resumable), 1 the scan failed, 2 bad input (a folder that
does not exist, an unknown thread to resume), 130 cancelled (resumable with ``--resume THREAD``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checkpointers import get_checkpointer
from ..demo.graph import build_demo_graph, scan_input
from ..demo.probes import PROBES, SEVERITIES
from ..events import validate_run_id
from ..exceptions import InvalidRunIdError
from ..instrumentation.observer import SwarmObserver
from ..stores.postgres import redact
from ..stores.url import default_store_path
from ..tracing.service import record_service_name
from ._common import (
    EXIT_CANCELLED,
    EXIT_OK,
    EXIT_PROBLEMS,
    CliError,
    checkpoints_location,
    control_path,
    open_store_or_exit,
    refuse_store_file,
    selected_store,
    store_folder,
)
from ._drive import DriveResult, drive
from ._format import SEVERITY_STYLES, Output, fmt_status
from ._live import LiveView

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

DEMO_SERVICE_NAME = "swarm-obs-demo"
"""``service.name`` of the demo's spans unless ``OTEL_SERVICE_NAME`` says otherwise."""


@dataclass
class DemoOptions:
    """Options of :func:`run_demo` (the ``swarm-obs demo`` flags)."""

    path: str | None = None
    """Folder to audit (default: the current directory). Not allowed with ``resume``."""
    store: str | None = None
    """Event store URL or path (default: ``$SWARM_OBS_STORE`` or ``.swarm/events.db``)."""
    thread: str | None = None
    """Thread id for a new scan (default: ``scan-<UTC time>-<random>``); also the run id."""
    resume: str | None = None
    """Continue this thread from its checkpoint instead of starting a scan."""
    pause_after: int | None = None
    """Pause once this many probes have completed, wait ``pause_seconds``, resume."""
    pause_seconds: float = 1.5
    """How long a ``pause_after`` pause lasts."""
    progress: bool = True
    """Show progress while the scan runs (a live display on a terminal, lines otherwise)."""
    jaeger: str | None = None
    """Where to write the Jaeger JSON file (default ``<store folder>/traces/<run>.json``)."""
    checkpoints: str | None = None
    """Checkpoint database (default ``checkpoints.db`` beside the store)."""
    model: Any = None
    """A LangChain chat model for the reviewer (default: the offline model)."""


def new_thread_id() -> str:
    """A fresh, file-name-safe thread id: ``scan-20261122-193512-a1b2c3``."""
    return f"scan-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def run_demo(options: DemoOptions, out: Output | None = None) -> int:
    """Run (or resume) a demo scan; returns the exit code. Raises :class:`CliError` on bad input."""
    out = out or Output()
    if options.resume is not None and options.path:
        raise CliError("demo: give a PATH for a new scan or --resume THREAD, not both")
    if options.pause_after is not None and options.pause_after < 1:
        raise CliError("demo: --pause-after must be at least 1")
    graph_input: Any = None
    if options.resume is None:
        try:
            graph_input = scan_input(options.path or ".")
        except NotADirectoryError as exc:
            raise CliError(f"demo: cannot scan {exc}") from None
    thread_id = options.resume if options.resume is not None else options.thread
    if thread_id is None:
        thread_id = new_thread_id()
    try:
        validate_run_id(thread_id, for_filename=True)
    except InvalidRunIdError as exc:
        raise CliError(f"demo: {exc}") from None
    store = open_store_or_exit(selected_store(options.store) or str(default_store_path()), {}, "demo: ")
    try:
        if options.jaeger:
            refuse_store_file(store, Path(options.jaeger).expanduser(), "demo --jaeger")
        return _run(options, out, store, thread_id, graph_input)
    finally:
        store.close()


def _run(options: DemoOptions, out: Output, store: Any, thread_id: str, graph_input: Any) -> int:
    checkpoints = checkpoints_location(store, options.checkpoints)
    provider = _otlp_provider()
    with get_checkpointer(path=checkpoints) as saver:
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        graph = build_demo_graph(options.model, checkpointer=saver)
        if options.resume is not None:
            snapshot = graph.get_state(config)
            if not snapshot.values and snapshot.created_at is None:
                raise CliError(f"demo: unknown thread {thread_id!r}: no checkpoint in {checkpoints}")
            if (
                not snapshot.next
                and store.last_sequence(thread_id)
                and _status(store, thread_id) == "completed"
            ):
                out.line(f"scan {thread_id} is already complete")
                _summary(out, store, thread_id, graph.get_state(config).values)
                return EXIT_OK
        observer = SwarmObserver(store=store, tracer_provider=provider)
        observer.emitter.processors = [*observer.emitter.processors, record_service_name(_service_name())]
        instrumented = observer.instrument(graph)
        view = LiveView(out, live=options.progress, quiet=not options.progress)
        try:
            with view:
                result = asyncio.run(
                    drive(
                        observer,
                        instrumented,
                        graph_input,
                        config,
                        run_id=thread_id,
                        view=view,
                        control_path=_control_path(store),
                        pause_after=options.pause_after,
                        pause_seconds=options.pause_seconds,
                    )
                )
            values = instrumented.get_state(config).values
        finally:
            observer.close()
            if provider is not None:
                provider.force_flush()
                provider.shutdown()
    return _report(options, out, store, thread_id, result, values, checkpoints, provider)


def _otlp_provider() -> Any:
    if not (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        return None
    from ..tracing import configure_tracing

    return configure_tracing(service_name=_service_name())


def _service_name() -> str:
    """The demo's ``service.name``, recorded in the run so that every later export uses it too."""
    return os.environ.get("OTEL_SERVICE_NAME", "").strip() or DEMO_SERVICE_NAME


def _control_path(store: Any) -> Path | str | None:
    try:
        return control_path(store)
    except CliError:
        return None


def _status(store: Any, run_id: str) -> str:
    from ..state import rebuild_run_state

    return rebuild_run_state(store, run_id).status.value


def _report(
    options: DemoOptions,
    out: Output,
    store: Any,
    thread_id: str,
    result: DriveResult,
    values: dict[str, Any],
    checkpoints: Path | str,
    provider: Any,
) -> int:
    state = result.state
    status = state.status.value
    _summary(out, store, thread_id, values if status == "completed" else {})
    trace_file = _write_jaeger(options, out, store, thread_id)
    location = store.stats().location or "memory"
    out.line("")
    out.line(f"status:       {fmt_status(status, state.status_reason)}")
    out.line(f"run id:       {thread_id}   (thread id {thread_id})")
    out.line(f"event store:  {location}   ({state.last_seq} events)")
    for agent_name, totals in sorted(state.usage.by_agent.items()):
        if totals.llm_calls:
            out.line(
                f"model calls:  agent {agent_name or '-'}: {totals.llm_calls} call(s), "
                f"{totals.input_tokens} input / {totals.output_tokens} output tokens"
            )
    out.line(f"checkpoints:  {redact(str(checkpoints))}")
    if trace_file:
        out.line(f"trace:        {trace_file}   (Jaeger UI: Search > Upload > JSON File)")
    if provider is not None:
        from ..tracing import provider_stats

        stats = provider_stats(provider)
        out.line(
            f"otlp:         {stats.spans_exported} spans exported, {stats.spans_failed} failed, "
            f"{stats.spans_dropped} dropped"
        )
    store_flag = f" --store {options.store}" if options.store else ""
    out.line(
        f"inspect:      swarm-obs show {thread_id}{store_flag}   |   swarm-obs tail {thread_id}{store_flag}"
    )
    if status in ("cancelled", "paused", "failed", "running"):
        ckpt_flag = f" --checkpoints {options.checkpoints}" if options.checkpoints else ""
        out.line(f"resume:       swarm-obs demo --resume {thread_id}{store_flag}{ckpt_flag}", "bold")
    if status == "completed":
        return EXIT_OK
    if status == "cancelled":
        return EXIT_CANCELLED
    if status == "paused":
        return EXIT_OK
    return EXIT_PROBLEMS


def _summary(out: Output, store: Any, run_id: str, values: dict[str, Any]) -> None:
    per_probe = probe_findings(store, run_id)
    if per_probe:
        rows = []
        totals: Counter[str] = Counter()
        order = list(PROBES)
        for name, counts in sorted(
            per_probe.items(), key=lambda item: order.index(item[0]) if item[0] in order else 99
        ):
            totals.update(counts)
            rows.append([name, *[counts.get(s, 0) or "" for s in SEVERITIES], sum(counts.values())])
        rows.append(["total", *[totals.get(s, 0) for s in SEVERITIES], sum(totals.values())])
        out.line("")
        out.table(["PROBE", *[s.upper() for s in SEVERITIES], "FINDINGS"], rows, title="Findings per probe")
    if values.get("review"):
        out.line("")
        out.line("Review (agent reviewer):", "bold")
        for line in str(values["review"]).splitlines():
            style = None
            if line.startswith(("1.", "2.", "3.", "4.", "5.")):
                style = SEVERITY_STYLES.get(line.split("]")[0].split("[")[-1], None)
            out.line(f"  {line}", style)
    if values.get("verdict"):
        out.line(f"verdict: {values['verdict']}", "bold")


def probe_findings(store: Any, run_id: str) -> dict[str, Counter[str]]:
    """Findings per probe and severity from the log: the last successful execution of each probe.

    A probe re-run after a resume replaces its earlier execution, so nothing is counted twice.
    """
    results: dict[str, Counter[str]] = {}
    latest: dict[str, Counter[str]] = {}
    for event in store.iter_events(run_id):
        kind = event.type_name
        if kind == "probe_start" and event.scope_id:
            results[event.scope_id] = Counter()
        elif kind == "probe_result" and event.scope_id in results:
            results[event.scope_id][str(event.data.get("severity", "info"))] += 1
        elif kind == "probe_complete" and event.scope_id in results and event.probe:
            counts = results.pop(event.scope_id)
            if event.data.get("outcome") == "ok":
                latest[event.probe] = counts
    return latest


def _write_jaeger(options: DemoOptions, out: Output, store: Any, run_id: str) -> Path | None:
    from ..tracing import export_jaeger_json

    folder = store_folder(store) or Path.cwd() / ".swarm"
    target = Path(options.jaeger).expanduser() if options.jaeger else folder / "traces" / f"{run_id}.json"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        export_jaeger_json(store, run_id, target)
    except Exception as exc:
        out.line(f"warning: could not write the Jaeger file {target}: {exc}", "yellow")
        return None
    return target


__all__ = ["DemoOptions", "new_thread_id", "probe_findings", "run_demo"]
