"""The import graph of `server/` and `worlds/`, read from the source: no cycle, and `worlds` never imports
`server` (task authors' code stays free of the service's internals; docs/architecture.md).

The graph is what runs when the modules load: imports under `if TYPE_CHECKING:` never run, and an import
inside a function runs only once every module is loaded (how a package picks an optional backend,
e.g. `server.delivery` importing its Redis layer when Redis is configured), so both are left out. A second
graph, of every import written (those too), must have no cycle either: a deferred import is no way around
the layering.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("server", "worlds")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for child in node.orelse for n in _import_nodes(ast.Module(body=[child], type_ignores=[])))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _import_nodes(node)


def _every_import(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import written anywhere: under `if TYPE_CHECKING:`, inside functions, at the top."""
    yield from (node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom))


def _imports(module: str, path: Path, *, written: bool = False) -> set[str]:
    """The project modules `module` imports (a name from a package resolves to its submodule, if it is one):
    those that run when it loads, or with `written` every one written in it."""
    targets: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    for node in _every_import(tree) if written else _import_nodes(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            targets.add(sub if sub in MODULES else base)
    return {t for t in targets if t in MODULES and t != module}


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}
WRITTEN = {module: _imports(module, path, written=True) for module, path in MODULES.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> list[str] | None:
        if module in stack:
            return [*stack[stack.index(module):], module]
        if module in done:
            return None
        for target in sorted(graph[module]):
            found = visit(target, [*stack, module])
            if found:
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return None


def test_the_graph_is_read_from_the_source() -> None:
    assert "server.store" in GRAPH["server.runner"] and "worlds.base" in GRAPH["server.conversations"]
    assert "server.runner" not in GRAPH["server.conversations"]  # imported only for type checking


def test_server_and_worlds_import_each_other_without_a_cycle() -> None:
    cycle = _cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_cycle_hides_behind_a_deferred_import() -> None:
    """Imports for type checking or inside a function are no way around the layering: counting them too,
    no module depends on one that depends on it."""
    cycle = _cycle(WRITTEN)
    assert cycle is None, "import cycle through a deferred import: " + " -> ".join(cycle or [])


def test_worlds_never_import_server() -> None:
    reaching = {m: sorted(t for t in GRAPH[m] if t.split(".")[0] == "server") for m in GRAPH if m.startswith("worlds")}
    assert {m: t for m, t in reaching.items() if t} == {}


def test_the_runner_channel_and_agents_load_without_a_web_framework() -> None:
    """docs/architecture.md: channel.py and runner.py are testable without a socket; the message path's
    metrics (server/metrics.py) pull in nothing either."""
    import subprocess
    import sys

    probe = (
        "import sys; import server.runner, server.channel, server.agents, server.metrics; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'starlette', 'uvicorn'}))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
