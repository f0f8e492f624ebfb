"""The configuration a runtime or command uses: a file, or the built-in default. Apart from
`config` (the file's model and checks) so that `defaults`, which builds on `config`, is
not imported by it."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from .config import NotifierConfig, load
from .defaults import default_config


class ConfigLocation(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKORDERS_", env_ignore_empty=True)

    notifier_config: Path | None = None  # BACKORDERS_NOTIFIER_CONFIG (config.CONFIG_ENV)


def configured_path(path: str | Path | None = None) -> Path | None:
    """The configuration file to read: `path`, else $BACKORDERS_NOTIFIER_CONFIG; None: the
    built-in default."""
    return Path(path) if path else ConfigLocation().notifier_config


def load_configured(path: str | Path | None = None, *, data_dir: Path) -> NotifierConfig:
    """The configuration a runtime or command uses: the file `path`, else the file named by
    $BACKORDERS_NOTIFIER_CONFIG, else the built-in default (every message written as an
    `.eml` file under `<data_dir>/mail`). The file is checked completely; raises
    ConfigError, whose text is `notifier configuration FILE:` then one `  - problem` line
    per problem (also in `.problems`)."""
    chosen = configured_path(path)
    if chosen:
        return load(chosen)
    return default_config(data_dir)
