"""Where a service keeps its state, from the environment: `BACKORDERS_DATA_DIR` (default
./var, so that nothing needs a server) and `BACKORDERS_DATABASE_URL`."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class StorageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKORDERS_")

    data_dir: Path = Path("var")
    # The persistent embedded database (`backorders run FILE`, search, explain).
    database_url: str | None = None

    def default_db(self) -> Path:
        return self.data_dir / "backorders.sqlite"
