"""docker-compose.yml is checked without a Docker engine: it parses, and the services, the
commands and the addresses agree with what the code reads."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from backorders_app.main import build_parser

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_servers_and_the_services():
    services = compose()["services"]
    assert {"kafka", "postgres", "recalculator", "relay", "notifier", "channel-sync"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["recalculator"]["build"] == "."
    for name in ("recalculator", "relay", "notifier", "channel-sync"):
        env = services[name]["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["BACKORDERS_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert services["recalculator"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_commands_are_commands_of_the_cli():
    parser = build_parser()
    for name, service in compose()["services"].items():
        command = service.get("command")
        if command is None:
            continue
        args = parser.parse_args(command)  # fails (SystemExit) on an unknown command
        assert callable(args.handler), name


def test_the_dockerfile_installs_the_project_and_runs_the_cli():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install" in dockerfile and 'ENTRYPOINT ["backorders"]' in dockerfile
    # Every folder the root pyproject.toml maps a package from is in the image.
    mapped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for folder in sorted({path.split("/")[0] for path in mapped.values()}):
        assert f"COPY {folder} ./{folder}" in dockerfile, folder
