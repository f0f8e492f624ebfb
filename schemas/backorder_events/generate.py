"""Write the JSON Schema of every event type to schemas/json/ (`make schemas`).

    python -m backorder_events.generate            # (re)write the files
    python -m backorder_events.generate --check    # exit 1 when the files are stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from .outputs import OUTPUT_EVENT_TYPES, DeadLetter
from .parse import INPUT_EVENT_TYPES
from .settings import BackorderSettings

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "json"
SUFFIX = ".schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def models() -> dict[str, type[BaseModel]]:
    return {
        **INPUT_EVENT_TYPES,
        **OUTPUT_EVENT_TYPES,
        "BackorderSettings": BackorderSettings,
        "DeadLetter": DeadLetter,
    }


def render(model: type[BaseModel]) -> str:
    schema = {"$schema": DIALECT, **model.model_json_schema()}
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> content, for every model."""
    return {f"{name}{SUFFIX}": render(model) for name, model in models().items()}


def stale_files(directory: Path = SCHEMA_DIR) -> list[str]:
    """Problems as readable lines; empty when the directory is up to date."""
    expected = expected_files()
    present = {p.name for p in directory.glob(f"*{SUFFIX}")}
    problems = []
    for name, content in sorted(expected.items()):
        path = directory / name
        if name not in present:
            problems.append(f"missing: {path}")
        elif path.read_text(encoding="utf-8") != content:
            problems.append(f"differs: {path}")
    problems += [f"extra: {directory / name}" for name in sorted(present - expected.keys())]
    return problems


def write(directory: Path = SCHEMA_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    expected = expected_files()
    for name, content in expected.items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
    for path in directory.glob(f"*{SUFFIX}"):
        if path.name not in expected:
            path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, exit 1 if stale")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="output directory")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_files(args.dir)
        for line in problems:
            print(line)
        if problems:
            print("JSON Schemas are out of date: run `make schemas`", file=sys.stderr)
            return 1
        return 0
    write(args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
