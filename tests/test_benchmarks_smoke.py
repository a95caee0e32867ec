"""Smoke pass over ``benchmarks/``: every benchmark runs with tiny sizes and yields well-formed results.

Nothing here asserts on a time: the figures are only checked to be present, finite and consistent
(pair counts, event and span counts, streamed counts). Timing belongs to ``python -m benchmarks.run``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from benchmarks import _stats, latency, overhead, peers, report, server, stores
from benchmarks.run import main

SUMMARY_KEYS = {"median", "p25", "p75", "min", "max", "n"}


def _check_summary(summary: dict[str, Any], n: int | None = None, positive: bool = True) -> None:
    assert summary.keys() >= SUMMARY_KEYS
    assert all(math.isfinite(summary[k]) for k in SUMMARY_KEYS)
    assert summary["min"] <= summary["p25"] <= summary["median"] <= summary["p75"] <= summary["max"]
    if positive:
        assert summary["min"] > 0
    if n is not None:
        assert summary["n"] == n


def _check_overhead_cell(cell: dict[str, Any], pairs: int) -> None:
    assert cell["pairs"] == pairs
    for key in ("baseline_us", "instrumented_us", "ratio", "cpu_ratio", "ratio_flushed"):
        _check_summary(cell[key], pairs)
    for key in ("added_us", "added_us_flushed"):
        _check_summary(cell[key], pairs, positive=False)


def test_summarize_gives_interpolated_quartiles() -> None:
    """summarize() reports the median, linear-interpolated quartiles, extremes and the count."""
    summary = _stats.summarize([4, 1, 3, 2, 5])
    assert summary == {"median": 3, "p25": 2, "p75": 4, "min": 1, "max": 5, "n": 5}
    assert _stats.quantile([10, 20], 0.5) == 15
    with pytest.raises(ValueError):
        _stats.summarize([])


def test_paired_alternates_abba_after_warmup() -> None:
    """paired() runs the warm-up pairs, then alternates A-B / B-A, one sample per side per pair."""
    calls: list[str] = []
    result = _stats.paired(
        _stats.Side(lambda: calls.append("A"), before=lambda: calls.append("a")),
        _stats.Side(lambda: calls.append("B"), after=lambda: calls.append("b")),
        pairs=3,
        warmup=1,
    )
    assert "".join(calls) == "aABb" + "aABb" + "BbaA" + "aABb"
    assert len(result.a) == len(result.b) == 3
    assert result.summary(units=1)["pairs"] == 3


@pytest.mark.timeout(120)
def test_overhead_smoke_measures_every_configuration() -> None:
    """Every configuration x graph x mode cell is measured and the instrumentation really produced events."""
    result = overhead.run(smoke=True)
    assert result["unavailable"] == {}
    graphs = {spec.name: spec.nodes for spec in overhead.graph_specs(True)}
    expected = {(c, g, m) for c in overhead.CONFIG_NAMES for g in graphs for m in overhead.MODES}
    assert {(c["config"], c["graph"], c["mode"]) for c in result["cells"]} == expected
    for cell in result["cells"]:
        _check_overhead_cell(cell, result["pairs"])
        nodes = graphs[cell["graph"]]
        assert cell["events_per_run"] == 2 * nodes + 2, cell
        if cell["config"].endswith("+otel"):
            assert cell["spans_per_run"] == nodes + 1, cell
        else:
            assert "spans_per_run" not in cell
    assert set(result["components_us"]) >= {"make_event", "emit_default_processors_memory"}
    assert all(math.isfinite(v) and v > 0 for v in result["components_us"].values())


@pytest.mark.timeout(120)
def test_stores_smoke_measures_every_backend() -> None:
    """Append rates, reads and the subprocess streaming figures are present for every backend."""
    result = stores.run(smoke=True)
    assert result["unavailable"] == {}
    assert set(result["append"]) == set(stores.BACKENDS)
    for rates in result["append"].values():
        for how in ("one_at_a_time", "batches_of_100"):
            _check_summary(rates[how]["events_per_s"])
    assert set(result["reads"]) == {"memory", "sqlite", "jsonl"}
    for kind, reads in result["reads"].items():
        _check_summary(reads["load_since_last100_ms"], 50)
        _check_summary(reads["last_sequence_us"], 1000)
        assert ("reopen_and_last_sequence_s" in reads) == (kind != "memory")
    assert set(result["stream"]) == {
        f"{k}{mode}" for k in stores.PERSISTENT for mode in ("", " (writer open)")
    }
    for stream in result["stream"].values():
        assert stream["events"] == stream["last_seq"] == 2000
        assert stream["peak_rss_mb"] >= stream["rss_after_imports_mb"] > 0
        assert stream["bytes_on_disk"] > 2000 * 100


@pytest.mark.timeout(120)
def test_latency_smoke_receives_every_stamped_event() -> None:
    """Each latency variant delivers every stamped event to the astream consumer."""
    result = latency.run(smoke=True)
    assert {(v["node"], v["store"]) for v in result["variants"]} == {
        (n, s) for n in ("async", "sync") for s in ("memory", "sqlite")
    }
    for variant in result["variants"]:
        assert variant["events"] == 50
        _check_summary(variant["latency_us"], 50)


@pytest.mark.timeout(120)
def test_peers_smoke_skips_what_is_not_installed() -> None:
    """Peers missing from this venv are reported as skipped with the reason; ours is measured regardless."""
    result = peers.run(smoke=True)
    for cell in result["ours_same_process"]["cells"]:
        _check_overhead_cell(cell, result["pairs"])
    agent_cells = result["ours_same_process"]["agent_cells"]
    assert {(c["graph"], c["mode"]) for c in agent_cells} == {
        (g, m) for g in ("llm20", "tool20") for m in overhead.MODES
    }
    for cell in agent_cells:
        _check_overhead_cell(cell, result["pairs"])
        # per run: scan start/end, node enter/exit, a start and an end event per call
        assert cell["events_per_run"] == 4 + 2 * 20 and cell["spans_per_run"] == 2 + 20, cell
    for key, peer in result["peers"].items():
        if "skipped" in peer:
            assert "not importable" in peer["skipped"], key
        else:
            assert peer["patched"], key
            for cell in peer["cells"] + peer["agent_cells"]:
                _check_overhead_cell(cell, result["pairs"])
                assert cell["baseline_spans_per_run"] == 0
                assert cell["spans_per_run"] > 0


def test_patch_toggle_swaps_only_replaced_attributes() -> None:
    """PatchToggle switches a replaced attribute on and off and ignores attributes that merely appeared."""

    class Owner:
        method = "original"

    before = {(id(Owner), "method"): (Owner, Owner.method)}
    after = {(id(Owner), "method"): (Owner, "patched"), (id(Owner), "lazy"): (Owner, "new")}
    toggle = peers.PatchToggle(before, after)
    toggle.set(True)
    assert Owner.method == "patched"
    toggle.set(False)
    assert Owner.method == "original"
    assert toggle.describe() == ["Owner.method"]


def test_evaluate_judges_targets_on_the_median() -> None:
    """report.evaluate marks a target met or missed from the median, for overhead and store figures."""

    def s(median: float) -> dict[str, float]:
        return {"median": median, "p25": median, "p75": median, "min": median, "max": median, "n": 1}

    sections = {
        "overhead": {"cells": [{"config": "memory+otel", "graph": "g", "mode": "invoke", "added_us": s(30)}]},
        "stores": {
            "append": {"sqlite": {"batches_of_100": {"events_per_s": s(60_000)}}},
            "reads": {"jsonl": {"run_events": 100_000, "load_s": s(0.5), "load_since_last100_ms": s(3)}},
            "stream": {"jsonl": {"events": 1_000_000, "peak_rss_mb": 80, "growth_mb": 20}},
        },
    }
    verdicts = {t["target"]: t["met"] for t in report.evaluate(sections)}
    assert verdicts == {
        "events + OTel spans, added per node, g invoke": False,
        "sqlite append, batches of 100": True,
        "jsonl load of 100000 events": True,
        "jsonl load_since last 100": False,
        "jsonl iter_events of 1000000 events, peak RSS": True,
    }


@pytest.mark.timeout(120)
def test_run_writes_json_and_markdown_and_merges_sections(tmp_path: Any) -> None:
    """The CLI writes the results JSON with machine facts plus the markdown, and --only merges sections."""
    out = tmp_path / "r.json"
    assert main(["--smoke", "--only", "latency", "--out", str(out)]) == 0
    assert main(["--smoke", "--only", "peers", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert set(results["sections"]) == {"latency", "peers"}
    meta = results["sections"]["latency"]["meta"]
    assert len(meta["loadavg_1_5_15"]) == 3 and meta["cpus"] >= 1 and meta["versions"]["langgraph"]
    assert results["sections"]["latency"]["smoke"] is True
    markdown = out.with_suffix(".md").read_text()
    assert "## Live latency" in markdown and "## Peers" in markdown


def test_server_smoke_delivers_every_event_to_every_client() -> None:
    """The SSE benchmark: 10 clients each get every stored event; every emitted event is timed once."""
    pytest.importorskip("fastapi", reason="the server extra is not installed")
    body = server.run(smoke=True)
    throughput, lat = body["throughput"], body["latency"]
    assert throughput["clients"] == 10 and throughput["per_client_events_per_s"]["n"] == 10
    assert throughput["aggregate_events_per_s"] > 0 and throughput["total_s"] > 0
    assert lat["events"] == 20 and 0 < lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    markdown = report.render({"sections": {"server": {"meta": _stats.machine_info(), **body}}})
    assert "## Web server (SSE)" in markdown


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_postgres_section_smoke(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The PostgreSQL section runs on the test server and its figures are present and consistent."""
    from benchmarks.run import run_section

    monkeypatch.setenv("SWARM_OBS_BENCH_PG_URL", pg_url)
    sec = run_section("postgres", True, None)
    for key in ("one_at_a_time", "batches_of_100", "batches_of_1000"):
        _check_summary(sec["append"][key]["events_per_s"], 1)
    _check_summary(sec["reads"]["load_s"], 1)
    assert sec["stream"]["events"] == 2_000
    assert sec["concurrent_writers"]["1_writers_vs_1"] == 1.0
    assert all(sec["concurrent_writers"][f"{n}_writers_events_per_s"] > 0 for n in (1, 2, 4, 8))
    _check_summary(sec["latency"]["cancel_request_to_manager_ms"], 3)
    assert "## PostgreSQL" in report.render({"sections": {"postgres": sec}})


