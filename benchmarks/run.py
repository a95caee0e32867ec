"""Entry point: ``python -m benchmarks.run [--smoke] [--only NAME] [--cells PATTERN] [--out FILE]``.

Sections: ``overhead``, ``work`` (bytecodes per node, deterministic), ``gc`` (objects promoted to the
collector's oldest generation per node), ``stores``, ``latency``, ``peers``,
``analytics``, ``server``, ``postgres`` (needs a server, see ``benchmarks/postgres.py``). A full run
writes ``benchmarks/results/latest.json`` and ``latest.md``; ``--only`` replaces just those sections in
the existing file (so the peers section measured from another venv can be merged in), and ``--smoke``
writes nothing unless ``--out`` is given. Each section records the machine, date, load average before
and after, and a CPU speed gauge, because the VM's speed drifts. ``--cells memory:chain50``
(``CONFIG[:GRAPH[:MODE]]``, repeatable, ``*`` for any part) runs only those overhead cells and writes
nothing unless ``--out`` is given.

The peers are never installed in the project venv: ``--setup-peers DIR`` creates a separate venv for
them, and ``--peers-python DIR/bin/python`` (or ``SWARM_OBS_PEERS_PYTHON``) makes the peers section run
under that interpreter when they are not importable here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import analytics, collector, latency, overhead, peers, postgres, report, server, stores, work
from ._stats import machine_info

SECTIONS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "overhead": overhead.run,
    "work": work.run,
    "gc": collector.run,
    "stores": stores.run,
    "latency": latency.run,
    "peers": peers.run,
    "analytics": analytics.run,
    "server": server.run,
    "postgres": postgres.run,
}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"


def _peers_importable() -> bool:
    import importlib.util

    return all(
        importlib.util.find_spec(p.module.split(".")[0]) is not None and _find(p.module) for p in peers.PEERS
    )


def _find(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def run_section(
    name: str, smoke: bool, peers_python: str | None, cells: list[str] | None = None
) -> dict[str, Any]:
    """Run one section and wrap it with the machine facts and timing."""
    meta = machine_info()
    t0 = time.perf_counter()
    if name == "peers" and peers_python and not _peers_importable():
        with tempfile.TemporaryDirectory() as tmp:
            body = peers.run_in(peers_python, smoke, Path(tmp) / "peers.json")
        if "meta" in body:
            return body
    elif cells:
        body = overhead.run(smoke, cells_wanted=cells)
    else:
        body = SECTIONS[name](smoke)
    return {
        "meta": meta,
        "smoke": smoke,
        "elapsed_s": round(time.perf_counter() - t0, 1),
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        **body,
    }


def write(results: dict[str, Any], out: Path) -> None:
    """Write the JSON and the markdown beside it, atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    tmp.replace(out)
    out.with_suffix(".md").write_text(report.render(results) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, a few seconds; writes only with --out"
    )
    parser.add_argument(
        "--only", action="append", choices=sorted(SECTIONS), help="run only this section (repeatable)"
    )
    parser.add_argument(
        "--cells",
        action="append",
        metavar="CONFIG[:GRAPH[:MODE]]",
        help="only these overhead cells, e.g. memory+otel:chain50:astream (repeatable; no file unless --out)",
    )
    parser.add_argument("--out", type=Path, help=f"results JSON (default {DEFAULT_OUT} for full runs)")
    parser.add_argument(
        "--peers-python",
        default=os.environ.get("SWARM_OBS_PEERS_PYTHON"),
        help="interpreter of a venv with the peers installed (env SWARM_OBS_PEERS_PYTHON)",
    )
    parser.add_argument("--setup-peers", type=Path, metavar="DIR", help="create a peers venv in DIR and exit")
    parser.add_argument(
        "--profile",
        metavar="CONFIG:GRAPH:MODE",
        help="cProfile one overhead cell (e.g. memory+otel:chain50:astream) and exit",
    )
    args = parser.parse_args(argv)

    if args.setup_peers:
        return peers.setup_venv(args.setup_peers)
    if args.profile:
        config, graph, mode = args.profile.split(":")
        print(overhead.profile(config, graph, mode))
        return 0

    names = ["overhead"] if args.cells else args.only or list(SECTIONS)
    out = args.out or (None if args.smoke or args.cells else DEFAULT_OUT)
    results: dict[str, Any] = {"schema": 1, "sections": {}}
    if out is not None and out.exists() and args.only:
        results = json.loads(out.read_text())
    for name in names:
        print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
        results["sections"][name] = run_section(name, args.smoke, args.peers_python, args.cells)
    results["targets"] = [] if args.smoke or args.cells else report.evaluate(results["sections"])
    if out is not None:
        write(results, out)
        print(f"[benchmarks] wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)
    print(report.render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
