"""The REST API over the test client: every endpoint, paging, 404/422 and the control auth rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from swarm_observability.control import ControlChannel
from swarm_observability.server import create_app
from swarm_observability.state import rebuild_run_state
from swarm_observability.stores import InMemoryEventStore, SQLiteEventStore

from .conftest import BASE_URL, TOKEN, record_run

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_runs_table_lists_every_run_newest_first_with_paging_and_status_filter(client: TestClient) -> None:
    """/api/runs: one row per run, newest first, offset/limit paging and a status filter."""
    body = client.get("/api/runs").json()
    assert body["total"] == 3
    assert [r["run_id"] for r in body["runs"]] == ["live-1", "bad-1", "done-1"]
    by_id = {r["run_id"]: r for r in body["runs"]}
    assert (by_id["done-1"]["status"], by_id["done-1"]["events"], by_id["done-1"]["graph"]) == (
        "completed",
        17,
        "g",
    )
    assert by_id["bad-1"]["status"] == "failed" and by_id["bad-1"]["errors"] == 1
    assert by_id["live-1"]["status"] == "running"
    page = client.get("/api/runs", params={"limit": 1, "offset": 1}).json()
    assert [r["run_id"] for r in page["runs"]] == ["bad-1"] and page["total"] == 3
    assert [r["run_id"] for r in client.get("/api/runs?status=failed").json()["runs"]] == ["bad-1"]


def test_run_state_equals_a_fresh_fold_of_the_log(client: TestClient, store: SQLiteEventStore) -> None:
    """/api/runs/{id} serves the derived state, the same as rebuild_run_state."""
    body = client.get("/api/runs/done-1").json()
    assert body["state"] == rebuild_run_state(store, "done-1").model_dump(mode="json")
    assert body["run"]["status"] == "completed"


def test_cached_state_follows_appends(db: Path) -> None:
    """The incremental state cache folds events appended after the first request."""
    writer = SQLiteEventStore(db)
    reader = SQLiteEventStore(db, read_only=True)
    with TestClient(create_app(reader, token=TOKEN), base_url=BASE_URL) as client:
        assert client.get("/api/runs/live-1").json()["state"]["status"] == "running"
        writer.append(
            writer.load("live-1")[-1].model_copy(
                update={"id": "x-1", "seq": writer.last_sequence("live-1") + 1, "type": "scan_complete"}
            )
        )
        assert client.get("/api/runs/live-1").json()["state"]["status"] == "completed"
    writer.close()
    reader.close()


def test_tree_is_the_show_tree_as_data(client: TestClient) -> None:
    """/api/runs/{id}/tree: invocation > node > probe, point events attached."""
    tree = client.get("/api/runs/done-1/tree").json()
    (invocation,) = tree["invocations"]
    assert tree["status"] == "completed" and tree["events"] == 17
    assert [c["kind"] for c in invocation["children"]] == ["node"] * 3
    probe = invocation["children"][0]["children"][0]
    assert (probe["kind"], probe["name"], probe["results"]) == ("probe", "p0", 1)
    assert [e["type"] for e in probe["events"]] == ["probe_result"]


def test_events_by_run_pages_by_seq(client: TestClient, store: SQLiteEventStore) -> None:
    """/api/events/by-run pages through a run with after_seq and next_after_seq, in order."""
    seen: list[int] = []
    after: int | None = 0
    while after is not None:
        page = client.get("/api/events/by-run/done-1", params={"after_seq": after, "limit": 5}).json()
        seen += [e["seq"] for e in page["events"]]
        after = page["next_after_seq"]
    assert seen == list(range(1, 18))
    first = client.get("/api/events/by-run/done-1", params={"limit": 1}).json()["events"][0]
    assert first == store.load("done-1")[0].to_dict()


def test_recent_filters_by_type_time_and_run(client: TestClient, store: SQLiteEventStore) -> None:
    """/api/events/recent: newest first, limit, repeatable type, since and run filters."""
    recent = client.get("/api/events/recent", params={"limit": 4}).json()["events"]
    assert len(recent) == 4
    assert [e["id"] for e in recent] == [e.id for e in store.query(limit=4)]
    types = client.get(
        "/api/events/recent", params=[("type", "scan_error"), ("type", "scan_complete")]
    ).json()
    assert sorted(e["run_id"] for e in types["events"]) == ["bad-1", "done-1"]
    since = store.load("live-1")[0].to_dict()["timestamp"]
    assert all(
        e["timestamp"] >= since for e in client.get(f"/api/events/recent?since={since}").json()["events"]
    )
    only = client.get("/api/events/recent", params={"run_id": "bad-1"}).json()["events"]
    assert {e["run_id"] for e in only} == {"bad-1"}


def test_event_by_id_and_by_correlation(client: TestClient, store: SQLiteEventStore) -> None:
    """/api/events/{id} returns the event; by-correlation returns every event sharing a scope/invocation."""
    event = store.load("bad-1")[3]
    assert client.get(f"/api/events/{event.id}").json() == event.to_dict()
    invocation = client.get("/api/events/by-correlation/done-1-inv").json()["events"]
    assert len(invocation) == len(
        [e for e in store.load("done-1") if "done-1-inv" in (e.invocation_id, e.scope_id, e.parent_scope_id)]
    )
    probe = client.get("/api/events/by-correlation/done-1-p1", params={"run_id": "done-1"}).json()["events"]
    assert [e["type"] for e in probe] == ["probe_start", "probe_result", "probe_complete"]


def test_stats_count_types_statuses_and_minutes(client: TestClient, store: SQLiteEventStore) -> None:
    """/api/events/stats: per type, per run status, events per minute (all within the last hour)."""
    stats = client.get("/api/events/stats").json()
    assert stats["store"]["events"] == sum(i.event_count for i in store.runs())
    assert stats["runs_by_status"] == {"completed": 1, "failed": 1, "running": 1}
    assert stats["events_by_type"]["probe_result"] == 5
    assert sum(m["events"] for m in stats["events_per_minute"]) == stats["store"]["events"]
    assert len(stats["events_per_minute"]) == 60
    assert stats["tokens"] is None


def test_health_reports_store_and_streams(client: TestClient) -> None:
    """/api/health: ok, the store's figures, no stream clients yet, not read-only."""
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["store"]["runs"] == 3
    assert health["streams"]["clients"] == 0 and health["read_only"] is False


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/nope",
        "/api/runs/nope/tree",
        "/api/runs/nope/stream",
        "/api/events/by-run/nope",
        "/api/events/nope-id",
        "/api/events/by-correlation/nothing-has-this",
    ],
)
def test_unknown_ids_are_404_json(client: TestClient, path: str) -> None:
    """Unknown runs, events and correlation ids: 404 with a JSON error, no trace."""
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["status"] == 404 and "Traceback" not in response.text


