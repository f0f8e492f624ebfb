"""The allocation core's modules do not import each other in a circle: no two modules of
`recalculator/domain/` import one another, counting every import in the file (at module
level, under `if TYPE_CHECKING:` and inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import recalculator.domain

DOMAIN = Path(recalculator.domain.__file__).parent
PACKAGE = "recalculator.domain"


def domain_imports(directory: Path) -> dict[str, set[str]]:
    """Module name → the modules of the same package it imports, anywhere in its file."""
    modules = {path.stem for path in directory.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for module in sorted(modules):
        tree = ast.parse((directory / f"{module}.py").read_text(encoding="utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:  # from . import x / from .x import y
                    base = node.module
                elif node.level == 0 and (node.module or "").startswith(PACKAGE + "."):
                    base = node.module[len(PACKAGE) + 1:]
                else:
                    continue
                if base is None:
                    imported.update(alias.name for alias in node.names)
                else:
                    imported.add(base.split(".")[0])
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith(PACKAGE + "."):
                        imported.add(alias.name[len(PACKAGE) + 1:].split(".")[0])
        graph[module] = (imported & modules) - {module}
    return graph


def two_module_cycles(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted(
        (first, second)
        for first, imported in graph.items()
        for second in imported
        if first < second and first in graph.get(second, ())
    )


def test_the_walk_sees_imports_at_every_level(tmp_path):
    (tmp_path / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n"
    )
    (tmp_path / "b.py").write_text("def f():\n    from . import a\n")
    (tmp_path / "c.py").write_text("from recalculator.domain.a import A\nfrom ..other import x\n")
    graph = domain_imports(tmp_path)
    assert graph == {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert two_module_cycles(graph) == [("a", "b")]


def test_no_two_domain_modules_import_each_other():
    graph = domain_imports(DOMAIN)
    assert {"engine", "model", "pool", "reference"} <= graph.keys()
    assert two_module_cycles(graph) == []
