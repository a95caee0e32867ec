"""The Host and Origin checks: DNS rebinding and cross-site requests never reach the control API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from swarm_observability.control import get_manager, remove_manager
from swarm_observability.server import create_app
from swarm_observability.server.guard import host_name, is_loopback_name
from swarm_observability.server.runner import BackgroundServer
from swarm_observability.stores import InMemoryEventStore

from .conftest import BASE_URL, TOKEN, record_run

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def running() -> Iterator[tuple[InMemoryEventStore, object]]:
    """An in-memory store with a running run ``g-1`` whose in-process manager control reaches."""
    store = InMemoryEventStore()
    record_run(store, "g-1", end=None, probes=1)
    manager = get_manager("g-1")
    yield store, manager
    remove_manager("g-1")


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:8765",
        "localhost:8765",
        "LOCALHOST",
        "[::1]:8765",
        "127.3.4.5",
        "page.localhost:9",
        "localhost.",
    ],
)
def test_loopback_hosts_are_answered(running, host: str) -> None:
    """Every name that can only mean this machine is served: the page, the API, control."""
    store, manager = running
    with TestClient(create_app(store, token=TOKEN), base_url=BASE_URL) as client:
        assert client.get("/", headers={"Host": host}).status_code == 200
        assert client.get("/api/runs", headers={"Host": host}).json()["total"] == 1
        assert client.post("/api/runs/g-1/pause", headers={**AUTH, "Host": host}).status_code == 202
    assert manager.is_paused


@pytest.mark.parametrize(
    "host", ["rebind.attacker.example", "attacker.example:8765", "127.0.0.1.attacker.example", "10.0.0.7", ""]
)
def test_other_hosts_are_refused_with_421_before_any_route(running, host: str) -> None:
    """A Host that is not loopback (DNS rebinding, a stray proxy) gets 421 JSON; control never runs."""
    store, manager = running
    with TestClient(create_app(store, token=TOKEN), base_url=BASE_URL) as client:
        for method, path in (("GET", "/"), ("GET", "/api/runs"), ("GET", "/api/events/stream")):
            response = client.request(method, path, headers={"Host": host})
            assert response.status_code == 421, (method, path)
            body = response.json()
            assert body["status"] == 421 and "--allowed-host" in body["error"]
            assert (repr(host) if host else "no Host header") in body["error"]
        assert client.post("/api/runs/g-1/cancel", headers={**AUTH, "Host": host}).status_code == 421
    assert not manager.is_cancelled


def test_allowed_hosts_add_names_and_star_turns_the_check_off(running) -> None:
    """allowed_hosts=["dash.internal"] answers that name (any port) and still refuses others; "*" any."""
    store, _ = running
    with TestClient(
        create_app(store, token=TOKEN, allowed_hosts=["Dash.Internal"]), base_url=BASE_URL
    ) as client:
        assert client.get("/api/runs", headers={"Host": "dash.internal:443"}).status_code == 200
        assert client.get("/api/runs", headers={"Host": "other.internal"}).status_code == 421
    with TestClient(create_app(store, token=TOKEN, allowed_hosts=["*"]), base_url=BASE_URL) as client:
        assert client.get("/api/runs", headers={"Host": "anything.example"}).status_code == 200


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        (None, 202),  # curl, the CLI, scripts: no browser acting for another site
        ("http://127.0.0.1:8765", 202),  # the page this server sent
        ("http://127.0.0.1:8765/", 202),
        ("https://127.0.0.1:8765", 202),  # same host and port behind a TLS-terminating proxy
        ("http://evil.example", 403),
        ("http://127.0.0.1:9999", 403),  # another local server's page
        ("http://localhost:8765", 403),  # another origin, though the same machine
        ("null", 403),  # sandboxed frames, file:// pages
    ],
)
def test_state_changing_requests_from_another_origin_are_refused(
    running, origin: str | None, status: int
) -> None:
    """POST control with an Origin other than the server's own is 403 JSON and changes nothing."""
    store, manager = running
    headers = {**AUTH, **({"Origin": origin} if origin else {})}
    with TestClient(create_app(store, token=TOKEN), base_url=BASE_URL) as client:
        response = client.post("/api/runs/g-1/pause", headers=headers)
        assert response.status_code == status
        if status == 403:
            assert response.json()["status"] == 403 and "--cors-origin" in response.json()["error"]
        # reads are not state changes: any origin may GET (CORS still keeps the answer from its script)
        assert client.get("/api/runs", headers={"Origin": "http://evil.example"}).status_code == 200
    assert manager.is_paused is (status == 202)


def test_a_configured_cors_origin_may_control(running) -> None:
    """cors_origins=[dash]: that origin may POST (with the token); a different one may not."""
    store, manager = running
    app = create_app(store, token=TOKEN, cors_origins=["https://dash.example.com"])
    with TestClient(app, base_url=BASE_URL) as client:
        refused = client.post("/api/runs/g-1/pause", headers={**AUTH, "Origin": "https://evil.example.com"})
        assert refused.status_code == 403 and not manager.is_paused
        allowed = client.post("/api/runs/g-1/pause", headers={**AUTH, "Origin": "https://dash.example.com"})
        assert allowed.status_code == 202 and manager.is_paused
        assert allowed.headers["access-control-allow-origin"] == "https://dash.example.com"


def test_a_rebinding_request_on_the_wire_is_refused_by_the_real_server(running) -> None:
    """Over a real socket (uvicorn): a request to 127.0.0.1 carrying the attacker's Host is 421."""
    store, manager = running
    with BackgroundServer(store, token=TOKEN) as server:
        rebound = httpx.post(
            f"{server.url}/api/runs/g-1/cancel", headers={**AUTH, "Host": f"attacker.example:{server.port}"}
        )
        assert rebound.status_code == 421 and rebound.headers["content-type"] == "application/json"
        assert httpx.get(f"{server.url}/api/health").status_code == 200
    assert not manager.is_cancelled


def test_host_names_are_read_like_a_browser_writes_them() -> None:
    """Ports, brackets, case and a trailing dot are dropped; only loopback names count as loopback."""
    assert [host_name(h) for h in ("LocalHost:80", "[::1]:8765", "127.0.0.1", "a.localhost.")] == [
        "localhost",
        "::1",
        "127.0.0.1",
        "a.localhost",
    ]
    assert [
        is_loopback_name(n) for n in ("::1", "127.9.9.9", "x.localhost", "localhost.example", "0.0.0.0")
    ] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_the_address_the_server_binds_to_is_an_allowed_host() -> None:
    """serve(host=<an interface's IP or name>) answers for it; a wildcard address names no host."""
    from swarm_observability.server.runner import with_bind_host

    assert with_bind_host("192.168.1.5", {"allowed_hosts": ("proxy",)})["allowed_hosts"] == (
        "proxy",
        "192.168.1.5",
    )
    assert with_bind_host("0.0.0.0", {}) == {} and with_bind_host("::", {}) == {}
    assert with_bind_host("127.0.0.1", {}) == {}
