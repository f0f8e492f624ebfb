"""What every service's commands share: the one-line error, the `--db` option and the
database it names."""

from __future__ import annotations

from .database import sqlite_url
from .settings import StorageSettings


class CommandError(Exception):
    """A problem with the command's arguments or files, said in one line."""


def database_url(db: str | None, storage: StorageSettings | None = None) -> str:
    storage = storage or StorageSettings()
    if db:
        return db if "://" in db else sqlite_url(db)
    if storage.database_url:
        return storage.database_url
    storage.data_dir.mkdir(parents=True, exist_ok=True)
    return sqlite_url(storage.default_db())


def add_db_option(parser) -> None:
    parser.add_argument(
        "--db",
        help="SQLite file or SQLAlchemy URL (default: $BACKORDERS_DATABASE_URL or var/backorders.sqlite)",
    )
