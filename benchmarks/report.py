"""Targets and the markdown rendering of a results file.

Every target is judged on the median and listed with its spread, so a reader can see when a "met" is
within the noise. Targets (2-core machine): events + OpenTelemetry spans <= 25 us added per node;
with the SQLite store at default durability <= 50 us (flushed figure); batched appends with
serialization: SQLite >= 50k ev/s, JSONL >= 150k, in-memory >= 500k; load of 100k events <= 0.6 s;
``load_since`` of the last 100 <= 2 ms on both persistent stores; streaming 1M events < 100 MB RSS;
analytics at 1M events: rebuild-db >= 200k events/s, ``stats`` p95 < 1 s.
"""

from __future__ import annotations

from typing import Any

from . import collector, work

APPEND_TARGETS = {"sqlite": 50_000, "jsonl": 150_000, "memory": 500_000}


def _target(
    name: str, measured: float, limit: float, *, at_least: bool, spread: str, unit: str
) -> dict[str, Any]:
    met = measured >= limit if at_least else measured <= limit
    return {
        "target": name,
        "limit": f"{'>=' if at_least else '<='} {_n(limit)} {unit}",
        "measured": f"{_n(measured)} {unit}",
        "spread": spread,
        "met": met,
    }


def _iqr(summary: dict[str, Any], unit: str = "") -> str:
    quartiles = f"p25-p75 {_n(summary['p25'])} to {_n(summary['p75'])}{unit}"
    return f"{quartiles}, min-max {_n(summary['min'])} to {_n(summary['max'])}{unit}"


def evaluate(sections: dict[str, Any]) -> list[dict[str, Any]]:
    """Check every target that the given sections measured."""
    out: list[dict[str, Any]] = []
    for cell in sections.get("overhead", {}).get("cells", []):
        where = f"{cell['graph']} {cell['mode']}"
        if cell["config"] == "memory+otel":
            s = cell["added_us"]
            out.append(
                _target(
                    f"events + OTel spans, added per node, {where}",
                    s["median"],
                    25,
                    at_least=False,
                    spread=_iqr(s),
                    unit="us",
                )
            )
        if cell["config"] == "sqlite":
            s = cell["added_us_flushed"]
            out.append(
                _target(
                    f"SQLite store (flush included), added per node, {where}",
                    s["median"],
                    50,
                    at_least=False,
                    spread=_iqr(s),
                    unit="us",
                )
            )
    analytics = sections.get("analytics", {})
    if "rebuild_events_per_s" in analytics and analytics["events"] >= 1_000_000:
        s = analytics["rebuild_events_per_s"]
        out.append(
            _target("analytics rebuild-db, 1M events", s["median"], 200_000, at_least=True,
                    spread=_iqr(s), unit="ev/s")
        )  # fmt: skip
        s = analytics["stats_ms"]
        out.append(
            _target(
                "analytics stats p95, 1M events", s["p95"], 1000, at_least=False, spread=_iqr(s), unit="ms"
            )
        )
    stores = sections.get("stores", {})
    for kind, limit in APPEND_TARGETS.items():
        if kind in stores.get("append", {}):
            s = stores["append"][kind]["batches_of_100"]["events_per_s"]
            out.append(
                _target(
                    f"{kind} append, batches of 100",
                    s["median"],
                    limit,
                    at_least=True,
                    spread=f"min-max {_n(s['min'])} to {_n(s['max'])}",
                    unit="ev/s",
                )
            )
    for kind, reads in stores.get("reads", {}).items():
        s = reads["load_s"]
        out.append(
            _target(
                f"{kind} load of {reads['run_events']} events",
                s["median"],
                0.6,
                at_least=False,
                spread=f"min-max {_n(s['min'])} to {_n(s['max'])}",
                unit="s",
            )
        )
        if kind != "memory":
            s = reads["load_since_last100_ms"]
            out.append(
                _target(
                    f"{kind} load_since last 100", s["median"], 2, at_least=False, spread=_iqr(s), unit="ms"
                )
            )
    for kind, stream in stores.get("stream", {}).items():
        out.append(
            _target(
                f"{kind} iter_events of {stream['events']} events, peak RSS",
                stream["peak_rss_mb"],
                100,
                at_least=False,
                spread=f"growth {stream['growth_mb']:g} MB",
                unit="MB",
            )
        )
    return out


