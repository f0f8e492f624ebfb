"""The project's import graph, read from the sources (an AST walk, nothing imported): every
module of the packages the root pyproject.toml maps, and what each imports — at the top,
inside functions, or by name through `importlib.import_module("...")`."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def package_roots(root: Path = ROOT) -> dict[str, Path]:
    """Top-level import package → its folder (`[tool.setuptools.package-dir]`)."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    mapped = config["tool"]["setuptools"]["package-dir"]
    return {name: root / folder for name, folder in mapped.items() if "." not in name}


@dataclass(frozen=True)
class Import:
    importer: str  # module name
    imported: str  # module name (a submodule when a name is one, else the package)
    line: int
    path: Path


def modules(roots: dict[str, Path]) -> dict[str, Path]:
    found = {}
    for package, folder in roots.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def imports(roots: dict[str, Path] | None = None) -> list[Import]:
    """Every import of a project module by a project module."""
    roots = package_roots() if roots is None else roots
    known = modules(roots)
    found = []
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for target, line in _targets(ast.parse(path.read_text(encoding="utf-8")), package):
            if target.split(".")[0] in roots:
                found.append(Import(name, _existing(target, known), line, path))
    return found


def _targets(tree: ast.AST, package: str) -> Iterator[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                yield f"{base}.{alias.name}", node.lineno
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.args[0].value, node.lineno


def _existing(target: str, known: dict[str, Path]) -> str:
    """The module a dotted target names: itself, or the longest known prefix (a name
    imported from a module is an import of that module)."""
    while target not in known and "." in target:
        target = target.rpartition(".")[0]
    return target


def circles(found: list[Import]) -> set[tuple[str, str]]:
    """Pairs of modules that import each other (each pair sorted), `if TYPE_CHECKING:`
    imports included: they tie the modules together all the same."""
    edges = {(i.importer, i.imported) for i in found if i.importer != i.imported}
    return {tuple(sorted(edge)) for edge in edges if (edge[1], edge[0]) in edges}
