"""The architecture's import rules, checked on the source (../shared/DESIGN.md, "Layout"):
imports point one way, qcc (the driver) -> passes -> runtime -> dialects, and no module
imports itself back through others (no cycles).

Every import statement of every module is read with `ast`, function-level and
`TYPE_CHECKING` ones included (a lazy import is a dependency all the same). The modules
are found through pyproject.toml's `[tool.setuptools.package-dir]` (dialects/ installs as
`qcc.dialects`, ...). Only dynamic imports (`importlib.import_module(name)`, e.g. the pass
registry loading passes by name) escape it.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LAYERS = {
    "qcc.dialects": ("qcc.dialects",),
    "qcc.runtime": ("qcc.runtime", "qcc.dialects"),
    "qcc.passes": ("qcc.passes", "qcc.runtime", "qcc.dialects"),
}
"""Per lower layer, the qcc packages its modules may import. The driver (every other
module of qcc/: cli, api, pipeline, calibration, statistics, frontends, backends, report,
fileio, litert, errors, testing, ...) may import any of them, but none of them may import
the driver."""


def _package_dirs(root: Path) -> dict[str, Path]:
    config = tomllib.loads((root / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    return {package: root / folder for package, folder in mapping.items()}


def find_modules(root: Path) -> dict[str, Path]:
    """Module name -> file, for every .py file of the installed packages (a package is
    named by its `__init__.py`)."""
    dirs = _package_dirs(root)
    modules: dict[str, Path] = {}
    for package, folder in sorted(dirs.items()):
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([package, *parts])
            # a file below a folder that is a package of its own belongs to that package
            owner = max((p for p in dirs if name == p or name.startswith(p + ".")), key=len)
            if owner == package:
                modules[name] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module `name` refers to: itself, or the nearest enclosing package."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """The qcc modules `name` imports, anywhere in its file, each with the line of its first
    import (`from pkg import sub` names the submodule `pkg.sub` when it is one)."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: dict[str, int] = {}

    def add(target: str | None, line: int) -> None:
        if target is not None and target != name:
            found.setdefault(target, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "qcc" or alias.name.startswith("qcc."):
                    add(_resolve(alias.name, modules), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not (base == "qcc" or base.startswith("qcc.")):
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in modules else _resolve(base, modules), node.lineno)
    return found


def import_graph(root: Path) -> tuple[dict[str, Path], dict[str, dict[str, int]]]:
    modules = find_modules(root)
    return modules, {m: imports_of(m, p, modules) for m, p in modules.items()}


def layer_violations(modules: dict[str, Path], graph: dict[str, dict[str, int]]) -> list[str]:
    """One line per import that points up (or sideways into the driver)."""
    problems = []
    for module, targets in sorted(graph.items()):
        layer = next(
            (lay for lay in LAYERS if module == lay or module.startswith(lay + ".")), None
        )
        if layer is None:
            continue
        allowed = LAYERS[layer]
        for target, line in sorted(targets.items()):
            if not any(target == a or target.startswith(a + ".") for a in allowed):
                where = modules[module].relative_to(ROOT) if modules[module].is_relative_to(
                    ROOT) else modules[module]
                problems.append(f"{where}:{line}: {module} imports {target}")
    return problems


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)


def _cycle_text(component: list[str], graph: dict[str, dict[str, int]]) -> str:
    members = set(component)
    edges = [
        f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in members
    ]
    return "; ".join(edges)


# ------------------------------------------------------------------------------------------


def test_the_modules_are_found() -> None:
    modules, graph = import_graph(ROOT)
    for name in ("qcc.cli", "qcc.api", "qcc.statistics", "qcc.dialects.ir", "qcc.dialects.nn",
                 "qcc.passes.annotate_ranges", "qcc.runtime.executor",
                 "qcc.runtime.kernels.common", "qcc.backends.numba"):
        assert name in modules, name
    # function-level imports count: the driver builds the pipeline lazily
    assert "qcc.passes" in graph["qcc.pipeline"]
    assert "qcc.runtime.kernels" in graph["qcc.runtime.executor"]  # relative imports too


def test_lower_layers_never_import_the_driver() -> None:
    """dialects import only dialects; runtime only runtime and dialects; passes only passes,
    runtime and dialects: never qcc.cli, qcc.api, qcc.pipeline, qcc.calibration,
    qcc.statistics, qcc.frontends, qcc.backends, qcc.report, qcc.fileio, qcc.litert,
    qcc.errors, qcc.testing or any other driver module."""
    modules, graph = import_graph(ROOT)
    assert layer_violations(modules, graph) == []


def test_no_import_cycles() -> None:
    _, graph = import_graph(ROOT)
    assert [_cycle_text(c, graph) for c in cycles(graph)] == []


def _fake_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.setuptools.package-dir]\n"qcc" = "qcc"\n"qcc.passes" = "passes"\n'
        '"qcc.dialects" = "dialects"\n'
    )
    for rel, text in {"qcc/__init__.py": "", "passes/__init__.py": "",
                      "dialects/__init__.py": "", **files}.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_checks_catch_lazy_upward_imports_and_cycles(tmp_path: Path) -> None:
    """The checks themselves: an upward import inside a function, and a cycle through a
    function-level import, are both reported."""
    root = _fake_tree(tmp_path, {
        "passes/p.py": "def f():\n    from qcc.errors import QccError\n    return QccError\n",
        "qcc/errors.py": "",
        "qcc/a.py": "import qcc.b\n",
        "qcc/b.py": "def g():\n    from qcc import a\n",
        "dialects/d.py": "from qcc.passes import p\n",
    })
    modules, graph = import_graph(root)
    assert [line.split(": ", 1)[1] for line in layer_violations(modules, graph)] == [
        "qcc.dialects.d imports qcc.passes.p",
        "qcc.passes.p imports qcc.errors",
    ]
    assert cycles(graph) == [["qcc.a", "qcc.b"]]


def test_passes_raise_xdsl_errors() -> None:
    """Passes report failures as xDSL's PassFailedException (the driver turns them into its
    one-line errors), never as the driver's QccError."""
    modules = find_modules(ROOT)
    using = [m for m, path in modules.items()
             if m.startswith("qcc.passes.") and "QccError" in path.read_text()]
    assert using == []
