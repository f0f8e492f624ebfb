"""Small helpers shared by the commands."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from backorder_events import BackorderSettings
from pydantic import ValidationError

from backorders_platform.commands import CommandError


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


def from_environment(value, name: str, kind: type, default):
    """An option's value: given on the command line, else from the environment variable
    `name`, else `default`. Read when the command runs, not when the parser is built, so a
    bad value stops only the commands that use it, with one line saying which."""
    if value is not None:
        return value
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise CommandError(f"{name}={raw!r} is not {what}") from None
