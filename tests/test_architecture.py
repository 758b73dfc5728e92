"""The package's shape, checked over its source with ``ast``: no import cycles (imports inside
functions count), no module importing another module's private names, private helper modules
that import nothing else from ``lmcourse``, and modules and functions short enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lmcourse"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
EXEMPT = ("exercises",)  # the exercise checkers hold long tables of cases
HELPERS = ("_checks", "_io", "_torch", "_hf")  # private modules shared by many: no lmcourse imports


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    return {_module_name(p): (p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _imports(name: str, tree: ast.Module, path: Path) -> list[tuple[str, str | None]]:
    """Every (module, imported name) pair this module imports from lmcourse, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names if a.name.startswith("lmcourse")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("lmcourse"):
                continue
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                found.append((submodule, None) if submodule in MODULES else (module, alias.name))
    return found


def _with_packages(importer: str, module: str) -> set[str]:
    """`module` and the packages Python imports before it (``lmcourse.a.b`` runs ``lmcourse.a``'s
    ``__init__`` first), except the packages that hold the importer itself."""
    parts = module.split(".")
    found = {module}
    for i in range(2, len(parts)):
        package = ".".join(parts[:i])
        if package in MODULES and not importer.startswith(package + "."):
            found.add(package)
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, (path, tree) in MODULES.items():
        graph[name] = {p for m, _ in _imports(name, tree, path) if m in MODULES
                       for p in _with_packages(name, m) if p != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _is_package_of(importer: str, module: str) -> bool:
    """A package's ``__init__`` re-exports its own submodules' names; a submodule may use its
    package's private helpers' names when they live in the same package."""
    return module.startswith(importer + ".") or importer.startswith(module + ".")


def test_no_import_cycles():
    assert _cycle(_graph()) is None, f"import cycle: {' -> '.join(_cycle(_graph()) or [])}"


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_private_names_imported_across_modules():
    bad = [f"{name} imports {imported} from {module}"
           for name, (path, tree) in MODULES.items()
           for module, imported in _imports(name, tree, path)
           if imported and imported.startswith("_") and not _is_package_of(name, module)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("helper", [h for h in HELPERS if f"lmcourse.{h}" in MODULES])
def test_private_helpers_import_nothing_from_lmcourse(helper):
    path, tree = MODULES[f"lmcourse.{helper}"]
    assert not _imports(f"lmcourse.{helper}", tree, path)


def test_modules_are_short_enough_to_read():
    long = [f"{p.relative_to(PACKAGE)}: {n} lines" for p, _ in MODULES.values()
            if not set(p.relative_to(PACKAGE).parts) & set(EXEMPT)
            and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES]
    assert not long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(long)


def test_functions_are_short_enough_to_read():
    long = [f"{p.relative_to(PACKAGE)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines"
            for p, tree in MODULES.values() if not set(p.relative_to(PACKAGE).parts) & set(EXEMPT)
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
