"""The package's floors: imports point down (``cli -> prune -> export -> train -> profile,
weights -> tasks -> checkpoint, features, segment, data -> models -> layers -> registry``), never
sideways between two packages on the same floor, never in a circle; library code imports the
package at the top of its modules (lazy imports only in ``cli/``, for start-up time, and for
optional dependencies); tests/ and benchmarks/ do not import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lightnets

PACKAGE = Path(lightnets.__file__).parent
# the top-level module or sub-package -> its floor; docs/architecture.md says the same
FLOORS = {
    "registry": 0, "hardware": 0, "optional": 0, "files": 0, "channel_plan": 0, "constants": 0,
    "layers": 1, "testing": 1,
    "models": 2,
    "checkpoint": 3, "features": 3, "segment": 3, "detect": 3, "data": 3, "metrics": 3,
    "tasks": 4,
    "profile": 5, "weights": 5,
    "train": 6,
    "export": 7,
    "prune": 8,
    "cli": 9, "__main__": 10,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    """``lightnets.export.onnx`` -> ``export``; the root package -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


SOURCES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(path) for path in SOURCES}


def package_imports(path: Path) -> list[tuple[str, bool]]:
    """``(imported lightnets module, at module level)`` for every import in the file."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # imports under a top-level `if` / `try` still run at import time
        if isinstance(node, (ast.If, ast.Try)):
            top_level |= {id(child) for child in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from lightnets import models` imports the module lightnets.models
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES
                     else node.module for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found += [(name, id(node) in top_level) for name in names
                  if name == "lightnets" or name.startswith("lightnets.")]
    return found


GRAPH = {module_name(path): package_imports(path) for path in SOURCES}


def test_every_unit_has_a_floor():
    units = {unit(name) for name in GRAPH} - {""}
    assert units <= set(FLOORS), f"give {sorted(units - set(FLOORS))} a floor in FLOORS"


@pytest.mark.parametrize("module", sorted(name for name in GRAPH if unit(name)))
def test_imports_point_down(module):
    here = unit(module)
    for imported, _ in GRAPH[module]:
        there = unit(imported)
        if there == here:
            continue
        if not there:
            assert here in ("cli", "__main__"), (
                f"{module} imports the root package lightnets; only cli/ may (for the version)")
            continue
        assert FLOORS[there] < FLOORS[here], (
            f"{module} (floor {FLOORS[here]}, {here}) imports {imported} (floor "
            f"{FLOORS[there]}, {there}): imports must point to a lower floor")


@pytest.mark.parametrize("module", sorted(name for name in GRAPH if unit(name) != "cli"))
def test_library_imports_the_package_at_the_top(module):
    local = [imported for imported, top in GRAPH[module] if not top]
    assert not local, f"{module} imports {local} inside a function; import at the top"


def test_no_import_circle():
    edges = {name: {imported for imported, top in imports if top and imported in GRAPH}
             for name, imports in GRAPH.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for nxt in sorted(edges[name]):
            assert state.get(nxt) != 1, "import circle: " + " -> ".join(
                path[path.index(nxt):] + [nxt]) if nxt in path else nxt
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])


def test_the_checker_sees_an_upward_import(tmp_path):
    # the graph reader itself: a models module importing train must be found
    source = tmp_path / "bad.py"
    source.write_text("from lightnets.train import train\n\ndef f():\n"
                      "    from lightnets.export import export_model\n")
    assert package_imports(source) == [("lightnets.train", True), ("lightnets.export", False)]
    source.write_text("from lightnets import models, create_model\n")
    assert package_imports(source) == [("lightnets.models", True), ("lightnets", True)]


# -- tests/ and benchmarks/ -----------------------------------------------------------------------
# neither imports the other (their shared helpers live in the package: lightnets.testing), not
# by package name nor by a module's bare name after a sys.path change
ROOT = PACKAGE.parent
SIDES = {"tests": sorted((ROOT / "tests").rglob("*.py")),
         "benchmarks": sorted((ROOT / "benchmarks").glob("*.py"))}


def imported_roots(path: Path) -> set[str]:
    """The first component of every module ``path`` imports (absolute imports only)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
    return roots


@pytest.mark.parametrize("side, other", [("tests", "benchmarks"), ("benchmarks", "tests")])
def test_tests_and_benchmarks_do_not_import_each_other(side, other):
    assert SIDES[side] and SIDES[other]
    forbidden = {other} | {path.stem for path in SIDES[other]}
    found = [f"{path.relative_to(ROOT)} imports {sorted(imported_roots(path) & forbidden)}"
             for path in SIDES[side] if imported_roots(path) & forbidden]
    assert not found, f"{side}/ must not import {other}/: " + "; ".join(found)


def test_the_cross_import_checker_sees_both_forms(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text("import torch\nfrom benchmarks.weights_parity import x\n\ndef f():\n"
                      "    from conftest import randomise\n    import tests.conftest\n")
    assert imported_roots(source) == {"torch", "benchmarks", "conftest", "tests"}
