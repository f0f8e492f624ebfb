"""Configuration is read when a command runs, never when a module is imported: every module
of the project imports in a fresh interpreter with no settings object built and the
environment untouched, even with settings in the environment that would not validate. The
exceptions are the modules faust is pointed at (`faust -A module`): faust finds the app as
an attribute of the module, so those build it, and say why."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from import_graph import modules, package_roots

# faust's -A modules: the app is built on import, by faust's design.
FAUST_APP_MODULES = {"recalculator.kafka.faust_app", "notifier.kafka_app", "channel_sync.kafka_app"}

PROBE = """
import importlib, json, os, sys
import pydantic_settings

built = []
original = pydantic_settings.BaseSettings.__init__

def recording(self, *args, **kwargs):
    built.append(type(self).__module__ + "." + type(self).__qualname__)
    original(self, *args, **kwargs)

pydantic_settings.BaseSettings.__init__ = recording
environ = dict(os.environ)
failed = {}
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception as error:  # noqa: BLE001 - reported by the test
        failed[name] = repr(error)
print(json.dumps({"built": built, "failed": failed, "environ_changed": dict(os.environ) != environ}))
"""

# Values no settings class accepts: a module that read them on import would fail.
UNREADABLE = {
    "BACKORDERS_SHARDS": "two",
    "BACKORDERS_IDLE_BOUND_MS": "soon",
    "BACKORDERS_METRICS_PORT": "port",
    "BACKORDERS_DEDUPE_WINDOW": "a while",
    "BACKORDERS_LOG_LEVEL": "loud",
    "KAFKA_SECURITY_PROTOCOL": "CARRIER_PIGEON",
}


def probe(names: list[str], extra_env: dict[str, str]) -> dict:
    env = {**os.environ, **extra_env}
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(names)], env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def project_modules() -> list[str]:
    names = [name for name in modules(package_roots()) if name not in FAUST_APP_MODULES]
    # Alembic's env.py scripts run only inside a migration; a __main__ runs the command.
    return sorted(name for name in names
                  if not any(part.endswith("migrations") for part in name.split("."))
                  and not name.endswith("__main__"))


def test_no_module_reads_its_configuration_on_import():
    result = probe(project_modules(), UNREADABLE)
    assert result["failed"] == {}
    assert result["built"] == [], "settings built on import"
    assert not result["environ_changed"]


def test_the_probe_sees_settings_built_on_import(tmp_path):
    """The probe itself: a module that builds its settings on import is caught."""
    (tmp_path / "reads_on_import.py").write_text(
        "from backorders_platform.kafka_settings import KafkaSettings\nSETTINGS = KafkaSettings()\n"
    )
    result = probe(["reads_on_import"], {"PYTHONPATH": str(tmp_path)})
    assert result["built"] == ["backorders_platform.kafka_settings.KafkaSettings"]
