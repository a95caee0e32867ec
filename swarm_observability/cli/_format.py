"""Output for ``swarm-obs``: human text (rich on a terminal, plain otherwise) and ``--json``.

Rich is optional (the ``cli`` extra). It is imported lazily and used only when stdout is a
terminal: tables, colours, trees and the live progress display. Piped or captured output, and
every install without rich, get plain aligned text with the same content, so scripts and tests
see stable output. ``--json`` prints one JSON document per command (``tail --json``: one event per
line), never mixed with human text.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

OUTCOME_STYLES = {
    "ok": "green",
    "completed": "green",
    "error": "bold red",
    "failed": "bold red",
    "cancelled": "yellow",
    "paused": "cyan",
    "interrupted": "cyan",
    "running": "blue",
    "open": "magenta",
    "incomplete": "magenta",
    "damaged": "bold red",
}
SEVERITY_STYLES = {"high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def rich_available() -> bool:
    """Whether the optional ``rich`` package can be imported."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def use_rich(stream: IO[str]) -> bool:
    """Rich output only on a terminal, with rich installed, and unless ``SWARM_OBS_PLAIN`` is set."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("SWARM_OBS_PLAIN") and rich_available()


def fmt_duration(ms: float | None) -> str:
    """``850 ms``, ``1.25 s``, ``3 m 05 s``; ``-`` when unknown."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} m {rest:02d} s"


def fmt_status(status: str, reason: str | None = None) -> str:
    """``cancelled (Ctrl-C)``; the reason is left out when missing or equal to the status."""
    return f"{status} ({reason})" if reason and reason != status else status


def fmt_time(value: datetime | None) -> str:
    """UTC time with milliseconds, e.g. ``2026-11-22 19:24:18.123Z``."""
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def to_jsonable(value: Any) -> Any:
    """Datetimes as ISO strings, tuples as lists, dataclasses and pydantic models as dicts."""
    if isinstance(value, datetime):
        return fmt_time(value).replace(" ", "T")
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "model_dump"):
        return to_jsonable(value.model_dump(mode="json"))
    if hasattr(value, "__dataclass_fields__"):
        return {name: to_jsonable(getattr(value, name)) for name in value.__dataclass_fields__}
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value
    return value


@dataclass
class TreeNode:
    """A line of a tree (``show``): ``label`` plus an optional ``style`` for the outcome part."""

    label: str
    status: str = ""
    detail: str = ""
    children: list[TreeNode] = field(default_factory=list)


class Output:
    """Where a command writes: human text (rich or plain) or JSON."""

    def __init__(self, *, json_mode: bool = False, stream: IO[str] | None = None) -> None:
        self.json_mode = json_mode
        self.stream = stream if stream is not None else sys.stdout
        self.rich = not json_mode and use_rich(self.stream)
        self._console: Any = None

    @property
    def console(self) -> Any:
        """The rich ``Console`` (only when :attr:`rich` is true)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False)
        return self._console

    def line(self, text: str = "", style: str | None = None) -> None:
        """Print one line of human text."""
        if self.rich:
            self.console.print(text, style=style, markup=False, soft_wrap=True)
        else:
            print(text, file=self.stream)

    def json(self, value: Any, *, compact: bool = False) -> None:
        """Print one JSON document."""
        text = json.dumps(to_jsonable(value), ensure_ascii=False, indent=None if compact else 2, default=str)
        print(text, file=self.stream, flush=True)

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        title: str | None = None,
        styles: dict[int, dict[str, str]] | None = None,
    ) -> None:
        """A table; ``styles[column][cell text]`` colours a cell on a terminal."""
        cells = [[str(c) for c in row] for row in rows]
        if self.rich:
            from rich.table import Table

            table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
            for name in columns:
                table.add_column(name, overflow="fold")
            for row in cells:
                table.add_row(*[_styled(text, (styles or {}).get(i, {})) for i, text in enumerate(row)])
            self.console.print(table)
            return
        if title:
            print(title, file=self.stream)
        widths = [max([len(name)] + [len(row[i]) for row in cells]) for i, name in enumerate(columns)]
        print("  ".join(name.ljust(widths[i]) for i, name in enumerate(columns)).rstrip(), file=self.stream)
        for row in cells:
            print("  ".join(text.ljust(widths[i]) for i, text in enumerate(row)).rstrip(), file=self.stream)

    def tree(self, root: TreeNode) -> None:
        """A tree of scopes (``show``)."""
        if self.rich:
            from rich.tree import Tree

            def build(node: TreeNode, parent: Any) -> None:
                branch = parent.add(_tree_text(node))
                for child in node.children:
                    build(child, branch)

            top = Tree(_tree_text(root))
            for child in root.children:
                build(child, top)
            self.console.print(top)
            return
        print(_plain_label(root), file=self.stream)
        self._plain_children(root.children, "")

    def _plain_children(self, children: list[TreeNode], prefix: str) -> None:
        for index, child in enumerate(children):
            last = index == len(children) - 1
            print(f"{prefix}{'└─ ' if last else '├─ '}{_plain_label(child)}", file=self.stream)
            self._plain_children(child.children, prefix + ("   " if last else "│  "))


def _plain_label(node: TreeNode) -> str:
    return "  ".join(part for part in (node.label, node.status, node.detail) if part)


def _tree_text(node: TreeNode) -> Any:
    from rich.text import Text

    text = Text(node.label, style="bold")
    if node.status:
        text.append("  ")
        text.append(node.status, style=OUTCOME_STYLES.get(node.status, ""))
    if node.detail:
        text.append("  ")
        text.append(node.detail, style="dim")
    return text


def _styled(text: str, styles: dict[str, str]) -> Any:
    style = styles.get(text)
    if not style:
        return text
    from rich.text import Text

    return Text(text, style=style)
