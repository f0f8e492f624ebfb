"""Runtime configuration from the environment (BACKORDERS_*), with defaults that need no
servers: everything lives under ./var."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class RecalculatorConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKORDERS_")

    data_dir: Path = Path("var")
    # The persistent embedded database (`backorders run FILE`, search, explain).
    database_url: str | None = None
    batch_size: int = 1000

    def default_db(self) -> Path:
        return self.data_dir / "backorders.sqlite"

    def demo_db(self) -> Path:
        return self.data_dir / "demo.sqlite"
