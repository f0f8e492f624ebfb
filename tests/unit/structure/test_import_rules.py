"""Who may import whom (docs/architecture.md, "Packages"): the services depend only on the
contract and the platform, never on each other; only the composition root knows them all.
A breach names the module, the line and what it imported."""

from __future__ import annotations

from pathlib import Path

import pytest
from import_graph import Import, circles, imports, package_roots

CONTRACT = "backorder_events"
PLATFORM = "backorders_platform"
SERVICES = ("recalculator", "notifier", "channel_sync")
COMPOSITION_ROOT = "backorders_app"
WORKLOAD = "backorders_workload"  # the generator of the demo, tests and benchmarks
DOMAIN = "recalculator.domain"  # the pure allocation core

# What each package may import besides itself; the composition root may import anything.
ALLOWED = {
    CONTRACT: set(),
    PLATFORM: {CONTRACT},
    **{service: {CONTRACT, PLATFORM} for service in SERVICES},
    WORKLOAD: {CONTRACT},
}

def breaches(found: list[Import]) -> list[str]:
    wrong = []
    for i in found:
        source, target = i.importer.split(".")[0], i.imported.split(".")[0]
        if source == target and not _in(i.importer, DOMAIN):
            continue
        if source == COMPOSITION_ROOT or source not in ALLOWED:
            continue
        allowed = ALLOWED[source] | {source}
        if _in(i.importer, DOMAIN):
            allowed = {CONTRACT}
            ok = target in allowed or _in(i.imported, DOMAIN)
        else:
            ok = target in allowed
        if not ok:
            wrong.append(f"{i.path.relative_to(package_roots()[source].parent)}:{i.line}: "
                         f"{i.importer} imports {i.imported}")
    return wrong


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_every_package_is_placed():
    assert set(package_roots()) == {CONTRACT, PLATFORM, *SERVICES, COMPOSITION_ROOT, WORKLOAD}


def test_each_package_imports_only_what_it_may():
    assert breaches(imports()) == []


def test_no_two_modules_import_each_other():
    assert circles(imports()) == set()


@pytest.mark.parametrize(
    ("importer", "imported", "allowed"),
    [
        ("notifier.embedded", "recalculator.adapters.tables", False),
        ("channel_sync.service", "notifier.config", False),
        ("recalculator.cli.run", "notifier.embedded", False),
        ("backorders_platform.database", "recalculator.adapters.repository", False),
        ("recalculator.domain.engine", "backorders_platform.logs", False),
        ("recalculator.domain.engine", "recalculator.adapters.tables", False),
        ("backorders_workload.day", "recalculator.publishing", False),
        ("notifier.service", "backorders_platform.screening", True),
        ("recalculator.domain.engine", "backorder_events", True),
        ("backorders_app.main", "notifier.cli", True),
    ],
)
def test_the_rule_tells_a_breach(importer, imported, allowed):
    made_up = Import(importer, imported, 1, package_roots()[importer.split(".")[0]] / "x.py")
    assert (breaches([made_up]) == []) is allowed


def test_a_service_importing_another_is_found_in_the_sources(tmp_path: Path):
    """The graph itself, over a made-up tree: a top-level import, one inside a function,
    and one by name through importlib."""
    from import_graph import imports as graph

    for package in ("notifier", "recalculator"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "recalculator" / "tables.py").write_text("")
    (tmp_path / "notifier" / "a.py").write_text("from recalculator import tables\n")
    (tmp_path / "notifier" / "b.py").write_text("def f():\n    from recalculator.tables import outbox\n")
    (tmp_path / "notifier" / "c.py").write_text("import importlib\nimportlib.import_module('recalculator.tables')\n")
    found = graph({"notifier": tmp_path / "notifier", "recalculator": tmp_path / "recalculator"})
    assert {(i.importer, i.imported) for i in found} == {
        ("notifier.a", "recalculator.tables"), ("notifier.b", "recalculator.tables"),
        ("notifier.c", "recalculator.tables"),
    }
