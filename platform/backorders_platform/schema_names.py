"""PostgreSQL schema names: checked against a strict pattern, then always quoted.

A schema name reaches SQL that cannot take it as a bound parameter (`CREATE SCHEMA`,
`DROP SCHEMA`, the search path), from command-line options and environment variables. A
name is therefore accepted only when it is 1 to 63 ASCII letters, digits and underscores,
not starting with a digit (63: PostgreSQL would silently cut a longer one, so two names
could meet), and it is quoted wherever it is written into SQL, so a name in capitals or one
that is a keyword (`"Order"`) names exactly that schema.
"""

from __future__ import annotations

import re

MAX_LENGTH = 63
_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InvalidSchemaName(ValueError):
    """A schema name outside the accepted pattern: refused before any SQL is sent."""


def checked(name: str) -> str:
    """The name itself when it is acceptable; InvalidSchemaName otherwise."""
    if not isinstance(name, str) or len(name) > MAX_LENGTH or not _PATTERN.fullmatch(name):
        raise InvalidSchemaName(
            f"schema name {name!r} is not allowed: use 1 to {MAX_LENGTH} letters, digits and "
            "underscores, not starting with a digit"
        )
    return name


def quoted(name: str) -> str:
    """The checked name as a quoted SQL identifier."""
    return '"' + checked(name).replace('"', '""') + '"'
