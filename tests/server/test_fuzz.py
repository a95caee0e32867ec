"""Property testing of the API from its own OpenAPI schema (schemathesis): no input gives a 5xx."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis (dev group) is not installed")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from swarm_observability.server import create_app  # noqa: E402
from swarm_observability.stores import SQLiteEventStore  # noqa: E402

from .conftest import TOKEN, record_run  # noqa: E402


def _schema() -> Any:
    """The app's schema over a store with a finished and a running run; streams left out (they never end).

    Built at collection (``schemathesis.pytest.from_fixture`` needs a pytest internal that pytest 9
    removed), over a store in a temporary folder removed at exit.
    """
    folder = Path(tempfile.mkdtemp(prefix="swarm-obs-fuzz-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    store = SQLiteEventStore(folder / "events.db")
    record_run(store, "done-1")
    record_run(store, "live-1", end=None, probes=1)
    app = create_app(store, token=TOKEN, allowed_hosts=["testserver"])  # the name schemathesis sends
    return schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex=r"/stream$")


schema = _schema()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_a_server_error(case: Any) -> None:
    """Every operation, with generated parameters and bodies, with and without the token: never a 5xx."""
    for headers in ({"Authorization": f"Bearer {TOKEN}"}, {}):
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error])