def _n(value: float) -> str:
    """Readable number: thousands separated for rates, three significant digits for small values."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _fmt(summary: dict[str, Any]) -> str:
    return f"{_n(summary['median'])} [{_n(summary['p25'])} to {_n(summary['p75'])}]"


def _overhead_table(cells: list[dict[str, Any]], label: str = "config") -> list[str]:
    lines = [
        f"| {label} | graph | mode | baseline us/node | added us/node [p25-p75] | ratio [p25-p75] "
        "| added incl. flush | CPU ratio | events/run | spans/run |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        lines.append(
            f"| {c['config']} | {c['graph']} | {c['mode']} | {_n(c['baseline_us']['median'])} "
            f"| {_fmt(c['added_us'])} | {_fmt(c['ratio'])} | {_fmt(c['added_us_flushed'])} "
            f"| {_n(c['cpu_ratio']['median'])} | {c.get('events_per_run', '-')} "
            f"| {c.get('spans_per_run', '-')} |"
        )
    return lines


def _meta(section: dict[str, Any]) -> str:
    m = section["meta"]
    return (
        f"_{m['date']}, {m['cpu']} x{m['cpus']}, Python {m['python']}, load avg {m['loadavg_1_5_15']} "
        f"before / {section.get('loadavg_after')} after, speed gauge {m['calibration_loop_ms']} ms, "
        f"{section.get('elapsed_s')} s{', SMOKE sizes' if section.get('smoke') else ''}_"
    )


def render(results: dict[str, Any]) -> str:
    """The results file as markdown: one table per section, then the targets."""
    sections = results.get("sections", {})
    lines = ["# swarm-observability benchmarks", ""]
    if "overhead" in sections:
        sec = sections["overhead"]
        lines += [
            "## Overhead per node vs. the same graph uninstrumented",
            _meta(sec),
            "",
            f"{sec['method']}; {sec['pairs']} pairs per cell after {sec['warmup_pairs']} warm-up pairs; "
            f"{sec['timing']}; astream modes {sec['astream_stream_mode']}.",
            "",
        ]
        lines += _overhead_table(sec["cells"])
        for name, why in sec.get("unavailable", {}).items():
            lines.append(f"\n- `{name}` not measured: {why}")
        if sec.get("components_us"):
            parts = ", ".join(f"{k} {v:g}" for k, v in sec["components_us"].items())
            lines += ["", f"Component costs in isolation (us per call, best of 5): {parts}."]
        lines.append("")
    if "work" in sections:
        sec = sections["work"]
        lines += ["## Work per node, counted", _meta(sec), "", *work.render(sec), ""]
    if "gc" in sections:
        sec = sections["gc"]
        lines += ["## Garbage-collector pressure per node", _meta(sec), "", *collector.render(sec), ""]
    if "peers" in sections:
        sec = sections["peers"]
        lines += ["## Peers, same graphs, same method", _meta(sec), ""]
        if "skipped" in sec:
            lines += [f"Not measured: {sec['skipped']}", ""]
        else:
            rows = []
            ours = sec.get("ours_same_process", {})
            for c in ours.get("cells", []):
                rows.append({**c, "config": "swarm-observability (events+OTel)"})
            notes = []
            for key, peer in sec.get("peers", {}).items():
                if "skipped" in peer:
                    notes.append(f"- `{key}` not measured: {peer['skipped']}")
                    continue
                notes.append(f"- `{key}` {peer['version']}: patches {', '.join(peer['patched'])}")
                for c in peer["cells"]:
                    rows.append({**c, "config": f"{key} {peer['version']}"})
            if rows:
                lines += _overhead_table(rows, "instrumentation")
            lines += ["", *notes, ""]
            agent_rows = [
                {**c, "config": "swarm-observability (events+OTel)"} for c in ours.get("agent_cells", [])
            ]
            for key, peer in sec.get("peers", {}).items():
                agent_rows += [
                    {**c, "config": f"{key} {peer['version']}"} for c in peer.get("agent_cells", [])
                ]
            if agent_rows:
                lines += [
                    "### Per model call and per tool call",
                    "",
                    "`llm20`: one node making 20 chat-model calls; `tool20`: one node running a tool "
                    "20 times; `react`: model node, ToolNode with 3 parallel tool calls, model again. "
                    "Figures are per call (the run's added time divided by its calls), against the same "
                    "graph uninstrumented.",
                    "",
                    *_overhead_table(agent_rows, "instrumentation"),
                    "",
                ]
    if "stores" in sections:
        sec = sections["stores"]
        lines += [
            "## Event stores",
            _meta(sec),
            "",
            f"Event JSON size: {sec['event_json_bytes']} bytes; reads on a run of "
            f"{next(iter(sec['reads'].values()), {}).get('run_events', '-')} events.",
            "",
            "| backend | append 1 by 1 (ev/s) | append batches of 100 (ev/s) | load whole run (s) "
            "| load_since last 100 (ms) | last_sequence (us) | re-open (s) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for kind, app in sec["append"].items():
            reads = sec["reads"].get(kind)
            one, batch = app["one_at_a_time"]["events_per_s"], app["batches_of_100"]["events_per_s"]
            row = (
                f"| {kind} | {_n(one['median'])} ({_n(one['min'])} to {_n(one['max'])}) "
                f"| {_n(batch['median'])} ({_n(batch['min'])} to {_n(batch['max'])}) |"
            )
            if reads:
                row += (
                    f" {_fmt(reads['load_s'])} | {_fmt(reads['load_since_last100_ms'])} "
                    f"| {_fmt(reads['last_sequence_us'])} | {reads.get('reopen_and_last_sequence_s', '-')} |"
                )
            else:
                row += " - | - | - | - |"
            lines.append(row)
        if sec["stream"]:
            lines += [
                "",
                "| backend | iter_events of N | peak RSS (MB) | growth over imports (MB) | ev/s "
                "| bytes on disk |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for kind, st in sec["stream"].items():
                lines.append(
                    f"| {kind} | {st['events']} | {st['peak_rss_mb']} | {st['growth_mb']} "
                    f"| {st['events_per_s']} | {st['bytes_on_disk']} |"
                )
        for name, why in sec.get("unavailable", {}).items():
            lines.append(f"\n- `{name}` not measured: {why}")
        lines.append("")
    if "latency" in sections:
        sec = sections["latency"]
        lines += [
            "## Live latency",
            _meta(sec),
            "",
            f"Path: {sec['path']}.",
            "",
            "| node | store | events | median us | p25-p75 | p99 | max |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for v in sec["variants"]:
            s = v["latency_us"]
            p99 = _n(s["p99"]) if "p99" in s else "-"
            lines.append(
                f"| {v['node']} | {v['store']} | {v['events']} | {_n(s['median'])} "
                f"| {_n(s['p25'])} to {_n(s['p75'])} | {p99} | {_n(s['max'])} |"
            )
        lines.append("")
    if "analytics" in sections and "events" in sections["analytics"]:
        sec = sections["analytics"]
        rebuild, stats_ms = sec["rebuild_events_per_s"], sec["stats_ms"]
        lines += [
            "## Analytics projection (DuckDB)",
            _meta(sec),
            "",
            f"{sec['events']} events ({sec['scopes']} scopes) in a SQLite store; "
            f"database {sec['db_bytes']} bytes.",
            "",
            "| measure | median | spread |",
            "|---|---:|---|",
            f"| rebuild-db, events/s | {_n(rebuild['median'])} | {_iqr(rebuild)} |",
            *(
                [f"| rebuild-db, events per CPU-second (all threads) | {_n(cpu['median'])} | {_iqr(cpu)} |"]
                if (cpu := sec.get("rebuild_events_per_cpu_s"))
                else []
            ),
            *(
                [f"| rebuild-db from a JSONL store, events/s | {_n(jsonl)} | one run |"]
                if (jsonl := sec.get("rebuild_from_jsonl_events_per_s"))
                else []
            ),
            f"| tailer from empty (batches of 50k), events/s | {_n(sec['tail_events_per_s'])} | one run |",
            *(
                [f"| first catch_up of a new tailer (whole backlog), events/s | {_n(first)} | one run |"]
                if (first := sec.get("first_catch_up_events_per_s"))
                else []
            ),
            f"| store iter_events (parse), events/s | {_n(sec['store_parse_events_per_s'])} | one run |",
            f"| rebuild / store parse | {sec['rebuild_vs_store_parse']}x | same run |",
            f"| stats, ms (p95 {_n(stats_ms['p95'])}) | {_n(stats_ms['median'])} | {_iqr(stats_ms)} |",
            "",
        ]
    if "server" in sections and "throughput" in sections["server"]:
        sec = sections["server"]
        tp, lat = sec["throughput"], sec["latency"]
        lines += [
            "## Web server (SSE)",
            _meta(sec),
            "",
            f"`swarm-obs serve` over SQLite in its own process; clients are separate processes. Throughput: "
            f"{tp['clients']} clients replay {tp['events_per_client']} stored events each at once. Latency: "
            f"{lat['events']} events emitted at {lat['rate_hz']:g}/s from another process, "
            f"client: {lat['client']}.",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| events/s to {tp['clients']} concurrent clients (aggregate) "
            f"| {_n(tp['aggregate_events_per_s'])} |",
            f"| events/s per client (median, {_iqr(tp['per_client_events_per_s'])}) "
            f"| {_n(tp['per_client_events_per_s']['median'])} |",
            f"| emit-to-client latency p50, ms | {_n(lat['p50_ms'])} |",
            f"| emit-to-client latency p99, ms | {_n(lat['p99_ms'])} |",
            "",
        ]
    if "postgres" in sections and "append" in sections["postgres"]:
        lines += _postgres_lines(sections["postgres"])
    targets = results.get("targets", [])
    if targets:
        lines += [
            "## Targets",
            "",
            "| target | limit | measured (median) | spread | met |",
            "|---|---|---:|---|---|",
        ]
        for t in targets:
            met = "yes" if t["met"] else "NO"
            lines.append(f"| {t['target']} | {t['limit']} | {t['measured']} | {t['spread']} | {met} |")
        lines.append("")
    return "\n".join(lines)


def _postgres_lines(sec: dict[str, Any]) -> list[str]:
    """The PostgreSQL section: appends, reads, streaming memory, concurrent writers, latencies."""
    app, reads, stream, conc, lat = (
        sec["append"],
        sec["reads"],
        sec["stream"],
        sec["concurrent_writers"],
        sec["latency"],
    )
    server = sec["server"]
    rows = [
        ("append one at a time, events/s", app["one_at_a_time"]["events_per_s"]),
        ("append batches of 100, events/s", app["batches_of_100"]["events_per_s"]),
        ("append batches of 1000, events/s", app["batches_of_1000"]["events_per_s"]),
        (f"load {reads['run_events']} events, s", reads["load_s"]),
        ("load_since last 100, ms", reads["load_since_last100_ms"]),
        ("last_sequence, us", reads["last_sequence_us"]),
        ("cancel request to manager (LISTEN/NOTIFY), ms", lat["cancel_request_to_manager_ms"]),
        ("append call to tail wake (NOTIFY), ms", lat["append_call_to_tail_wake_ms"]),
    ]
    lines = [
        "## PostgreSQL",
        _meta(sec),
        "",
        f"PostgreSQL {server['version']} on {server['host']}, "
        f"synchronous_commit={server['synchronous_commit']}.",
        "",
        "| measure | median | spread |",
        "|---|---:|---|",
        *(f"| {name} | {_n(s['median'])} | {_iqr(s)} |" for name, s in rows),
        f"| stream {stream['events']} events with iter_events, events/s | {_n(stream['events_per_s'])} "
        f"| peak RSS growth {stream['growth_mb']} MB |",
        "",
        "CPU per appended event (median of the runs above; server: all its processes):",
        "",
        "| append | client, us | server, us |",
        "|---|---:|---:|",
    ]
    for key, label in (
        ("one_at_a_time", "one at a time"),
        ("batches_of_100", "batches of 100"),
        ("batches_of_1000", "batches of 1000"),
    ):
        cpu = app[key]
        lines.append(
            f"| {label} | {_cpu(cpu.get('client_cpu_us_per_event'))} "
            f"| {_cpu(cpu.get('server_cpu_us_per_event'))} |"
        )
    lines += [
        "",
        f"Concurrent writer processes, batches of {conc['batch']}, {conc['events_per_writer']} events each, "
        f"medians of {conc.get('rounds', 1)} interleaved rounds (CPU per event: all writers, the server; "
        "WAL flushes per batch below 1: commits shared a flush):",
        "",
        "| writers | NOTIFY | events/s (aggregate) | vs 1 writer | client CPU, us/event "
        "| server CPU, us/event | WAL flushes/batch |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for label, figures in (("on", conc), ("off", conc.get("notify_off", {}))):
        for n in (1, 2, 4, 8):
            if f"{n}_writers_events_per_s" in figures:
                client, server = (
                    figures.get(f"{n}_writers_{side}_cpu_us_per_event") for side in ("client", "server")
                )
                lines.append(
                    f"| {n} | {label} | {_n(figures[f'{n}_writers_events_per_s'])} "
                    f"| {figures[f'{n}_writers_vs_1']}x | {_cpu(client)} | {_cpu(server)} "
                    f"| {figures.get(f'{n}_writers_wal_flushes_per_batch', '-')} |"
                )
    return [*lines, ""]


def _cpu(value: Any) -> str:
    """A CPU figure: a summary's median, a plain number, or ``-`` when not measured."""
    if isinstance(value, dict):
        value = value.get("median")
    return "-" if value is None else _n(value)
