"""Splitting the services is one pyproject per folder: each folder of the design card
builds a package of its own, and each service, installed beside only the contract and
the platform, imports in full — a service that imported another would fail here.

The packages are built offline from copies of the folders (no build/ left in the tree)
and installed into a folder of their own; the check runs in a fresh interpreter that
cannot see the project's editable install."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {
    "backorder_events": "schemas",
    "backorders_platform": "platform",
    "recalculator": "services/recalculator",
    "notifier": "services/notifier",
    "channel_sync": "services/channel-sync",
}
SERVICES = ("recalculator", "notifier", "channel_sync")
BELOW = ("backorder_events", "backorders_platform")  # what a service may have beside it

# Run in the fresh interpreter: forget the editable install and the checkout, keep the
# third-party libraries, then import every module of the package from `target`.
CHECK = textwrap.dedent("""
    import importlib, pkgutil, sys
    target, package = sys.argv[1], sys.argv[2]
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
    sys.path[:] = [target] + [p for p in sys.path if "site-packages" in p or "lib/python" in p]
    root = importlib.import_module(package)
    assert root.__file__.startswith(target), root.__file__
    for module in pkgutil.walk_packages(root.__path__, package + "."):
        importlib.import_module(module.name)
    print("imported", package)
""")


def install(folders: list[str], target: Path, work: Path) -> None:
    copies = []
    for folder in folders:
        copy = work / folder.replace("/", "-")
        if not copy.exists():
            shutil.copytree(ROOT / folder, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        copies.append(str(copy))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), *copies],
        check=True, cwd=work,
    )


def check(target: Path, package: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHECK, str(target), package], capture_output=True, text=True,
                          cwd=target, timeout=300)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("split")


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_installs_and_imports_with_only_the_contract_and_the_platform(service, work):
    target = work / f"site-{service}"
    install([FOLDERS[name] for name in (*BELOW, service)], target, work)
    result = check(target, service)
    assert result.returncode == 0, result.stderr[-3000:]
    migrations = target / service / "adapters" / "migrations" / "versions"
    assert any(migrations.glob("*.py")), "the migrations are installed with the package"


def test_a_service_importing_another_fails_alone(work):
    target = work / "site-probe"
    install([FOLDERS[name] for name in (*BELOW, "notifier")], target, work)
    (target / "notifier" / "reads_the_recalculator.py").write_text("from recalculator.adapters import tables\n")
    result = check(target, "notifier")
    assert result.returncode != 0
    assert "No module named 'recalculator'" in result.stderr


def test_the_contract_and_the_platform_install_alone(work):
    target = work / "site-below"
    install([FOLDERS[name] for name in BELOW], target, work)
    for package in BELOW:
        result = check(target, package)
        assert result.returncode == 0, result.stderr[-3000:]
