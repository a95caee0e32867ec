"""`swarm-obs serve` and `swarm-obs demo --serve` from the command line, in their own processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from demo.planted import plant_folder

from swarm_observability import server
from swarm_observability.cli import main


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWARM_OBS_", "OTEL_"))}
    env.update(extra)
    return env


def _url_from(process: subprocess.Popen[str], pattern: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match.group(1)
    raise AssertionError(f"no line matching {pattern!r} in {seen!r}")


def test_serve_prints_the_link_with_its_token_and_serves_the_store(db: Path) -> None:
    """`swarm-obs serve --port 0` prints the page link with the token; control needs it; Ctrl-C stops it.

    ``--allowed-host`` adds a name the server answers for (a proxy's); other names stay refused.
    """
    argv = [sys.executable, "-m", "swarm_observability", "serve", "--store", str(db), "--port", "0"]
    argv += ["--allowed-host", "obs.proxy.example"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        link = _url_from(process, r"open (http://127\.0\.0\.1:\d+/#token=\S+)")
        base, token = link.split("/#token=")
        assert httpx.get(f"{base}/api/runs").json()["total"] == 3
        assert httpx.get(f"{base}/api/runs", headers={"Host": "obs.proxy.example"}).status_code == 200
        assert httpx.get(f"{base}/api/runs", headers={"Host": "other.example"}).status_code == 421
        assert httpx.post(f"{base}/api/runs/live-1/pause").status_code == 401
        ok = httpx.post(f"{base}/api/runs/live-1/pause", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 202
    finally:
        process.send_signal(2)
        assert process.wait(timeout=30) == 0


def test_serve_read_only_takes_the_token_from_the_environment(db: Path) -> None:
    """--read-only announces it and refuses control (403); bad arguments exit 2 with one line."""
    argv = [
        sys.executable,
        "-m",
        "swarm_observability",
        "serve",
        "--store",
        str(db),
        "--port",
        "0",
        "--read-only",
    ]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        base = _url_from(process, r"on (http://127\.0\.0\.1:\d+)/")
        assert "read-only" in process.stdout.readline()  # type: ignore[union-attr]
        assert (
            httpx.post(f"{base}/api/runs/live-1/cancel", headers={"Authorization": "Bearer x"}).status_code
            == 403
        )
    finally:
        process.send_signal(2)
        process.wait(timeout=30)


def test_serve_bad_arguments_exit_2(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A port out of range or a missing store: exit 2 and one clear line."""
    assert main(["serve", "--store", str(db), "--port", "70000"]) == 2
    assert "--port must be 0-65535" in capsys.readouterr().err
    assert main(["serve", "--store", str(db.parent / "absent.db")]) == 2
    assert "no event store" in capsys.readouterr().err


def test_missing_server_extra_gives_the_install_hint(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without FastAPI/uvicorn, `serve` exits 2 with `pip install 'swarm-observability[server]'`."""
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(server.ServerUnavailableError, match=r"swarm-observability\[server\]"):
        server.create_app(object())
    assert main(["serve", "--store", str(db), "--port", "0"]) == 2
    assert "pip install 'swarm-observability[server]'" in capsys.readouterr().err


def test_demo_serve_shows_the_running_scan_on_the_page(tmp_path: Path) -> None:
    """`swarm-obs demo --serve` prints the page link; while the scan runs the API shows it running."""
    folder = plant_folder(tmp_path / "src")
    db = tmp_path / "events.db"
    argv = [sys.executable, "-m", "swarm_observability", "demo", str(folder), "--store", str(db)]
    argv += ["--thread", "served-1", "--no-progress", "--serve", "--port", "0", "--no-browser"]
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_env(SWARM_OBS_DEMO_DELAY="0.2"),
    )
    try:
        link = _url_from(process, r"watch the scan on (http://127\.0\.0\.1:\d+/#token=\S+)")
        base = link.split("/#")[0]
        deadline = time.monotonic() + 60
        statuses = set()
        while time.monotonic() < deadline and "running" not in statuses:
            runs = httpx.get(f"{base}/api/runs").json()["runs"]
            statuses = {r["status"] for r in runs if r["run_id"] == "served-1"}
            time.sleep(0.05)
        assert statuses == {"running"}
        assert httpx.get(base + "/").status_code == 200
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cors-origin", "dash.example.com"], "is not an origin: expected scheme://host[:port]"),
        (["--cors-origin", "https://dash.example.com/app"], "is not an origin"),
        (["--cors-origin", "https://dash.example.com:99999"], "Port out of range"),
        (["--allowed-host", ""], "--allowed-host: must not be empty"),
    ],
)
def test_serve_refuses_origins_and_hosts_that_can_never_match(
    db: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --cors-origin that is not scheme://host[:port] (CORS would stay closed) or an empty --allowed-host:
    exit 2 with one line, before anything listens."""
    code = main(["serve", "--store", str(db), "--port", "0", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_serve_takes_an_origin_with_a_trailing_slash_as_the_origin() -> None:
    """`--cors-origin https://dash.example.com/` means the origin a browser sends, without the slash."""
    from swarm_observability.cli import build_parser

    args = build_parser().parse_args(["serve", "--cors-origin", "https://dash.example.com/"])
    assert args.cors_origin == ["https://dash.example.com"]
