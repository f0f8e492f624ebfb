"""What every service's commands share: the one-line error, the `--db` option and the
database it names, and options taken from the environment when not given."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from .database import sqlite_url
from .settings import StorageSettings

Settings = TypeVar("Settings", bound=BaseSettings)


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


def options(settings: type[Settings], args, *names: str) -> Settings:
    """`settings` read when the command runs: the options `names` given on the command line
    win, the environment gives the rest (so a bad value there stops only the commands that
    read it, saying which variable in one line)."""
    given = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    try:
        return settings(**given)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0])
        variable = (settings.model_config.get("env_prefix") or "") + field.upper()
        kind = settings.model_fields[field].annotation if field in settings.model_fields else None
        what = {int: "a whole number", float: "a number"}.get(kind)
        problem = f"is not {what}" if what else first["msg"]
        raise CommandError(f"{variable}={first['input']!r} {problem}") from None
