"""The classifier's modules depend on one another in one direction: no cycle, and none hidden in a function."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "classifier"
FACADES = {"__init__", "__main__"}  # the public API and the entry point import everything; nothing imports them


def _imported_modules(node: ast.AST, modules: set[str]) -> set[str]:
    """The package's modules that one import statement names (`from classifier import rules` names rules)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "classifier":
        names = [f"classifier.{alias.name}" if alias.name in modules else "classifier" for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        names = [node.module]
    else:
        return set()
    found = {name.split(".")[1] for name in names if name.startswith("classifier.")}
    return found & modules | ({"__init__"} if "classifier" in names else set())


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per module, the modules it imports at module level, and those it imports inside a function or class."""
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    top: dict[str, set[str]] = {}
    nested: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top[path.stem] = set().union(*(_imported_modules(node, modules) for node in tree.body))
        inner = [node for statement in tree.body if not isinstance(statement, ast.Import | ast.ImportFrom)
                 for node in ast.walk(statement)]
        nested[path.stem] = set().union(*(_imported_modules(node, modules) for node in inner)) - {path.stem}
    return top, nested


def test_modules_form_no_cycle() -> None:
    top, _ = _graph()
    try:
        order = list(TopologicalSorter(top).static_order())
    except CycleError as error:
        raise AssertionError(f"import cycle among classifier modules: {error.args[1]}") from error
    assert set(order) >= set(top)


def test_no_module_imports_another_inside_a_function() -> None:
    _, nested = _graph()
    assert {name: found for name, found in nested.items() if found} == {}


def test_only_the_facades_import_the_package_itself() -> None:
    top, _ = _graph()
    assert {name for name, found in top.items() if "__init__" in found} <= FACADES