def test_postgres_section_without_a_server_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a server the PostgreSQL section reports itself unavailable instead of failing the run."""
    from benchmarks import postgres

    for name in postgres.ENV:
        monkeypatch.delenv(name, raising=False)
    assert "SWARM_OBS_BENCH_PG_URL" in postgres.run(smoke=True)["unavailable"]


def test_cells_filter_matches_config_graph_and_mode_patterns() -> None:
    """--cells patterns select overhead cells by CONFIG[:GRAPH[:MODE]], '*' matching any part."""
    cell_selected = overhead.cell_selected
    assert cell_selected(None, "sqlite", "par3x16", "astream")
    assert cell_selected(["memory:chain50"], "memory", "chain50", "astream")
    assert not cell_selected(["memory:chain50"], "memory+otel", "chain50", "invoke")
    assert cell_selected(["*:*:invoke"], "jsonl", "par3x16", "invoke")
    assert not cell_selected(["*:*:invoke", "sqlite"], "memory", "chain50", "astream")


def test_work_counts_add_up_and_name_the_owners() -> None:
    """The work section counts bytecodes per node: instrumented > plain, the owners' parts sum to it."""
    from benchmarks import work

    sec = work.run(smoke=True)
    assert {c["mode"] for c in sec["cells"]} == {"invoke", "astream"}
    for cell in sec["cells"]:
        assert cell["config"] == "memory+otel"
        assert 0 < cell["plain"] < cell["instrumented"]
        assert abs(sum(cell["added_by_owner"].values()) - cell["added"]) <= len(work.OWNERS)
        assert cell["added_by_owner"]["ours"] > 0
        assert cell["added_by_owner"]["opentelemetry"] > 0
        assert 0 < sum(cell["ours_by_module"].values()) <= cell["added_by_owner"]["ours"] + len(work.OWNERS)
    assert "| memory+otel | chain5 | invoke |" in "\n".join(work.render(sec))


def test_gc_section_counts_what_a_middle_collection_promotes() -> None:
    """Objects alive across a generation-1 collection count as promoted, by type; the section renders."""
    import gc

    from benchmarks import collector

    class Kept:
        pass

    with collector._Promotions() as promotions:
        kept = [Kept() for _ in range(50)]
        gc.collect(1)
    assert promotions.by_type["test_gc_section_counts_what_a_middle_collection_promotes.<locals>.Kept"] == 50
    assert len(kept) == 50
    sec = collector.run(smoke=True)
    assert [(c["config"], c["mode"]) for c in sec["cells"]] == [("memory+otel", m) for m in collector.MODES]
    for cell in sec["cells"]:
        assert cell["full_ms"] > 0 and cell["old"] > 0 and cell["instrumented"] >= 0
    assert "| memory+otel | chain5 | invoke |" in "\n".join(collector.render(sec))
