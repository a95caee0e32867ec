"""``swarm-obs export RUN``: a stored run as Jaeger JSON, over OTLP, or as plain JSON lines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..exceptions import SwarmObservabilityError, TracingConfigError
from ._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    CliError,
    open_cli_store,
    refuse_store_file,
    resolve_run,
    run_arg,
)
from ._format import Output


def register(sub: Any) -> None:
    """Add ``export`` to the parser."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "export",
        help="export a run: Jaeger UI JSON, OTLP, or JSON lines",
        description="Export a stored run. --jaeger writes a file for Jaeger UI's 'JSON File' upload; "
        "--otlp sends the spans to a collector (http/protobuf unless --protocol grpc); --jsonl writes "
        "one event per line ('-' for stdout). Several targets can be given at once.",
    )
    parser.add_argument("run", type=run_arg, metavar="RUN", help="run id (a unique prefix is enough)")
    parser.add_argument("--jaeger", metavar="FILE", help="write Jaeger UI upload JSON to FILE")
    parser.add_argument(
        "--otlp", metavar="URL", help="send the spans to an OTLP collector, e.g. http://localhost:4318"
    )
    parser.add_argument("--protocol", choices=("http/protobuf", "grpc"), default=None, help="OTLP protocol")
    parser.add_argument(
        "--jsonl", metavar="FILE", help="write the events as JSON lines to FILE ('-': stdout)"
    )
    parser.add_argument(
        "--service-name",
        default=None,
        help="service.name of the spans (default: the one the run was recorded with, else "
        "$OTEL_SERVICE_NAME, else swarm-observability)",
    )
    parser.set_defaults(func=_cmd_export)
    parser._swarm_read = True  # type: ignore[attr-defined]


def _cmd_export(args: argparse.Namespace) -> int:
    if not (args.jaeger or args.otlp or args.jsonl):
        raise CliError("export: give at least one of --jaeger FILE, --otlp URL, --jsonl FILE")
    out = Output(
        json_mode=bool(getattr(args, "json", False)), stream=sys.stderr if args.jsonl == "-" else None
    )
    done: dict[str, Any] = {}
    with open_cli_store(args) as store:
        run_id = resolve_run(store, args.run)
        for target in (args.jsonl, args.jaeger):
            if target and target != "-":
                refuse_store_file(store, Path(target).expanduser(), "export")
        provider = _otlp_provider(store, run_id, args) if args.otlp else None
        try:
            if args.jsonl:
                done["jsonl"] = {"path": args.jsonl, "events": _write_jsonl(store, run_id, args.jsonl)}
            if args.jaeger:
                from ..tracing import export_jaeger_json

                Path(args.jaeger).expanduser().parent.mkdir(parents=True, exist_ok=True)
                result = export_jaeger_json(
                    store, run_id, Path(args.jaeger).expanduser(), service_name=args.service_name
                )
                done["jaeger"] = {
                    "path": args.jaeger,
                    "spans": result.spans,
                    "summarised": result.summarised,
                    "traces": list(result.trace_ids),
                }
            if provider is not None:
                done["otlp"] = _send_otlp(store, run_id, provider, args.otlp)
        except BrokenPipeError:
            raise  # `--jsonl - | head`: the reader has all it wanted (main() exits 0)
        except OSError as exc:
            raise CliError(f"export failed: {exc}") from exc
        except SwarmObservabilityError as exc:
            raise CliError(f"export failed: {exc}", EXIT_PROBLEMS) from exc
        finally:
            if provider is not None:
                provider.shutdown()
    if out.json_mode:
        out.json({"run_id": run_id, **done})
        return EXIT_OK
    if "jsonl" in done:
        out.line(f"wrote {done['jsonl']['events']} events to {args.jsonl}")
    if "jaeger" in done:
        info = done["jaeger"]
        out.line(
            f"wrote {info['spans']} spans in {len(info['traces'])} trace(s) to {args.jaeger} "
            f"(Jaeger UI: Search > Upload > JSON File){_summarised(info)}"
        )
    if "otlp" in done:
        info = done["otlp"]
        out.line(
            f"sent {info['exported']} spans to {args.otlp} "
            f"({info['failed']} failed, {info['dropped']} dropped){_summarised(info)}"
        )
    return (
        EXIT_PROBLEMS
        if done.get("otlp", {}).get("failed") or done.get("otlp", {}).get("dropped")
        else EXIT_OK
    )


def _summarised(info: dict[str, Any]) -> str:
    count = info.get("summarised") or 0
    return f"; {count} more scopes over the run's span budget summarised on the root span" if count else ""


def _write_jsonl(store: Any, run_id: str, target: str) -> int:
    count = 0
    if target == "-":
        for event in store.iter_events(run_id):
            sys.stdout.write(event.to_json() + "\n")
            count += 1
        sys.stdout.flush()
        return count
    path = Path(target).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for event in store.iter_events(run_id):
            handle.write(event.to_json() + "\n")
            count += 1
    return count


def _otlp_provider(store: Any, run_id: str, args: argparse.Namespace) -> Any:
    """The exporting provider, built before any file is written: a malformed ``--otlp``, ``--protocol``
    or ``OTEL_EXPORTER_OTLP_*`` setting is bad input (exit 2), and nothing has been done yet."""
    from ..tracing import configure_tracing
    from ..tracing.service import recorded_service_name

    service_name = args.service_name or recorded_service_name(store, run_id)
    try:
        return configure_tracing(service_name=service_name, endpoint=args.otlp, protocol=args.protocol)
    except TracingConfigError as exc:
        raise CliError(f"export: {exc}") from exc


def _send_otlp(store: Any, run_id: str, provider: Any, endpoint: str) -> dict[str, Any]:
    from ..tracing import export_run, provider_stats

    result = export_run(store, run_id, provider)
    provider.force_flush()
    stats = provider_stats(provider)
    return {
        "endpoint": endpoint,
        "spans": result.spans,
        "summarised": result.summarised,
        "traces": list(result.trace_ids),
        "exported": stats.spans_exported,
        "failed": stats.spans_failed,
        "dropped": stats.spans_dropped,
        "error": stats.last_error,
    }
