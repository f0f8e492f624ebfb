"""The committed schemas/json/*.schema.json files match the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backorder_events import INPUT_EVENT_TYPES, OUTPUT_EVENT_TYPES
from backorder_events.generate import (
    SCHEMA_DIR,
    SUFFIX,
    expected_files,
    main,
    stale_files,
)

EXPECTED = expected_files()
FIX = "JSON Schemas are out of date: run `make schemas`"


def test_one_file_per_event_type_plus_settings_and_dead_letter() -> None:
    names = {name.removesuffix(SUFFIX) for name in EXPECTED}
    assert names == set(INPUT_EVENT_TYPES) | set(OUTPUT_EVENT_TYPES) | {
        "BackorderSettings", "DeadLetter"}
    assert len(names) == 21


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_committed_schema_is_current(name: str) -> None:
    path = SCHEMA_DIR / name
    assert path.exists(), f"{path} is missing. {FIX}"
    assert path.read_text(encoding="utf-8") == EXPECTED[name], f"{path} differs. {FIX}"


def test_no_extra_or_missing_schema_files() -> None:
    present = {p.name for p in SCHEMA_DIR.glob(f"*{SUFFIX}")}
    assert present == set(EXPECTED), f"extra: {present - set(EXPECTED)}, " \
        f"missing: {set(EXPECTED) - present}. {FIX}"


def test_rendering_is_deterministic_and_sorted() -> None:
    again = expected_files()
    assert again == EXPECTED
    for content in EXPECTED.values():
        assert content.endswith("}\n")
        assert content == json.dumps(json.loads(content), indent=2, sort_keys=True) + "\n"


def test_check_mode_reports_missing_differing_and_extra(tmp_path: Path, capsys) -> None:
    assert main(["--dir", str(tmp_path)]) == 0
    assert main(["--check", "--dir", str(tmp_path)]) == 0
    (tmp_path / "OrderCreated.schema.json").write_text("{}\n")
    (tmp_path / "DeadLetter.schema.json").unlink()
    (tmp_path / "Old.schema.json").write_text("{}\n")
    capsys.readouterr()
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"differs: {tmp_path / 'OrderCreated.schema.json'}" in out
    assert f"missing: {tmp_path / 'DeadLetter.schema.json'}" in out
    assert f"extra: {tmp_path / 'Old.schema.json'}" in out
    assert main(["--dir", str(tmp_path)]) == 0  # rewriting fixes all three
    assert stale_files(tmp_path) == []
