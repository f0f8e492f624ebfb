"""The configuration a runtime or command uses: a file, or the built-in default. Apart from
`config` (the file's model and checks) so that `defaults`, which builds on `config`, is
not imported by it."""

from __future__ import annotations

import os
from pathlib import Path

from .config import CONFIG_ENV, NotifierConfig, load
from .defaults import default_config


def load_configured(path: str | Path | None = None, *, data_dir: Path) -> NotifierConfig:
    """The configuration a runtime or command uses: the file `path`, else the file named by
    $BACKORDERS_NOTIFIER_CONFIG, else the built-in default (every message written as an
    `.eml` file under `<data_dir>/mail`). The file is checked completely; raises
    ConfigError, whose text is `notifier configuration FILE:` then one `  - problem` line
    per problem (also in `.problems`)."""
    chosen = path or os.environ.get(CONFIG_ENV) or None
    if chosen:
        return load(chosen)
    return default_config(data_dir)
