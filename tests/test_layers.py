"""The package's layers point only down and its modules import in no circle (AST, no third-party tool).

kernel (0) < conventions (1) < components (2) < CLI, demo and the public facade (3). A spec module
never imports a generator: inside its component it may use only leaf helpers (modules that import
nothing else of that component). Nothing imports the repository's folders by their bare names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "tenantpulse"
COMPONENTS = ("exporters", "alert_rules", "grafana", "anomaly_sidecar", "otel", "security", "web", "gateway")
TOP = ("tenantpulse", "tenantpulse.cli", "tenantpulse.chart_assets", "tenantpulse.demo")


def _modules() -> dict[str, Path]:
    """Every module of the package, through the links to the component folders."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("tenantpulse", *path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    # rglob does not descend into linked folders on every Python; walk them explicitly.
    for link in PACKAGE.iterdir():
        if link.is_symlink():
            for path in link.resolve().rglob("*.py"):
                parts = ("tenantpulse", link.name, *path.relative_to(link.resolve()).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imported(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                yield sub if sub in MODULES else node.module


def _edges() -> dict[str, set[str]]:
    return {
        name: {m for m in _imported(ast.parse(path.read_text())) if m in MODULES and m != name}
        for name, path in MODULES.items()
    }


def layer(module: str) -> int:
    parts = module.split(".")
    if module in TOP or module.startswith("tenantpulse.demo."):
        return 3
    if parts[1] == "kernel":
        return 0
    if parts[1] == "conventions":
        return 1
    assert parts[1] in COMPONENTS, f"{module}: not in a known layer; add it to tests/test_layers.py"
    return 2


def test_the_package_is_found_through_its_links() -> None:
    for component in (
        "exporters",
        "alert_rules",
        "grafana",
        "anomaly_sidecar",
        "otel",
        "security",
        "gateway",
    ):
        assert f"tenantpulse.{component}" in MODULES
    assert "tenantpulse.kernel.errors" in MODULES and "tenantpulse.conventions.catalog" in MODULES


def test_layers_only_point_down() -> None:
    upward = [
        f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
        for a, targets in sorted(_edges().items())
        for b in sorted(targets)
        if layer(b) > layer(a)
    ]
    assert not upward, "\n".join(upward)


def test_the_kernel_imports_only_the_kernel() -> None:
    edges = _edges()
    outside = [f"{a} -> {b}" for a in edges if layer(a) == 0 for b in edges[a] if layer(b) != 0]
    assert not outside, outside


def test_no_import_circles() -> None:
    edges = _edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not circles, circles


def test_specs_never_import_generators() -> None:
    edges = _edges()
    specs = [m for m in MODULES if m.endswith(".spec")]
    assert specs
    for spec in specs:
        component = spec.rsplit(".", 1)[0]

        def own(targets: set[str], component: str = component) -> set[str]:
            return {t for t in targets if t.startswith(component + ".")}

        heavy = [t for t in own(edges[spec]) if own(edges[t])]
        assert not heavy, f"{spec} imports {heavy}, which import more of {component}"


def test_nothing_imports_a_folder_by_its_bare_name() -> None:
    bare = {*COMPONENTS}
    offenders = []
    for path in sorted(REPO.glob("**/*.py")):
        if ".venv" in path.parts or "tenantpulse" in path.relative_to(REPO).parts[:1]:
            continue
        for name in _imported(ast.parse(path.read_text())):
            if name.split(".")[0] in bare:
                offenders.append(f"{path.relative_to(REPO)}: {name}")
    assert not offenders, offenders


def _named_in_calls(tree: ast.AST) -> Iterator[str]:
    """Module names handed to the import machinery as strings (import_module, resources.files, patch)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "files", "patch") and isinstance(node.args[0].value, str):
                yield node.args[0].value


def test_no_string_names_a_module_by_its_bare_folder() -> None:
    offenders = []
    for name, path in sorted(MODULES.items()):
        for text in _named_in_calls(ast.parse(path.read_text())):
            if text.split(".")[0] in COMPONENTS:
                offenders.append(f"{name}: {text!r}")
    assert not offenders, offenders


def test_the_facade_names_what_it_exports() -> None:
    import tenantpulse

    assert sorted(tenantpulse.__all__) == sorted(["__version__", *tenantpulse._EXPORTS])
    for name in tenantpulse._EXPORTS:
        assert getattr(tenantpulse, name) is not None
