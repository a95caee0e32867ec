"""Live display of a scan from its event stream (``demo``, ``tail --follow``, ``resume --graph``).

:class:`LiveView` folds :class:`StreamEvent` records as they arrive. On a terminal with rich it
shows a progress bar (probes done out of planned, or scopes done when there is no plan) and the
scopes running right now with their latest ``progress()``; finished nodes, probes and agents are
printed above it as they complete. Everywhere else it prints the same lines as plain text, one per
finished scope and lifecycle change, which is what logs and tests see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..events import StreamEvent
from ._format import OUTCOME_STYLES, Output, fmt_duration

_OPENERS = {"node_enter": "node", "probe_start": "probe", "agent_start": "agent", "plan_start": "plan"}
_CLOSERS = {"node_exit", "probe_complete", "agent_complete", "plan_complete"}


@dataclass
class _Open:
    kind: str
    name: str
    parent: str | None = None
    progress: float | None = None
    message: str | None = None
    results: int = 0


class LiveView:
    """Show a scan while it runs. Use as a context manager and call :meth:`update` per event."""

    def __init__(self, out: Output, *, live: bool = True, quiet: bool = False) -> None:
        self.out = out
        self.live = live and out.rich
        self.quiet = quiet
        self.open: dict[str, _Open] = {}
        self.planned: int | None = None
        self.probes_done = 0
        self.scopes_done = 0
        self.findings = 0
        self.errors = 0
        self.status = "starting"
        self.run_id: str | None = None
        self._live: Any = None

    def __enter__(self) -> LiveView:
        if self.live:
            from rich.live import Live

            self._live = Live(self._render(), console=self.out.console, refresh_per_second=8, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    # -- folding ----------------------------------------------------------------------------------

    def update(self, event: StreamEvent) -> None:
        """Fold one event into the display."""
        kind = event.type_name
        self.run_id = event.run_id
        sid = event.scope_id or ""
        if kind in _OPENERS:
            name = {"node": event.node, "probe": event.probe, "agent": event.agent}.get(_OPENERS[kind])
            self.open[sid] = _Open(_OPENERS[kind], name or _OPENERS[kind], event.parent_scope_id)
            steps = event.data.get("steps")
            if kind == "plan_start" and isinstance(steps, list):
                self.planned = len(steps)
        elif kind in _CLOSERS:
            self._closed(event, self.open.pop(sid, None))
        elif kind == "probe_result":
            self.findings += 1
            if sid in self.open:
                self.open[sid].results += 1
        elif kind == "node_progress" and sid in self.open:
            self.open[sid].progress = event.progress
            self.open[sid].message = event.message
        elif kind == "log":
            self._print(f"  log: {event.message or ''}", "dim")
        elif kind.startswith("scan_"):
            self._lifecycle(event)
        if self._live is not None:
            self._live.update(self._render())

    def _closed(self, event: StreamEvent, scope: _Open | None) -> None:
        kind = event.type_name
        outcome = str(event.data.get("outcome") or "ok")
        self.scopes_done += 1
        duration = fmt_duration(event.data.get("duration_ms"))
        if kind == "plan_complete":
            steps = event.data.get("steps")
            if isinstance(steps, list):
                self.planned = len(steps)
                self._print(f"  plan: {', '.join(map(str, steps)) or '(nothing to do)'}")
            return
        name = scope.name if scope else (event.node or event.probe or event.agent or "?")
        what = {"node_exit": "node", "probe_complete": "probe", "agent_complete": "agent"}[kind]
        extra = ""
        if kind == "probe_complete":
            self.probes_done += 1
            extra = f", {scope.results} result(s)" if scope else ""
        if outcome == "error":
            self.errors += 1
            extra += f": {event.data.get('error_type', 'error')}: {event.data.get('error_message', '')}"
        self._print(f"  {outcome:<9} {what} {name} ({duration}{extra})", OUTCOME_STYLES.get(outcome))

    def _lifecycle(self, event: StreamEvent) -> None:
        kind = event.type_name
        data = event.data
        if kind == "scan_started":
            self.status = "running"
            self._print(f"scan {event.run_id} started (graph {data.get('graph', '?')})", "bold")
        elif kind == "scan_resumed":
            self.status = "running"
            self._print(f"scan {event.run_id} resumed", "bold cyan")
        elif kind == "scan_paused":
            reason = data.get("reason", "pause")
            self.status = "paused"
            self._print(f"scan paused ({reason})", "bold cyan")
        elif kind == "scan_complete":
            self.status = "completed"
            self._print(f"scan complete in {fmt_duration(data.get('duration_ms'))}", "bold green")
        elif kind == "scan_error":
            self.status = "failed"
            self._print(f"scan failed: {data.get('error_type')}: {data.get('error_message')}", "bold red")
        elif kind == "scan_cancelled":
            self.status = "cancelled"
            reason = data.get("reason")
            self._print(f"scan cancelled{f' ({reason})' if reason else ''}", "bold yellow")
        if kind in ("scan_complete", "scan_error", "scan_cancelled") or (
            kind == "scan_paused" and data.get("reason") != "pause"
        ):
            self.open.clear()

    # -- drawing ----------------------------------------------------------------------------------

    def _print(self, text: str, style: str | None = None) -> None:
        if not self.quiet:
            self.print_line(text, style)

    def print_line(self, text: str, style: str | None = None) -> None:
        """Print a line (above the live display while it is shown)."""
        if self._live is not None:
            from rich.text import Text

            self._live.console.print(Text(text, style=style or ""), highlight=False)
        else:
            self.out.line(text, style)

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        head = Table.grid(padding=(0, 1))
        if self.planned:
            head.add_row(
                Text(f"{self.status:<9}", style=OUTCOME_STYLES.get(self.status, "")),
                ProgressBar(total=self.planned, completed=min(self.probes_done, self.planned), width=36),
                Text(f"{self.probes_done}/{self.planned} probes  {self.findings} findings"),
            )
        else:
            head.add_row(
                Text(f"{self.status:<9}", style=OUTCOME_STYLES.get(self.status, "")),
                Text(f"{self.scopes_done} scopes done  {self.findings} results"),
            )
        rows = Table.grid(padding=(0, 2))
        parents = {scope.parent for scope in self.open.values()}
        innermost = [scope for sid, scope in self.open.items() if sid not in parents]
        for scope in innermost[-12:]:
            bar: Any = Text("")
            if scope.progress is not None:
                bar = ProgressBar(total=1.0, completed=scope.progress, width=20)
            rows.add_row(
                Text(f"  {scope.kind}", style="dim"),
                Text(scope.name, style="bold"),
                bar,
                Text(scope.message or "", style="dim", overflow="ellipsis", no_wrap=True),
            )
        return Group(head, rows)
