"""The page in a real browser: Debian's Chromium driven by Playwright (pip package; no browser download).

Demo scans run in other processes; the page shows one appear and progress live and Cancel stops it;
Pause holds a second one (shown paused), Resume lets it run to the end. The screenshots the README
shows are taken on the way (written to
``$SWARM_OBS_SCREENSHOTS`` when set, e.g. ``docs/img``, else to the test's temporary folder).

Runs when a Chromium is found (``$SWARM_OBS_CHROMIUM``, else ``chromium`` on the PATH); skips saying so
otherwise. In CI (``CI=true``) with ``SWARM_OBS_CHROMIUM`` set, a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from demo.planted import plant_folder

from swarm_observability.server.runner import BackgroundServer
from swarm_observability.state import rebuild_run_state
from swarm_observability.stores import SQLiteEventStore

pytestmark = pytest.mark.browser

_DEMO = [sys.executable, "-m", "swarm_observability", "demo"]


def _chromium() -> str:
    explicit = os.environ.get("SWARM_OBS_CHROMIUM")
    found = explicit or shutil.which("chromium") or shutil.which("chromium-browser")
    if found and Path(found).exists():
        return found
    if explicit and os.environ.get("CI") == "true":
        pytest.fail(
            f"SWARM_OBS_CHROMIUM={explicit} does not exist (the CI stage 30-browser installs chromium)"
        )
    pytest.skip(
        "SKIPPED LOUDLY: no Chromium found (install Debian's: apt-get install chromium, or set "
        "SWARM_OBS_CHROMIUM); `.ci/stages/30-browser.sh` installs it and runs this test"
    )


def _screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SWARM_OBS_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _folder(path: Path, files: int) -> Path:
    folder = plant_folder(path)
    for i in range(files):  # enough files that the scan runs long enough to be steered
        (folder / f"module_{i}.py").write_text(f"VALUE = {i}\n")
    return folder


def test_page_shows_a_running_scan_live_cancels_one_and_pauses_and_resumes_another(tmp_path: Path) -> None:
    """See a demo scan progress live and press Cancel: cancelled; Pause another: paused; Resume: completed."""
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev group) is not installed")
    folder = _folder(tmp_path / "src", 60)
    db = tmp_path / "events.db"
    SQLiteEventStore(db).close()
    store = SQLiteEventStore(db, read_only=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWARM_OBS_", "OTEL_"))}
    env["SWARM_OBS_DEMO_DELAY"] = "0.2"
    demo = second = None
    shots = _screenshots(tmp_path)
    try:
        with BackgroundServer(store, heartbeat=2) as server, sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{server.url}/#token={server.token}")
            page.wait_for_selector("#runs-empty:not([hidden])")
            demo = _start_demo(folder, db, "e2e-1", env)
            row = page.wait_for_selector('tr[data-run-id="e2e-1"][data-status="running"]', timeout=60_000)
            first = int(row.query_selector('[data-testid="events"]').inner_text().replace(",", ""))
            page.wait_for_function(
                "n => Number(document.querySelector('tr[data-run-id=\"e2e-1\"] [data-testid=events]')"
                ".innerText.replace(/,/g, '')) > n",
                arg=first,
                timeout=60_000,
            )
            page.screenshot(path=str(shots / "page-runs.png"))
            page.click('tr[data-run-id="e2e-1"] a')
            status = '[data-testid="run-status"]'
            page.wait_for_selector(f'{status}[data-status="running"]')
            page.wait_for_selector('.g-row[data-kind="probe"]', timeout=60_000)
            page.wait_for_selector("#btn-cancel:not([disabled])")
            page.wait_for_timeout(1500)
            page.click("#btn-cancel")
            page.wait_for_selector(f'{status}[data-status="cancelled"]', timeout=60_000)
            page.wait_for_selector('#log-body tr[data-seq] >> text="scan_cancelled"')
            assert demo.wait(timeout=60) == 130, demo.stderr.read() if demo.stderr else ""
            last = store.last_sequence("e2e-1")
            page.wait_for_function(
                "n => document.querySelector('[data-testid=card-events]').innerText.replace(/,/g, '') == n",
                arg=str(last),
            )
            page.screenshot(path=str(shots / "page-run.png"), full_page=True)
            page.click('#timeline-tabs .tab[data-mode="graph"]')
            page.wait_for_selector('g.gnode.ran[data-node="planner"]')
            page.wait_for_selector('g.gnode[data-node="reviewer"]')
            page.locator(".panel").first.screenshot(path=str(shots / "page-graph.png"))

            second = _start_demo(_folder(tmp_path / "src2", 25), db, "e2e-2", env)
            page.click("a.brand")
            page.wait_for_selector('tr[data-run-id="e2e-2"][data-status="running"]', timeout=60_000)
            page.click('tr[data-run-id="e2e-2"] a')
            page.wait_for_selector(f'{status}[data-status="running"]')
            page.wait_for_selector("#btn-pause:not([disabled])")
            page.click("#btn-pause")
            page.wait_for_selector(f'{status}[data-status="paused"]', timeout=60_000)
            assert page.inner_text(status) == "paused (pause)"
            assert page.is_disabled("#btn-pause") and not page.is_disabled("#btn-cancel")
            page.click("#btn-resume:not([disabled])")
            page.wait_for_selector(f'{status}[data-status="completed"]', timeout=60_000)
            page.wait_for_selector('#log-body tr[data-seq] >> text="scan_complete"')
            assert page.is_disabled("#btn-pause") and page.is_disabled("#btn-resume")
            assert second.wait(timeout=60) == 0, second.stderr.read() if second.stderr else ""
            browser.close()
            assert errors == [], f"the page raised: {errors}"
        assert rebuild_run_state(store, "e2e-1").status.value == "cancelled"
        assert rebuild_run_state(store, "e2e-2").status.value == "completed"
        pauses = [
            (e.type_name, e.data.get("reason"))
            for e in store.load("e2e-2")
            if e.type_name in ("scan_paused", "scan_resumed")
        ]
        assert pauses == [("scan_paused", "pause"), ("scan_resumed", "pause")]
    finally:
        for process in (demo, second):
            if process is not None and process.poll() is None:
                process.kill()
        store.close()
    assert (shots / "page-run.png").stat().st_size > 10_000


def _start_demo(folder: Path, db: Path, thread: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*_DEMO, str(folder), "--store", str(db), "--thread", thread, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
