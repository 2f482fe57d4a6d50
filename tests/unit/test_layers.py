"""The package's shape, checked on the syntax tree: no import cycles between modules (the
registry pattern excepted: a package's ``__init__`` may import its own implementations inside
the function that picks one by name), and the decision core does no I/O of its own."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parents[2] / "src"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The draas modules ``path`` imports (at any depth; ``TYPE_CHECKING`` blocks included),
    except a registry's imports of its own submodules inside a function."""
    me = module_name(path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(me, is_package, child)
                names = [f"{base}.{a.name}" for a in child.names] + [base]
            for name in names:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if not name or name == me:
                    continue
                if is_package and inner and name.startswith(me + "."):
                    continue  # the registry pattern
                found.add(name)
            visit(child, inner)

    visit(tree, False)
    return found


def graph() -> dict[str, set[str]]:
    files = list(SRC.rglob("*.py"))
    modules = {module_name(p) for p in files}
    return {module_name(p): imports(p, modules) for p in files}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(g):
        if v not in index:
            connect(v)
    return out


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]]


# ARCHITECTURE.md's layers, lowest first: a module imports from its own layer or lower ones.
LAYERS = [
    {"errors", "exitcodes", "output", "clock", "config", "config_errors", "logs", "draas"},
    {"coordination", "replication", "health", "traffic", "measure", "gameday"},
    {"failover", "model"},
    {"deployment", "commands", "configcheck"},
    {"agent", "apiclient", "opscli", "testkit"},
    {"lab", "cli", "clidocs"},
]


def layer_of(module: str) -> int:
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else parts[0]
    return next(i for i, names in enumerate(LAYERS) if name in names)


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    upward = sorted(
        f"{m} -> {d}" for m, deps in graph().items() for d in deps if layer_of(d) > layer_of(m)
    )
    assert upward == []


def test_the_decision_core_does_no_io_of_its_own() -> None:
    """Policy, lease, runs, views and frontends: no sockets, SQL, subprocesses or sleeps."""
    pure = ["policy", "lease", "runs", "views", "frontends"]
    banned = {"socket", "subprocess", "pymysql", "time", "asyncio", "urllib", "requests"}
    for name in pure:
        tree = ast.parse((SRC / "draas" / "failover" / f"{name}.py").read_text())
        imported = {
            a.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for a in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        assert not imported & banned, (name, imported & banned)
