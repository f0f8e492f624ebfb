"""The seller's settings file of the commands that take one (`--settings`)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from backorder_events import BackorderSettings
from backorders_platform.commands import CommandError
from pydantic import ValidationError


def load_settings(path: str | None) -> BackorderSettings:
    """Settings from a JSON or TOML file holding a flat mapping of setting names."""
    if path is None:
        return BackorderSettings()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        data = tomllib.loads(text) if file.suffix == ".toml" else json.loads(text)
    except OSError as error:
        raise CommandError(f"cannot read settings file {path}: {error.strerror}") from None
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise CommandError(f"settings file {path} is not valid: {error}") from None
    if isinstance(data, dict) and isinstance(data.get("settings"), dict):
        data = data["settings"]
    try:
        return BackorderSettings.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']}" for e in error.errors()
        )
        raise CommandError(f"settings file {path}: {problems}") from None
