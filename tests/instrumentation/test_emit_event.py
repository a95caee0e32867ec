"""``@emit_event``: sync, async, nested, raising; explicit emitter outside a run; custom types end to end."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from swarm_observability import EventEmitter, EventType, emit_event, stream_events
from swarm_observability.cli import main
from swarm_observability.exceptions import EventValidationError, NoActiveRunError
from swarm_observability.instrumentation.observer import SwarmObserver
from swarm_observability.stores.memory import InMemoryEventStore
from swarm_observability.stores.sqlite import SQLiteEventStore
from swarm_observability.tracing import export_run

from .helpers import ChainState as S
from .helpers import chain


@dataclass
class Order:
    order_id: str
    total: float
    secret: str = "internal"


@emit_event("order_checked", fields=["order_id", "total"])
def check(order_id: str) -> Order:
    return Order(order_id, 12.5)


@emit_event(EventType.LOG, message="priced")
async def price(n: int) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"n": n, "price": n * 2}


@emit_event("order_shipped", message=lambda result: f"shipped {result['id']}")
def ship(order_id: str) -> dict[str, Any]:
    check(order_id)  # nested: the inner event comes first
    return {"id": order_id}


@emit_event("payment_failed")
def pay() -> None:
    raise ValueError("card declined")


def _graph(observer: SwarmObserver, node: Any) -> Any:
    return observer.instrument(chain(("work", node)).compile())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_events_in_a_run_sync_async_nested_raising(kind: str) -> None:
    """Inside a node: one event per call with the selected fields or the return value, nested inner
    first, a raising function recorded as outcome=error and its exception propagated unchanged."""
    observer = SwarmObserver(heartbeat_interval=None)

    def sync_node(state: S) -> S:
        ship("o-1")
        with pytest.raises(ValueError, match="card declined"):
            pay()
        return {"x": ["done"]}

    async def async_node(state: S) -> S:
        await price(3)
        ship("o-2")
        return {"x": ["done"]}

    graph = _graph(observer, sync_node if kind == "sync" else async_node)
    config = {"configurable": {"thread_id": f"orders-{kind}"}}
    if kind == "sync":
        graph.invoke({"x": []}, config)
    else:
        asyncio.run(graph.ainvoke({"x": []}, config))
    events = observer.store.load(f"orders-{kind}")
    node_scope = next(e.scope_id for e in events if e.type_name == "node_enter")
    mine = [e for e in events if e.type_name in {"order_checked", "order_shipped", "payment_failed", "log"}]
    assert all(e.scope_id == node_scope and e.node == "work" for e in mine)
    names = [e.type_name for e in mine]
    if kind == "sync":
        assert names == ["order_checked", "order_shipped", "payment_failed"]
        failed = mine[2]
        assert failed.data["outcome"] == "error" and failed.data["error_type"] == "ValueError"
        assert (
            failed.data["error_message"] == "card declined" and failed.message == "ValueError: card declined"
        )
    else:
        assert names == ["log", "order_checked", "order_shipped"]
        assert mine[0].message == "priced" and mine[0].data["price"] == 6 and mine[0].data["outcome"] == "ok"
    checked = next(e for e in mine if e.type_name == "order_checked")
    assert {k: checked.data[k] for k in ("order_id", "total", "outcome")} == {
        "order_id": f"o-{1 if kind == 'sync' else 2}",
        "total": 12.5,
        "outcome": "ok",
    }
    assert "secret" not in checked.data and checked.data["duration_ms"] >= 0
    shipped = next(e for e in mine if e.type_name == "order_shipped")
    assert shipped.message == f"shipped o-{1 if kind == 'sync' else 2}"
    observer.close()


def test_outside_a_run_needs_an_explicit_emitter() -> None:
    """Outside a run: a clear NoActiveRunError before the body runs; with emitter and run_id it works."""
    calls: list[int] = []

    @emit_event("batch_done")
    def job() -> int:
        calls.append(1)
        return 7

    with pytest.raises(NoActiveRunError, match=r"emit_event\('batch_done'\).*emitter="):
        job()
    assert calls == []
    store = InMemoryEventStore()
    emitter = EventEmitter(store)

    @emit_event("batch_done", emitter=emitter, run_id="nightly")
    async def async_job() -> int:
        return 7

    @emit_event("batch_failed", emitter=emitter, run_id="nightly")
    def bad_job() -> None:
        raise KeyError("missing")

    assert asyncio.run(async_job()) == 7
    with pytest.raises(KeyError):
        bad_job()
    stored = store.load("nightly")
    assert [(e.type_name, e.data["outcome"]) for e in stored] == [
        ("batch_done", "ok"),
        ("batch_failed", "error"),
    ]
    assert stored[0].data["result"] == 7 and stored[1].data["error_type"] == "KeyError"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "node_enter"}, "emitted by the instrumentation"),
        ({"type": EventType.SCAN_COMPLETE}, "emitted by the instrumentation"),
        ({"type": " "}, "needs an event type name"),
        ({"type": "x", "run_id": "r"}, "together"),
    ],
)
def test_misuse_is_refused_at_decoration(kwargs: dict[str, Any], message: str) -> None:
    """Reserved or empty types and a run id without an emitter are refused when decorating."""
    with pytest.raises(EventValidationError, match=message):
        emit_event(**kwargs)


def test_generators_are_refused() -> None:
    """A generator function cannot be decorated: it has no single return to record."""

    def gen() -> Any:
        yield 1

    with pytest.raises(EventValidationError, match="generator"):
        emit_event("x")(gen)


def test_custom_types_are_streamed_stored_shown_and_become_span_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A custom event type arrives in the live stream, is stored, shown by the CLI, and is a span
    event on its node."""
    store = SQLiteEventStore(tmp_path / "events.db")
    observer = SwarmObserver(store=store, heartbeat_interval=None)

    async def node(state: S) -> S:
        check("o-9")
        return {"x": ["ok"]}

    graph = _graph(observer, node)

    async def consume() -> list[str]:
        seen = []
        config = {"configurable": {"thread_id": "custom-1"}}
        async with stream_events(graph, {"x": []}, config) as events:
            async for event in events:
                seen.append(event.type_name)
        return seen

    assert "order_checked" in asyncio.run(consume())
    stored = observer.store.load("custom-1")
    assert [e.type_name for e in stored].count("order_checked") == 1
    exporter = InMemorySpanExporter()
    export_run(observer.store, "custom-1", exporter)
    node_span = next(s for s in exporter.get_finished_spans() if s.name == "node work")
    assert "order_checked" in [e.name for e in node_span.events]
    observer.close()
    store.close()
    for command in ("tail", "show"):
        capsys.readouterr()
        assert main([command, "custom-1", "--store", str(tmp_path / "events.db")]) == 0
        assert "order_checked" in capsys.readouterr().out
