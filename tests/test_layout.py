"""The package layout rules of issue 16, read from the source: no cycles, small core modules, one seam.

``make lint`` runs import-linter (the layers) and mypy; these checks need no extra tool, so they run in
``make test`` too.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "swarm_observability"
CORE = ("instrumentation", "control")
"""The directories the issue's rules apply to (the instrumentation core and control)."""
SMALL = (*CORE, "stores")
"""The directories the 400-line cap and the private-import rule cover (the core, control and stores)."""
CORE_MODULES = ("event*.py", "emitter*.py", "processors*.py")
"""The top-level modules those two rules cover too: the event record and the emitter the core emits to."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, *, top_level_only: bool) -> list[tuple[str, list[str]]]:
    """``(module, names)`` for every ``import``/``from`` in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # module level, including ``if TYPE_CHECKING:`` blocks
        nodes = [n for stmt in tree.body for n in ([stmt] if not isinstance(stmt, ast.If) else stmt.body)]
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((module, [alias.name for alias in node.names]))
    return found


def _files(directories: tuple[str, ...]) -> list[Path]:
    return sorted(p for d in directories for p in (PACKAGE / d).rglob("*.py"))


def _core_files() -> list[Path]:
    return _files(CORE)


def _core_modules() -> list[Path]:
    return sorted(p for pattern in CORE_MODULES for p in PACKAGE.glob(pattern))


def _small_files() -> list[Path]:
    return _files(SMALL) + _core_modules()


def test_no_import_cycles_in_the_package() -> None:
    """Module-level imports (TYPE_CHECKING ones too) of swarm_observability form no cycle."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for module, names in _imports(path, top_level_only=True):
            for target in [f"{module}.{n}" for n in names] + [module]:
                if target in modules and target != name:
                    edges.add(target)
                    break
        graph[name] = edges
    # a package's own __init__ re-exporting its children is not a cycle of responsibilities
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}

    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert cycles == []


_OVER_400: dict[str, str] = {}
"""Modules still over the limit, each with its plan; strict xfail, so fixing one fails until it is removed."""


def _size_case(path: Path) -> object:
    rel = str(path.relative_to(PACKAGE))
    marks = [pytest.mark.xfail(reason=_OVER_400[rel], strict=True)] if rel in _OVER_400 else []
    return pytest.param(path, id=rel, marks=marks)


@pytest.mark.parametrize("path", [_size_case(p) for p in _small_files()])
def test_core_modules_stay_small(path: Path) -> None:
    """No module of the core, control/, stores/, the event modules or the emitter is over 400 lines."""
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 400


def test_no_private_name_is_imported_across_modules() -> None:
    """The core, control/, stores/ and the event and emitter modules import no other module's ``_private``."""
    offenders = [
        f"{_module_name(path)}: from {module} import {name}"
        for path in _small_files()
        for module, names in _imports(path, top_level_only=False)
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert offenders == []


def test_no_private_module_is_imported_from_outside_its_package() -> None:
    """A private module of any package (``pkg._x``: the core, the CLI ...) is imported only from inside it."""
    owner = {
        _module_name(p): _module_name(p.parent / "__init__.py")
        for p in PACKAGE.rglob("*.py")
        if p.stem.startswith("_") and not p.stem.startswith("__")
    }
    offenders = sorted(
        f"{_module_name(path)} imports {target}"
        for path in PACKAGE.rglob("*.py")
        for module, names in _imports(path, top_level_only=False)
        for target in [module, *(f"{module}.{name}" for name in names)]
        if target in owner and not f"{_module_name(path)}.".startswith(f"{owner[target]}.")
    )
    assert {
        "swarm_observability.instrumentation._langgraph",
        "swarm_observability.cli._drive",
    } <= owner.keys()
    assert offenders == []


def test_only_one_module_touches_langgraph_internals() -> None:
    """Only instrumentation/_langgraph.py imports ``langgraph._internal`` or private ``langgraph.pregel``."""
    touching = {
        _module_name(path)
        for path in _core_files()
        for module, _ in _imports(path, top_level_only=False)
        if module.startswith("langgraph._internal") or module.startswith("langgraph.pregel._")
    }
    assert touching <= {"swarm_observability.instrumentation._langgraph"}


@pytest.mark.parametrize("directory", CORE)
def test_every_core_module_is_in_a_layer(directory: str) -> None:
    """Each module of instrumentation/ and control/ is in an import-linter layer that lint-imports checks."""
    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    container = f"swarm_observability.{directory}"
    (contract,) = [
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if c["type"] == "layers" and container in c.get("containers", [])
    ]
    layered = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    modules = {p.stem for p in (PACKAGE / directory).glob("*.py") if p.stem != "__init__"}
    modules |= {p.name for p in (PACKAGE / directory).iterdir() if (p / "__init__.py").is_file()}
    assert sorted(modules - layered) == []


def test_every_top_level_core_module_is_in_a_layer() -> None:
    """Each event and emitter module (and processors) is in the top-level import-linter layers contract."""
    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if c["type"] == "layers" and "containers" not in c
    ]
    layered = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    modules = {_module_name(p) for p in _core_modules()}
    assert "swarm_observability.events" in modules and "swarm_observability.emitter" in modules
    assert sorted(modules - layered) == []