@pytest.mark.parametrize(
    ("path", "params", "headers"),
    [
        ("/api/events/recent", {"limit": 0}, {}),
        ("/api/events/recent", {"limit": "many"}, {}),
        ("/api/events/recent", {"since": "2026-01-01T00:00:00"}, {}),
        ("/api/events/recent", {"since": "yesterday"}, {}),
        ("/api/events/by-run/done-1", {"after_seq": -1}, {}),
        ("/api/events/by-run/done-1", {"limit": 100000}, {}),
        ("/api/runs", {"status": "sleeping"}, {}),
        ("/api/runs", {"offset": -3}, {}),
        ("/api/runs/done-1/stream", {}, {"Last-Event-ID": "abc"}),
        ("/api/runs/%01bad", {}, {}),
    ],
)
def test_bad_parameters_are_422_json(client: TestClient, path: str, params: Any, headers: Any) -> None:
    """Bad parameters: 422 naming what was wrong."""
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith("bad parameters") or "run id" in response.json()["error"]


def test_control_requires_the_bearer_token(client: TestClient, db: Path) -> None:
    """No or a wrong token: 401 with WWW-Authenticate; the right one queues a channel request (202)."""
    missing = client.post("/api/runs/live-1/cancel")
    assert missing.status_code == 401 and "Bearer" in missing.headers["www-authenticate"]
    wrong = client.post("/api/runs/live-1/cancel", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = client.post("/api/runs/live-1/cancel", headers=AUTH, json={"reason": "from a test"})
    assert ok.status_code == 202 and ok.json()["via"] == "channel"
    with ControlChannel(db) as channel:
        (request,) = channel.requests("live-1")
    assert (request.action.value, request.reason, request.id) == (
        "cancel",
        "from a test",
        ok.json()["request_id"],
    )


def test_control_refuses_stopped_runs_unless_forced(client: TestClient) -> None:
    """A completed run: 409; with force the request is sent; unknown run 404; bad action 422."""
    assert client.post("/api/runs/done-1/pause", headers=AUTH).status_code == 409
    assert client.post("/api/runs/done-1/pause", headers=AUTH, json={"force": True}).status_code == 202
    assert client.post("/api/runs/live-1/resume", headers=AUTH).status_code == 202
    assert client.post("/api/runs/nope/cancel", headers=AUTH).status_code == 404
    assert client.post("/api/runs/live-1/explode", headers=AUTH).status_code == 422
    assert client.post("/api/runs/live-1/drain", headers=AUTH, json={"reason": 3}).status_code == 422


@pytest.mark.parametrize("force", ["yes", "true", 1, "on"])
def test_control_force_must_be_a_json_boolean(client: TestClient, db: Path, force: object) -> None:
    """`force` is JSON true/false only: "yes", "true", 1 or "on" are 422, no request to a stopped run."""
    response = client.post("/api/runs/done-1/cancel", headers=AUTH, json={"force": force})
    assert response.status_code == 422 and "body.force" in response.json()["error"]
    with ControlChannel(db) as channel:
        assert channel.requests("done-1") == []


def test_read_only_server_refuses_control(store: SQLiteEventStore) -> None:
    """--read-only: every control request is 403, whatever the token."""
    with TestClient(create_app(store, read_only=True), base_url=BASE_URL) as client:
        response = client.post("/api/runs/live-1/cancel", headers=AUTH)
        assert response.status_code == 403 and "read-only" in response.json()["error"]
        assert client.get("/api/health").json()["read_only"] is True


def test_token_comes_from_the_environment(store: SQLiteEventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a token argument $SWARM_OBS_TOKEN is the token; otherwise a random one is generated."""
    monkeypatch.setenv("SWARM_OBS_TOKEN", "from-env")
    assert create_app(store).state.swarm.token == "from-env"
    monkeypatch.delenv("SWARM_OBS_TOKEN")
    first, second = create_app(store).state.swarm.token, create_app(store).state.swarm.token
    assert first != second and len(first) >= 24


def test_in_memory_store_controls_a_scan_of_this_process() -> None:
    """Without a channel file, control reaches the in-process manager of a running scan."""
    from swarm_observability.control import get_manager, remove_manager

    store = InMemoryEventStore()
    record_run(store, "mem-1", end=None)
    manager = get_manager("mem-1")
    try:
        with TestClient(create_app(store, token=TOKEN), base_url=BASE_URL) as client:
            response = client.post("/api/runs/mem-1/cancel", headers=AUTH)
        assert response.status_code == 202 and response.json()["via"] == "process"
        assert manager.is_cancelled
    finally:
        remove_manager("mem-1")


def test_cors_is_closed_unless_configured(store: SQLiteEventStore) -> None:
    """No Access-Control-Allow-Origin by default; a configured origin gets it."""
    origin = {"Origin": "http://elsewhere.example"}
    with TestClient(create_app(store, token=TOKEN), base_url=BASE_URL) as client:
        assert "access-control-allow-origin" not in client.get("/api/runs", headers=origin).headers
    with TestClient(
        create_app(store, token=TOKEN, cors_origins=["http://elsewhere.example"]), base_url=BASE_URL
    ) as client:
        headers = client.get("/api/runs", headers=origin).headers
        assert headers["access-control-allow-origin"] == "http://elsewhere.example"


def test_page_and_static_files_are_served(client: TestClient) -> None:
    """/ is the page; its script and style come from the package, no external URL."""
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    for name in ("app.js", "app.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and "http://" not in asset.text and "https://" not in asset.text
    assert client.get("/openapi.json").json()["info"]["title"] == "swarm-observability"


def test_graph_view_has_the_recorded_shape_and_execution_counts() -> None:
    """/api/runs/{id}/graph: nodes and edges from get_graph() recorded at the start, with executions."""
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    from swarm_observability import SwarmObserver

    class S(TypedDict):
        n: int

    builder = StateGraph(S)
    builder.add_node("a", lambda s: {"n": s["n"] + 1})
    builder.add_node("b", lambda s: {"n": s["n"] + 1})
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", lambda s: "b" if s["n"] < 3 else END, ["b", END])
    builder.add_edge("b", "a")
    store = InMemoryEventStore()
    observer = SwarmObserver(store=store)
    observer.instrument(builder.compile()).invoke({"n": 0}, {"configurable": {"thread_id": "g-1"}})
    observer.close()
    record_run(store, "plain-1")
    with TestClient(create_app(store, token=TOKEN), base_url=BASE_URL) as client:
        graph = client.get("/api/runs/g-1/graph").json()
        plain = client.get("/api/runs/plain-1/graph").json()
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert graph["recorded"] is True and set(nodes) == {"__start__", "a", "b", "__end__"}
    assert (nodes["a"]["executions"], nodes["b"]["executions"], nodes["a"]["running"]) == (2, 1, 0)
    edges = {(e["source"], e["target"], e.get("conditional", False)) for e in graph["edges"]}
    assert ("__start__", "a", False) in edges and ("a", "b", True) in edges and ("b", "a", False) in edges
    assert (
        plain["recorded"] is False and [n["id"] for n in plain["nodes"]] == ["probe"] and plain["edges"] == []
    )
