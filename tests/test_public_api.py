"""The public surface: ``swarm_observability.__all__`` is deliberate, sorted, importable and documented."""

from __future__ import annotations

import ast
import inspect
import itertools
import re
from pathlib import Path

import swarm_observability

# Names that are plain values by convention and need no docstring.
_UNDOCUMENTED_OK = {"__version__"}


def _sort_key(name: str) -> tuple[int, list[object]]:
    """isort-style order, as ruff's RUF022 keeps ``__all__``: CONSTANTS, then Classes, then the rest."""
    group = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    natural = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
    return group, natural


def _documented_constants() -> set[str]:
    """Module-level names in the package that are followed by an attribute docstring."""
    names: set[str] = set()
    for path in Path(swarm_observability.__file__).parent.rglob("*.py"):
        body = ast.parse(path.read_text(encoding="utf-8")).body
        for statement, following in itertools.pairwise(body):
            is_doc = (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
                and following.value.value.strip()
            )
            if not is_doc:
                continue
            if isinstance(statement, ast.Assign):
                names |= {t.id for t in statement.targets if isinstance(t, ast.Name)}
            elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                names.add(statement.target.id)
    return names


def _type_checking_imports() -> dict[str, set[str]]:
    """``module -> names`` of the ``TYPE_CHECKING`` imports in ``__init__.py``, each checked as ``A as A``."""
    tree = ast.parse(Path(swarm_observability.__file__).read_text(encoding="utf-8"))
    blocks = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
    assert len(blocks) == 1, "expected one `if TYPE_CHECKING:` block in __init__.py"
    found: dict[str, set[str]] = {}
    for statement in blocks[0].body:
        assert isinstance(statement, ast.ImportFrom) and statement.level == 1, ast.unparse(statement)
        for alias in statement.names:
            assert alias.asname == alias.name, f"re-export needs `{alias.name} as {alias.name}`"
            found.setdefault(f".{statement.module}", set()).add(alias.name)
    return found


def test_type_checking_imports_match_the_lazy_table() -> None:
    """The ``TYPE_CHECKING`` re-exports name exactly the ``_LAZY`` names, each from the same module."""
    lazy = {module: set(names) for module, names in swarm_observability._LAZY.items()}
    assert _type_checking_imports() == lazy
    flat = [name for names in swarm_observability._LAZY.values() for name in names]
    assert len(flat) == len(set(flat)), "a name is listed under two modules in _LAZY"


def test_all_is_the_sorted_lazy_table() -> None:
    """``__all__`` is every ``_LAZY`` name plus ``__version__``, in isort-style order (as RUF022 keeps it)."""
    derived = [*swarm_observability._EXPORTS, "__version__"]
    assert swarm_observability.__all__ == sorted(derived, key=_sort_key)


def test_every_public_name_is_importable() -> None:
    """``from swarm_observability import <name>`` works for every name in __all__."""
    namespace: dict[str, object] = {}
    exec(f"from swarm_observability import {', '.join(swarm_observability.__all__)}", namespace)
    for name in swarm_observability.__all__:
        assert namespace[name] is getattr(swarm_observability, name)


def test_every_public_object_has_a_docstring() -> None:
    """The package, each public class and function, and each public constant carry their own docstring."""
    assert (swarm_observability.__doc__ or "").strip()
    constants = _documented_constants()
    undocumented = []
    for name in swarm_observability.__all__:
        obj = getattr(swarm_observability, name)
        if name in _UNDOCUMENTED_OK:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismethod(obj):
            documented = bool((obj.__doc__ or "").strip())
        else:
            documented = name in constants
        if not documented:
            undocumented.append(name)
    assert undocumented == []


def test_reading_a_store_does_not_import_langgraph_or_the_otel_sdk() -> None:
    """Public names load on first use, so a store reader pays for neither LangGraph nor the OTel SDK."""
    import subprocess
    import sys

    code = (
        "import sys, swarm_observability as so\n"
        "from swarm_observability.stores import open_store\n"
        "so.StreamEvent, so.EventEmitter\n"
        "heavy = [m for m in ('langgraph', 'langchain_core', 'opentelemetry.sdk') if m in sys.modules]\n"
        "print(heavy)\n"
        "so.SwarmObserver\n"
        "print('langgraph' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "True"]
